/**
 * A worker process of `npm run fuzz -- --jobs N`: runs the generated scenarios it is sent, one at a
 * time, and answers whether each failed (a thrown error counts, as it does for fast-check).
 */
import { check } from '../sim/fuzz.ts';
import type { ScenarioInput } from '../sim/scenario.ts';
import { answerRequests } from './worker-pool.ts';

answerRequests<ScenarioInput, boolean>((input) => {
  try {
    return check(input) !== undefined;
  } catch {
    return true;
  }
});
