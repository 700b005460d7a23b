/**
 * Phase and topology policy: which chunks we would download from whom now (ring, mesh, star; two
 * phases or overlapped), when a peer that finds nothing to request counts as starving and falls
 * back, and our interest (BEP 3's interested / not interested) that follows from both.
 */
import { type Bitfield, findOffered } from './bitfield.ts';
import type { Connection, ConnectionId } from './connection.ts';
import type { Outbox } from './effects.ts';
import type { EngineSettings } from './options.ts';

export class DownloadPolicy {
  /** Nothing to request for a while: a ring peer takes from anyone, a two-phase peer from the owner. */
  starving = false;
  /**
   * Ring, owner phase done: the download neighbour is connected but holds nothing we lack. Then the
   * peer takes from anyone at once, instead of sitting idle for `starvationMs` after every chunk.
   * (A neighbour not connected yet, or gone, still gets `starvationMs` to appear: the ring is forming.)
   */
  private neighbourDry = false;
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
    const fallingBack = this.starving || this.neighbourDry;
    if (!conn.isDownloadSource && !(fallingBack && topology === 'ring' && role === 'peer')) return false;
    if (phases === 'overlapped' || topology === 'star') return true;
    if (conn.isOwner) {
      if (conn.ownerShare?.has(index) === true) return true;
      // Falling back to the owner: only for chunks no trading neighbour can give us.
      return fallingBack && !this.anyNeighbourHas(index);
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

  /**
   * Works out again what the ring's download neighbour offers (after a chunk is stored, a list
   * arrives, a connection opens or closes). While a connected download neighbour holds something
   * we lack, the ring is strict; once it holds nothing new, the peer takes from anyone at once; a
   * peer that fell back because its neighbour was gone or slow stays fallen back until the
   * neighbour has something again, rather than pausing `starvationMs` after every chunk. A change
   * re-sends our interest; returns whether it changed, so the caller looks for requests everywhere.
   */
  recheckNeighbour(): boolean {
    if (this.settings.topology !== 'ring' || this.settings.role !== 'peer') return false;
    this.phaseDoneCache = undefined;
    const offer = this.downloadNeighbourOffer();
    const starving = this.starving && offer !== 'something';
    const dry = !this.have.complete && this.ownerPhaseDone() && offer === 'nothing';
    if (dry === this.neighbourDry && starving === this.starving) return false;
    this.neighbourDry = dry;
    this.starving = starving;
    this.refreshInterest();
    return true;
  }

  /** A chunk was stored: a two-phase mesh or star peer tries its own sources again first. */
  chunkStored(nowMs: number): void {
    this.lastProgressAtMs = nowMs;
    if (this.settings.topology !== 'ring') this.starving = false;
  }

  refreshInterest(): void {
    for (const conn of this.connections.values()) if (conn.state === 'open') this.updateInterest(conn);
  }

  updateInterest(conn: Connection): void {
    if (conn.state !== 'open' || this.settings.role === 'owner') return;
    // Only a chunk the peer holds and we lack can be wanted.
    const wanted =
      !this.have.complete &&
      findOffered(conn.remoteHave, this.have, undefined, (i) => this.wouldDownload(conn, i)) >= 0;
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

  /**
   * What the open download neighbours (not the owner) hold that we lack: 'none connected',
   * 'nothing', or 'something' (a bitwise scan of their lists).
   */
  private downloadNeighbourOffer(): 'none connected' | 'nothing' | 'something' {
    const held = this.have.bits;
    let connected = false;
    for (const conn of this.connections.values()) {
      if (conn.state !== 'open' || conn.isOwner || !conn.isDownloadSource) continue;
      connected = true;
      const theirs = conn.remoteHave.bits;
      for (let byte = 0; byte < theirs.length; byte++) {
        if (((theirs[byte] as number) & ~(held[byte] as number)) !== 0) return 'something';
      }
    }
    return connected ? 'nothing' : 'none connected';
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
