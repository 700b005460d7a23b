/**
 * Phase and topology policy: which chunks we would download from whom now (ring, mesh, star; two
 * phases or overlapped), when a peer that finds nothing to request counts as starving and falls
 * back, and our interest (BEP 3's interested / not interested) that follows from both.
 */
import type { Bitfield } from './bitfield.ts';
import type { Connection, ConnectionId } from './connection.ts';
import type { Outbox } from './effects.ts';
import type { EngineSettings } from './options.ts';

export class DownloadPolicy {
  /** Nothing to request for a while: a ring peer takes from anyone, a two-phase peer from the owner. */
  starving = false;
  lastProgressAtMs = 0;
  /** Whether two-phase trading may start; undefined when it must be worked out again. */
  private phaseDoneCache: boolean | undefined;

  constructor(
    private readonly settings: EngineSettings,
    private readonly have: Bitfield,
    private readonly connections: ReadonlyMap<ConnectionId, Connection>,
    private readonly outbox: Outbox,
  ) {}

  /** Every input may change what the phase rule sees (connections, lists, held chunks). */
  invalidate(): void {
    this.phaseDoneCache = undefined;
  }

  /** A block or a chunk arrived. */
  progressed(nowMs: number): void {
    this.lastProgressAtMs = nowMs;
  }

  /** Whether we would download chunk `index` from `conn` now, by topology and phase. */
  wouldDownload(conn: Connection, index: number): boolean {
    if (!conn.remoteHave.has(index) || this.have.has(index)) return false;
    const { topology, role, phases } = this.settings;
    // A starving ring peer (its download neighbour gone, lying or empty-handed) takes from any
    // connected peer: the ring is how work is shared, not a reason to stall.
    if (!conn.isDownloadSource && !(this.starving && topology === 'ring' && role === 'peer')) return false;
    if (phases === 'overlapped' || topology === 'star') return true;
    if (conn.isOwner) {
      if (conn.ownerShare?.has(index) === true) return true;
      // Falling back to the owner: only for chunks no trading neighbour can give us.
      return this.starving && !this.anyNeighbourHas(index);
    }
    if (this.phaseDoneCache === undefined) this.phaseDoneCache = this.ownerPhaseDone();
    return this.phaseDoneCache;
  }

  /**
   * A peer that has received nothing for `starvationMs`, with nothing in flight and its owner phase
   * done, starts starving: its interest is worked out again under the wider rule.
   */
  checkStarvation(nowMs: number, outstanding: () => number): void {
    if (
      this.settings.role === 'peer' &&
      !this.have.complete &&
      !this.starving &&
      nowMs - this.lastProgressAtMs >= this.settings.limits.starvationMs &&
      outstanding() === 0 &&
      this.ownerPhaseDone()
    ) {
      this.starving = true;
      this.refreshInterest();
    }
  }

  refreshInterest(): void {
    for (const conn of this.connections.values()) if (conn.state === 'open') this.updateInterest(conn);
  }

  updateInterest(conn: Connection): void {
    if (conn.state !== 'open' || this.settings.role === 'owner') return;
    let wanted = false;
    if (!this.have.complete) {
      const count = this.settings.geometry.pieceCount;
      for (let i = 0; i < count && !wanted; i++) wanted = this.wouldDownload(conn, i);
    }
    if (wanted !== conn.amInterested) {
      conn.amInterested = wanted;
      this.outbox.send(conn, { type: wanted ? 'interested' : 'not-interested' });
    }
  }

  private anyNeighbourHas(index: number): boolean {
    for (const conn of this.connections.values()) {
      if (!conn.isOwner && conn.isDownloadSource && conn.remoteHave.has(index)) return true;
    }
    return false;
  }

  /** Two-phase: a peer trades once it holds its owner share, or when no owner is connected. */
  private ownerPhaseDone(): boolean {
    for (const conn of this.connections.values()) {
      if (!conn.isOwner || conn.state !== 'open') continue;
      if (conn.ownerShare === undefined) return false;
      for (const index of conn.ownerShare.indices()) if (!this.have.has(index)) return false;
    }
    return true;
  }
}
