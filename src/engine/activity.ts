/**
 * What a node prints: one event per chunk, chunk ID list and request sent or received, plus a few
 * lifecycle events. The simulator and the real runtime format them with the same function.
 */
import { formatIndices } from './bitfield.ts';

export type ActivityEvent =
  | {
      readonly kind: 'chunk-received';
      readonly chunk: number;
      readonly from: string;
      readonly bytes: number;
      readonly fromOwner: boolean;
    }
  | ({ readonly kind: 'chunk-sent'; readonly chunk: number; readonly to: string } & SentBytes)
  | { readonly kind: 'list-received'; readonly from: string; readonly list: ListSummary }
  | { readonly kind: 'list-sent'; readonly to: string; readonly list: ListSummary }
  | { readonly kind: 'request-sent'; readonly chunk: number; readonly to: string }
  | { readonly kind: 'request-received'; readonly chunk: number; readonly from: string }
  | { readonly kind: 'connected'; readonly peer: string; readonly direction: 'inbound' | 'outbound' }
  | { readonly kind: 'disconnected'; readonly peer: string; readonly reason: string }
  | { readonly kind: 'chunk-corrupt'; readonly chunk: number; readonly from: string }
  | { readonly kind: 'storage-error'; readonly chunk: number; readonly message: string }
  | { readonly kind: 'complete'; readonly chunks: number };

/** A chunk ID list as sent or received: a whole list (bitfield, have-all, have-none) or one update (have). */
export type ListSummary =
  | { readonly form: 'bitfield'; readonly chunks: readonly number[] }
  | { readonly form: 'have-all'; readonly count: number }
  | { readonly form: 'have-none' }
  | { readonly form: 'have'; readonly chunk: number };

export const ACTIVITY_KINDS = [
  'chunk-received',
  'chunk-sent',
  'list-received',
  'list-sent',
  'request-sent',
  'request-received',
] as const;

function describeList(list: ListSummary): string {
  switch (list.form) {
    case 'bitfield':
      return `${list.chunks.length} chunks [${formatIndices(list.chunks)}]`;
    case 'have-all':
      return `all ${list.count} chunks`;
    case 'have-none':
      return 'no chunks';
    case 'have':
      return `update +${list.chunk}`;
  }
}

/** What a chunk-sent event says we sent: all of the chunk's bytes, or a part when others sent the rest. */
export interface SentBytes {
  readonly bytes: number;
  readonly chunkBytes: number;
}

export function describeActivity(event: ActivityEvent): string {
  switch (event.kind) {
    case 'chunk-received': {
      // The owner's own label already says so; a foreign seeder's does not.
      const owner = event.fromOwner && event.from !== 'owner' ? ' (owner)' : '';
      return `received chunk ${event.chunk} from ${event.from}${owner} (${event.bytes} bytes)`;
    }
    case 'chunk-sent':
      return event.bytes >= event.chunkBytes
        ? `sent chunk ${event.chunk} to ${event.to} (${event.bytes} bytes)`
        : `sent chunk ${event.chunk} to ${event.to} (${event.bytes} of its ${event.chunkBytes} bytes; others sent the rest)`;
    case 'list-received':
      return `received chunk ID list from ${event.from}: ${describeList(event.list)}`;
    case 'list-sent':
      return `sent chunk ID list to ${event.to}: ${describeList(event.list)}`;
    case 'request-sent':
      return `requested chunk ${event.chunk} from ${event.to}`;
    case 'request-received':
      return `received request for chunk ${event.chunk} from ${event.from}`;
    case 'connected':
      return `connected to ${event.peer} (${event.direction})`;
    case 'disconnected':
      return `disconnected from ${event.peer}: ${event.reason}`;
    case 'chunk-corrupt':
      return `chunk ${event.chunk} from ${event.from} failed verification`;
    case 'storage-error':
      return `could not store chunk ${event.chunk}: ${event.message}`;
    case 'complete':
      return `has all ${event.chunks} chunks`;
  }
}

/** One activity line: elapsed time in seconds with millisecond precision, the node, the event. */
export function formatActivityLine(elapsedMs: number, node: string, event: ActivityEvent): string {
  // Many lines share a millisecond: its stamp is made once (a pure cache: the text is the same).
  if (elapsedMs !== stamped.ms) {
    const seconds = `${Math.floor(elapsedMs / 1000)}.${String(elapsedMs % 1000).padStart(3, '0')}s`;
    stamped.ms = elapsedMs;
    stamped.text = seconds.padStart(9);
  }
  return `${stamped.text} ${node.length >= 7 ? node : node.padEnd(7)} ${describeActivity(event)}`;
}

/** The last time stamp `formatActivityLine` made. */
const stamped = { ms: Number.NaN, text: '' };
