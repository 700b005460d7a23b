/**
 * The engine's outputs: the `Effect` union a driver carries out, and the outbox that collects them
 * in order until the driver drains it with `pollEffects`.
 */
import type { ActivityEvent } from './activity.ts';
import { encodeMessage } from './codec.ts';
import type { CloseReason } from './errors.ts';
import type { Message } from './messages.ts';

export type ConnectionId = string;

export type Effect =
  | { readonly kind: 'connect'; readonly connection: ConnectionId; readonly address: string }
  | { readonly kind: 'send'; readonly connection: ConnectionId; readonly bytes: Uint8Array }
  | { readonly kind: 'close'; readonly connection: ConnectionId; readonly reason: CloseReason }
  | {
      readonly kind: 'read-block';
      readonly connection: ConnectionId;
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | {
      /** A chunk whose bytes matched its SHA-1, to be stored. */
      readonly kind: 'write-chunk';
      readonly index: number;
      readonly bytes: Uint8Array;
      /** The chunk came from the owner (kept in the summary file). */
      readonly fromOwner: boolean;
    }
  | { readonly kind: 'activity'; readonly event: ActivityEvent }
  | { readonly kind: 'complete' };

/** The time every input brings, shared by the face with every room. */
export interface Clock {
  nowMs: number;
}

/** What the outbox needs of a connection to send on it. */
export interface SendTarget {
  readonly id: ConnectionId;
  lastSentAtMs: number;
}

export class Outbox {
  private effects: Effect[] = [];

  constructor(private readonly clock: Clock) {}

  push(effect: Effect): void {
    this.effects.push(effect);
  }

  send(conn: SendTarget, message: Message): void {
    this.sendBytes(conn, encodeMessage(message));
  }

  sendBytes(conn: SendTarget, bytes: Uint8Array): void {
    conn.lastSentAtMs = this.clock.nowMs;
    this.effects.push({ kind: 'send', connection: conn.id, bytes });
  }

  activity(event: ActivityEvent): void {
    this.effects.push({ kind: 'activity', event });
  }

  /** The effects produced since the last call, in order. */
  drain(): Effect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }
}
