/**
 * The scheduler: which block to ask a peer for next. Chunks under way are finished first; then the
 * owner's share near the end, taken over; then a new chunk (random or rarest-first); then a chunk
 * its first sender has left unstarted, taken over; then endgame, where the last blocks are asked of
 * two peers at once.
 */
import type { Availability } from './availability.ts';
import { type Bitfield, findOffered } from './bitfield.ts';
import {
  askedCount,
  BlockState,
  type ChunkAssembly,
  type ChunkDownload,
  isAskedOf,
} from './chunk-assembly.ts';
import { type Connection, type ConnectionId, canRequest } from './connection.ts';
import type { DownloadPolicy } from './download-policy.ts';
import type { Clock } from './effects.ts';
import {
  FIRST_CHUNK_PATIENCE_MS,
  NEAR_END_CHUNKS,
  OWNER_QUIET_MS,
  RANDOM_PICK_ATTEMPTS,
  TAKE_OVER_AFTER_MS,
} from './limits.ts';
import type { EngineSettings } from './options.ts';
import { pickChunk } from './picker.ts';
import type { Random } from './random.ts';
import type { RequestPipeline } from './request-pipeline.ts';
import type { Storage } from './storage.ts';

/** A block to ask for: which chunk, and which block of it. */
export interface BlockChoice {
  readonly download: ChunkDownload;
  readonly block: number;
}

/** The rooms the scheduler reads and steers, lent by the face. */
export interface SchedulerRooms {
  readonly settings: EngineSettings;
  readonly clock: Clock;
  readonly random: Random;
  readonly have: Bitfield;
  readonly connections: ReadonlyMap<ConnectionId, Connection>;
  readonly assembly: ChunkAssembly;
  readonly storage: Storage;
  readonly availability: Availability;
  readonly policy: DownloadPolicy;
  readonly pipeline: RequestPipeline;
  /** Chunks that failed verification with several senders: fetched from one sender only. */
  readonly singleSource: ReadonlySet<number>;
}

export class Scheduler {
  constructor(private readonly rooms: SchedulerRooms) {}

  /** Fills the request pipelines of every connection. */
  fillAll(): void {
    const { settings, have, connections } = this.rooms;
    if (settings.role === 'owner' || have.complete) return;
    for (const conn of connections.values()) this.fill(conn);
  }

  /** Fills `conn`'s request pipeline. */
  fill(conn: Connection): void {
    const { settings, have, policy, pipeline } = this.rooms;
    if (conn.state !== 'open' || settings.role === 'owner' || have.complete) return;
    if (!conn.amInterested) policy.updateInterest(conn);
    const limit = pipeline.limit(conn);
    while (conn.outstanding.size < limit) {
      const next = this.nextBlock(conn);
      if (next === undefined) break;
      pipeline.request(conn, next.download, next.block);
    }
  }

  /** The next block to ask `conn` for: finish started chunks first, then a new chunk, then endgame. */
  private nextBlock(conn: Connection): BlockChoice | undefined {
    const started = this.continueStarted(conn);
    if (started !== undefined) return started;
    // Near the end the owner's share is rare and the owner's line long: taken over first.
    const share = this.takeOver(conn, true);
    if (share !== undefined) return share;
    const index = this.pickNewChunk(conn);
    if (index !== undefined) return { download: this.rooms.assembly.start(index, conn), block: 0 };
    const taken = this.takeOver(conn, false);
    if (taken !== undefined) return taken;
    // Nothing else here: what the owner showed us but we have not asked it for yet is fair game too.
    const owner = conn.isOwner || !this.overlapped ? undefined : this.ownerConnection();
    // (Only when the first pick left the owner's chunks out: else it would be the same scan again.)
    const shared = owner === undefined || this.bypassOwner(owner) ? undefined : this.pickNewChunk(conn, true);
    if (shared !== undefined) return { download: this.rooms.assembly.start(shared, conn), block: 0 };
    if (!this.rooms.settings.endgame) return undefined;
    return this.endgameBlock(conn);
  }

  private get overlapped(): boolean {
    return this.rooms.settings.phases === 'overlapped';
  }

