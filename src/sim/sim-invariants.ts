/**
 * The simulator's checks on what the nodes hold: nothing advertised that is not on disk, every
 * finished honest peer holding the exact file, and the conditions for finishing a run and for the
 * owner to leave. Each returns what it found; the simulator turns that into a failure.
 */
import type { ListSummary } from '../engine/activity.ts';
import type { SimNode } from './sim-node.ts';

/** The first chunk a list names that the node does not hold exactly, or undefined. */
export function advertisedNotHeld(node: SimNode, list: ListSummary, pieceCount: number): number | undefined {
  let indices: readonly number[] = [];
  if (list.form === 'have') indices = [list.chunk];
  else if (list.form === 'bitfield') indices = list.chunks;
  else if (list.form === 'have-all') indices = Array.from({ length: pieceCount }, (_, index) => index);
  return indices.find((index) => !node.disk.holdsExact(index));
}

/** The first finished honest peer without the exact file, with the chunk it lacks, or undefined. */
export function finishedWithWrongFile(
  peers: readonly SimNode[],
  pieceCount: number,
): { readonly node: SimNode; readonly index: number } | undefined {
  for (const node of peers) {
    if (node.corrupt || node.completedAtMs === undefined) continue;
    for (let index = 0; index < pieceCount; index++) {
      if (!node.disk.holdsExact(index)) return { node, index };
    }
  }
  return undefined;
}

/** Every honest peer has the file (a lying peer need not finish). */
export function allHonestComplete(peers: readonly SimNode[]): boolean {
  for (const node of peers) if (!node.corrupt && node.completedAtMs === undefined) return false;
  return true;
}

/** Every chunk is held exactly by a live, honest peer: the swarm no longer needs the owner. */
export function everyChunkOnALivePeer(peers: readonly SimNode[], pieceCount: number): boolean {
  for (let index = 0; index < pieceCount; index++) {
    const held = peers.some((node) => !node.crashed && !node.corrupt && node.disk.holdsExact(index));
    if (!held) return false;
  }
  return true;
}
