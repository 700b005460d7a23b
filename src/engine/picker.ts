/**
 * Piece picking: which missing chunk to ask a neighbour for next. Pure; randomness is handed in,
 * and ties are broken by the seeded generator so a run is reproducible.
 */
import type { Random } from './random.ts';

export type PickerKind = 'random' | 'rarest-first';

/**
 * Chooses one chunk among `candidates` (ascending chunk indices). `availability[i]` counts the
 * connected peers that hold chunk i; rarest-first takes the least available, ties broken at random.
 */
export function pickChunk(
  kind: PickerKind,
  candidates: readonly number[],
  availability: ArrayLike<number>,
  random: Random,
): number | undefined {
  if (candidates.length === 0) return undefined;
  if (kind === 'random') return random.pick(candidates);
  let best = Number.POSITIVE_INFINITY;
  const rarest: number[] = [];
  for (const index of candidates) {
    const count = availability[index] ?? 0;
    if (count < best) {
      best = count;
      rarest.length = 0;
      rarest.push(index);
    } else if (count === best) {
      rarest.push(index);
    }
  }
  return random.pick(rarest);
}
