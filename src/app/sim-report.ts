/**
 * `npm run sim -- … --report FILE`: feeds a simulated run's activity into a `RunRecorder` and
 * turns the finished run into a `RunRecord`. The simulator's own lower bound is shown as is.
 */
import type { ActivityEvent } from '../engine/activity.ts';
import { planChunks } from '../engine/chunking.ts';
import type { Scenario } from '../sim/scenario.ts';
import type { SimResult } from '../sim/simulator.ts';
import { type RunRecord, RunRecorder } from './run-record.ts';

export class SimReport {
  private readonly recorder: RunRecorder;

  constructor(private readonly scenario: Scenario) {
    const plan = planChunks(scenario.file.sizeBytes, scenario.file.chunkSizeBytes);
    // The simulator refuses such a file itself; the report then has no chunk to show.
    this.recorder = new RunRecorder(scenario.owner.id, plan.ok ? plan.geometry.pieceCount : 0);
  }

  /** For `runScenario`'s `onActivity`. */
  readonly onActivity = (atMs: number, node: string, event: ActivityEvent): void => {
    this.recorder.activity(atMs, node, event);
  };

  finish(result: SimResult): RunRecord {
    // Every peer gets a row, and the simulator's completion times are the ones its summary prints.
    for (const peer of result.peers) {
      this.recorder.node(peer.id);
      if (peer.completedAtMs !== null) this.recorder.complete(peer.id, peer.completedAtMs);
    }
    return this.recorder.finish({
      title: `${result.scenario}, seed ${result.seed}`,
      origin: 'simulator',
      fileBytes: this.scenario.file.sizeBytes,
      durationMs: result.simulatedMs,
      lowerBoundMs: result.lowerBoundMs,
      lowerBoundNote:
        "the simulator's bound, the largest of file / owner upload, file / slowest peer download and " +
        'peers × file / all upload together; no run can finish sooner.',
    });
  }
}