  /** The first missing block of a chunk under way that `conn` may send. */
  private continueStarted(conn: Connection): BlockChoice | undefined {
    const { assembly, singleSource } = this.rooms;
    for (const download of assembly.downloads.values()) {
      // Nothing to ask of a chunk with every block asked for (unless it may restart, below).
      if (download.blocksMissing === 0 && !singleSource.has(download.index)) continue;
      if (this.isJustTakenFrom(download, conn)) continue;
      if (!this.mayAsk(conn, download.index)) continue;
      if (download.startedBy !== conn.id) {
        // An owner that offers everything (a plain seed, not handing out shares) has the scarcest
        // upload in an overlapped swarm: it is not spent on the rest of a chunk a neighbour is
        // sending us. Nor is a chunk fetched from one sender only asked of another.
        const plainSeed = conn.isOwner && conn.ownerShare?.complete === true && this.overlapped;
        const single = singleSource.has(download.index);
        if ((plainSeed || single) && this.starterCanSend(download)) continue;
        // Its sender is gone (or may no longer be asked): this peer takes the chunk over, afresh.
        if (single) this.restartDownload(download, conn);
      }
      const block = download.blockState.indexOf(BlockState.missing);
      if (block >= 0) return { download, block };
    }
    return undefined;
  }

  /**
   * A chunk asked of one sender that has not sent a byte of it for a second (an owner with hundreds
   * of peers in line, a neighbour serving others first) is taken over by a neighbour with nothing
   * else to give us: the first sender's requests are cancelled. Otherwise it would sit there until
   * endgame and, more often than not, be the last chunk the peer waits for. With `bypassedOwnerOnly`,
   * only the owner's share near the end (see bypassOwner), which is taken before any new chunk: the
   * owner hands out the least-replicated chunks, so it is also the rarest one we lack.
   */
  private takeOver(conn: Connection, bypassedOwnerOnly: boolean): BlockChoice | undefined {
    if (!this.overlapped) return undefined;
    const { settings, have, assembly, connections, singleSource, clock } = this.rooms;
    // Cheap way out on the hot path: the owner is only bypassed in a peer's last chunks.
    if (bypassedOwnerOnly && settings.geometry.pieceCount - have.count > NEAR_END_CHUNKS) return undefined;
    for (const download of assembly.downloads.values()) {
      if (download.blocksReceived > 0 || singleSource.has(download.index)) continue;
      const sender = connections.get(download.startedBy);
      if (sender === undefined || sender === conn) continue;
      const bypassed = sender.isOwner && this.bypassOwner(sender);
      if (bypassedOwnerOnly && !bypassed) continue;
      if (!this.mayAsk(conn, download.index)) continue;
      // Near the end nothing waits for an owner that is busy with others.
      const waiting = this.senderWaiting(sender, download.index);
      if (waiting === 'no' || (waiting === 'recently' && !bypassed)) continue;
      this.rooms.pipeline.cancel(sender, download.index, true);
      download.startedBy = conn.id;
      download.takenOverFrom = sender.id;
      download.takenOverAtMs = clock.nowMs;
      const block = download.blockState.indexOf(BlockState.missing);
      if (block >= 0) return { download, block };
    }
    return undefined;
  }

  /** Whether chunk `index` is asked of `sender`: not at all, for a while ('stale'), or recently. */
  private senderWaiting(sender: Connection, index: number): 'no' | 'stale' | 'recently' {
    let waiting = false;
    let stale = true;
    for (const request of sender.outstanding.values()) {
      if (request.index !== index) continue;
      waiting = true;
      if (this.rooms.clock.nowMs - request.sentAtMs < TAKE_OVER_AFTER_MS) stale = false;
    }
    if (!waiting) return 'no';
    return stale ? 'stale' : 'recently';
  }

  /** Whether `conn` is the sender this chunk was just taken from (it is asked again only later). */
  private isJustTakenFrom(download: ChunkDownload, conn: Connection): boolean {
    return (
      download.takenOverFrom === conn.id &&
      this.rooms.clock.nowMs - download.takenOverAtMs < TAKE_OVER_AFTER_MS
    );
  }

  /** Whether we would download chunk `index` from `conn` now, and may ask it. */
  private mayAsk(conn: Connection, index: number): boolean {
    return this.rooms.policy.wouldDownload(conn, index) && canRequest(conn, index);
  }

