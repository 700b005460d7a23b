/**
 * `npm start -- --report FILE`: feeds the JSON event lines of the owner and peer processes into a
 * `RunRecorder`. Activity lines carry the event's own fields (see `Reporter.activity`), so nothing
 * here parses the human text. Times are on the demo's one clock: ms since `npm start` began.
 */
import type { ActivityEvent } from '../engine/activity.ts';
import type { LocalSwarmResult } from './local-swarm.ts';
import type { EventLine } from './processes.ts';
import { type RunRecord, RunRecorder } from './run-record.ts';

const NO_BOUND =
  'these are real processes on loopback, whose links have no set capacity, so no fastest possible ' +
  'time can be computed honestly; the bars are the measured completion times only.';

/** The activity fields the report uses, checked, or undefined for a line it does not need. */
export function activityFromLine(line: EventLine): ActivityEvent | undefined {
  const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
  switch (line.kind) {
    case 'chunk-received':
      if (!isNumber(line.chunk) || !isNumber(line.bytes) || typeof line.from !== 'string') return undefined;
      return {
        kind: 'chunk-received',
        chunk: line.chunk,
        from: line.from,
        bytes: line.bytes,
        fromOwner: line.fromOwner === true,
      };
    case 'connected':
      if (typeof line.peer !== 'string') return undefined;
      return {
        kind: 'connected',
        peer: line.peer,
        direction: line.direction === 'inbound' ? 'inbound' : 'outbound',
      };
    default:
      return undefined;
  }
}

export class DemoReport {
  /** Made when the owner says how many chunks there are; nothing moves before that. */
  private recorder: RunRecorder | undefined;

  onLine(line: EventLine): void {
    const node = typeof line.node === 'string' ? line.node : undefined;
    if (node === undefined) return;
    if (line.event === 'listening' && node === 'owner' && this.recorder === undefined) {
      this.recorder = new RunRecorder(node, Number(line.chunks));
    }
    const recorder = this.recorder;
    if (recorder === undefined) return;
    if (line.event === 'listening') recorder.node(node);
    else if (line.event === 'complete' && typeof line.completedAtMs === 'number') {
      // The verified file's time, the one the summary table prints.
      recorder.complete(node, line.completedAtMs);
    } else if (line.event === 'activity' && typeof line.atMs === 'number') {
      const event = activityFromLine(line);
      if (event !== undefined) recorder.activity(line.atMs, node, event);
    }
  }

  /** The record, or undefined if the owner never started (there is nothing to show). */
  finish(result: LocalSwarmResult, title: string, fileBytes: number): RunRecord | undefined {
    return this.recorder?.finish({
      title,
      origin: 'processes',
      fileBytes,
      durationMs: result.elapsedMs,
      lowerBoundMs: null,
      lowerBoundNote: NO_BOUND,
    });
  }
}
