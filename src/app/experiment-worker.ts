/**
 * A worker process of `npm run experiment -- --jobs N`: measures the (field value, seed) runs it is
 * sent, one at a time. Every run is deterministic, so where it runs changes nothing in it.
 */
import { type Field, measureRun, type RunMeasure, withField } from '../sim/experiment.ts';
import type { Scenario } from '../sim/scenario.ts';
import { answerRequests } from './worker-pool.ts';

/** One run to do. */
export interface RunRequest {
  readonly base: Scenario;
  readonly field: Field;
  readonly value: string;
  readonly seed: number;
}

answerRequests<RunRequest, RunMeasure>((request) =>
  measureRun(withField(request.base, request.field, request.value), request.seed),
);
