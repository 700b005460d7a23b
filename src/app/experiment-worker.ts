/**
 * A worker process of `npm run experiment -- --jobs N`: runs the (field value, seed) runs it is sent,
 * one at a time, and answers each with its measure. Every run is deterministic, so where it runs
 * changes nothing in it.
 */
import { type Field, measureRun, withField } from '../sim/experiment.ts';
import type { Scenario } from '../sim/scenario.ts';

/** What the parent sends: one run to do. */
export interface RunRequest {
  readonly id: number;
  readonly base: Scenario;
  readonly field: Field;
  readonly value: string;
  readonly seed: number;
}

process.on('message', (request: RunRequest) => {
  const measure = measureRun(withField(request.base, request.field, request.value), request.seed);
  process.send?.({ id: request.id, measure });
});