  private pickNewChunk(conn: Connection, includeOwnerShare = false): number | undefined {
    const { settings, clock, storage, have, random, availability } = this.rooms;
    if (storage.isPaused(clock.nowMs)) return undefined;
    // Until we hold a chunk, one neighbour sends us one at a time: a first chunk that arrives whole
    // at full speed makes us an uploader sooner than several arriving side by side, slowly.
    if (have.count === 0 && !conn.isOwner && this.neighbourDownloadUnderWay()) return undefined;
    let owner = conn.isOwner || !this.overlapped || includeOwnerShare ? undefined : this.ownerConnection();
    if (owner !== undefined && this.bypassOwner(owner)) owner = undefined;
    const count = settings.geometry.pieceCount;
    if (settings.picker === 'random') {
      // Rejection sampling is uniform over the eligible chunks and, while many are eligible, avoids
      // scanning them all for every pick (quadratic in the chunk count over a download).
      for (let attempt = 0; attempt < RANDOM_PICK_ATTEMPTS; attempt++) {
        const index = random.nextInt(count);
        if (this.eligible(conn, owner, index)) return index;
      }
    }
    // Only what the peer holds, we lack and the owner does not hand us can be eligible.
    const candidates: number[] = [];
    findOffered(conn.remoteHave, have, owner?.remoteHave, (i) => {
      if (this.eligible(conn, owner, i)) candidates.push(i);
      return false;
    });
    return pickChunk(settings.picker, candidates, availability.holders, random);
  }

  /** A chunk `conn` may be asked to start: not under way, not being written, not the owner's to hand us. */
  private eligible(conn: Connection, owner: Connection | undefined, index: number): boolean {
    const { assembly, storage } = this.rooms;
    return (
      !assembly.downloads.has(index) &&
      !storage.writing.has(index) &&
      // What the owner hands us is left to the owner: taking it elsewhere would stall its next share.
      owner?.remoteHave.has(index) !== true &&
      this.mayAsk(conn, index)
    );
  }

  /** A chunk a neighbour is sending us, or was asked for less than a second ago. */
  private neighbourDownloadUnderWay(): boolean {
    const { assembly, connections, clock } = this.rooms;
    for (const download of assembly.downloads.values()) {
      const source = connections.get(download.startedBy);
      if (source === undefined || source.isOwner) continue;
      if (download.blocksReceived > 0) return true;
      for (const request of source.outstanding.values()) {
        if (request.index === download.index && clock.nowMs - request.sentAtMs < FIRST_CHUNK_PATIENCE_MS)
          return true;
      }
    }
    return false;
  }

  /**
   * So few chunks are missing that each is worth taking from whoever can send it soonest, and the
   * owner, busy with others, has sent us nothing for a while: its share is no longer left to it.
   */
  private bypassOwner(owner: Connection): boolean {
    const { settings, have, clock } = this.rooms;
    return (
      settings.geometry.pieceCount - have.count <= NEAR_END_CHUNKS &&
      clock.nowMs - owner.lastBlockAtMs >= OWNER_QUIET_MS
    );
  }

  /** The open, unchoked connection to the owner, if any. */
  private ownerConnection(): Connection | undefined {
    for (const conn of this.rooms.connections.values()) {
      if (conn.isOwner && conn.state === 'open' && !conn.peerChoking) return conn;
    }
    return undefined;
  }

  /** Whether the connection that started `download` is still there and may still be asked for it. */
  private starterCanSend(download: ChunkDownload): boolean {
    const starter = this.rooms.connections.get(download.startedBy);
    return starter !== undefined && this.mayAsk(starter, download.index);
  }

  private restartDownload(download: ChunkDownload, conn: Connection): void {
    this.rooms.pipeline.cancelChunk(download.index);
    this.rooms.assembly.reset(download, conn);
  }

  /** Endgame: every missing block is already asked for; ask this peer too, for a block it was not asked. */
  private endgameBlock(conn: Connection): BlockChoice | undefined {
    const { settings, have, assembly, storage, singleSource } = this.rooms;
    for (let i = 0; i < settings.geometry.pieceCount; i++) {
      if (!have.has(i) && !assembly.downloads.has(i) && !storage.writing.has(i)) return undefined;
    }
    // Only the last few blocks: duplicating a large remainder would waste the senders' upload.
    if (assembly.missingBlocks() > settings.limits.endgameBlocks) return undefined;
    for (const download of assembly.downloads.values()) {
      if (singleSource.has(download.index) || this.isJustTakenFrom(download, conn)) continue;
      if (!this.mayAsk(conn, download.index)) continue;
      const block = this.duplicableBlock(download, conn);
      if (block !== undefined) return { download, block };
    }
    return undefined;
  }

  /** A block of `download` asked of fewer than `endgameDuplicates` peers, none of them `conn`. */
  private duplicableBlock(download: ChunkDownload, conn: Connection): number | undefined {
    for (let block = 0; block < download.blockState.length; block++) {
      if (download.blockState[block] !== BlockState.requested) continue;
      const asked = askedCount(download, block);
      if (
        asked > 0 &&
        !isAskedOf(download, block, conn.id) &&
        asked < this.rooms.settings.limits.endgameDuplicates
      )
        return block;
    }
    return undefined;
  }
}
