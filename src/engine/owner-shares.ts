/**
 * The owner's shares (BEP 16 style super-seeding): each arriving peer is shown a distinct share of
 * the least-replicated chunks it lacks, and the next share once it holds the last one, so the swarm
 * holds every chunk as early as possible.
 */
import type { Availability } from './availability.ts';
import { findOffered } from './bitfield.ts';
import type { Connection } from './connection.ts';
import type { Random } from './random.ts';

export class OwnerShares {
  constructor(
    private readonly pieceCount: number,
    private readonly shareChunks: number,
    private readonly availability: Availability,
    private readonly random: Random,
  ) {}

  /** A distinct share of the least-replicated chunks this peer lacks, in chunk order. */
  choose(conn: Connection): number[] {
    const replication = this.availability.replication;
    const candidates: number[] = [];
    for (let i = 0; i < this.pieceCount; i++) {
      if (!conn.remoteHave.has(i) && !conn.advertised.has(i)) candidates.push(i);
    }
    // Shuffle first so ties between equally replicated chunks fall at random, then a stable sort.
    this.random.shuffle(candidates);
    candidates.sort((a, b) => (replication[a] as number) - (replication[b] as number));
    const share = candidates.slice(0, this.shareChunks).sort((a, b) => a - b);
    for (const index of share) this.availability.handedOut(index);
    return share;
  }

  /** Once a peer holds everything we showed it, the next share to show it; else nothing. */
  next(conn: Connection): number[] {
    if (conn.remoteHave.complete) return [];
    // Asked on every HAVE from every peer: a byte-wise scan for a shown chunk it still lacks.
    if (findOffered(conn.advertised, conn.remoteHave, undefined, () => true) >= 0) return [];
    return this.choose(conn);
  }
}
