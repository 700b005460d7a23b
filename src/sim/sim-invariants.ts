/**
 * The simulator's checks on what the nodes hold: nothing advertised that is not on disk, every
 * finished honest peer holding the exact file, and the conditions for finishing a run and for the
 * owner to leave. Each returns what it found; the simulator turns that into a failure.
 */
import type { ListSummary } from '../engine/activity.ts';
import type { SimNode } from './sim-node.ts';

/** Nothing is advertised that is not verified and on the node's disk: what broke that, or undefined. */
export function unheldAdvertised(node: SimNode, list: ListSummary, pieceCount: number): string | undefined {
  const index = advertisedNotHeld(node, list, pieceCount);
  return index === undefined
    ? undefined
    : `unverified-chunk-advertised: ${node.id} advertised chunk ${index} it does not hold`;
}

/** The first chunk a list names that the node does not hold exactly, or undefined. */
function advertisedNotHeld(node: SimNode, list: ListSummary, pieceCount: number): number | undefined {
  // A HAVE (nearly every list sent) is checked without making a list of one.
  if (list.form === 'have') return node.disk.holdsExact(list.chunk) ? undefined : list.chunk;
  let indices: readonly number[] = [];
  if (list.form === 'bitfield') indices = list.chunks;
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

/**
 * The first honest peer at or after `from` that does not have the file yet, or `peers.length` when
 * every one does (a lying peer need not finish). Both "lying" and "finished" never go back, so the
 * run loop resumes from the last answer and the check costs O(1) per event, not O(peers).
 */
export function firstWaitingPeer(peers: readonly SimNode[], from: number): number {
  let index = from;
  while (index < peers.length) {
    const node = peers[index] as SimNode;
    if (!node.corrupt && node.completedAtMs === undefined) break;
    index++;
  }
  return index;
}

/** Every chunk is held exactly by a live, honest peer: the swarm no longer needs the owner. */
export function everyChunkOnALivePeer(peers: readonly SimNode[], pieceCount: number): boolean {
  for (let index = 0; index < pieceCount; index++) {
    const held = peers.some((node) => !node.crashed && !node.corrupt && node.disk.holdsExact(index));
    if (!held) return false;
  }
  return true;
}
