/**
 * The request pipeline: the blocks we have asked each peer for, kept at a depth sized by the rate
 * the peer delivers at, withdrawn (cancelled) when they time out, are taken elsewhere, or arrive
 * from someone else first.
 */
import type { AskedOf, ChunkAssembly, ChunkDownload } from './chunk-assembly.ts';
import {
  type BlockKey,
  blockKey,
  type Connection,
  type ConnectionId,
  type OutstandingRequest,
} from './connection.ts';
import type { Clock, Outbox } from './effects.ts';
import type { GrowthWatch } from './invariants.ts';
import { BLOCK_LENGTH_BYTES, type BlockAddress } from './messages.ts';
import type { EngineSettings } from './options.ts';

/** Moving averages weigh the old rate this many times the new sample (out of one more). */
const RATE_HISTORY_WEIGHT = 3;
/** Requests kept in flight beyond what the rate asks for, so a gap between rounds is covered. */
const EXTRA_REQUESTS = 2;

export class RequestPipeline {
  constructor(
    private readonly settings: EngineSettings,
    private readonly clock: Clock,
    private readonly connections: ReadonlyMap<ConnectionId, Connection>,
    private readonly assembly: ChunkAssembly,
    private readonly outbox: Outbox,
    private readonly growth: GrowthWatch,
  ) {}

  /** How many requests to keep in flight to `conn`: enough for `requestQueueMs` at its rate. */
  limit(conn: Connection): number {
    const limits = this.settings.limits;
    const byRate =
      Math.ceil((conn.downloadBytesPerSecond * limits.requestQueueMs) / 1000 / BLOCK_LENGTH_BYTES) +
      EXTRA_REQUESTS;
    return Math.min(
      limits.maxOutstandingRequestsPerPeer,
      Math.max(this.settings.minOutstandingRequests, byRate),
    );
  }

  request(conn: Connection, download: ChunkDownload, block: number): void {
    const begin = block * BLOCK_LENGTH_BYTES;
    const length = Math.min(BLOCK_LENGTH_BYTES, download.lengthBytes - begin);
    this.assembly.markRequested(download, block, conn);
    conn.outstanding.set(blockKey(download.index, begin), {
      index: download.index,
      begin,
      length,
      sentAtMs: this.clock.nowMs,
    });
    this.growth.grew(conn);
    if (!download.requestLoggedTo.has(conn.id)) {
      download.requestLoggedTo.add(conn.id);
      this.outbox.activity({ kind: 'request-sent', chunk: download.index, to: conn.label });
    }
    this.outbox.send(conn, { type: 'request', index: download.index, begin, length });
  }

  /** The block arrived from `conn`: returns whether we had asked it for exactly this block. */
  received(conn: Connection, index: number, begin: number, lengthBytes: number): boolean {
    const key = blockKey(index, begin);
    const request = conn.outstanding.get(key);
    // A block we did not ask this peer for (or already cancelled) is ignored: cancels race.
    // A piece answers a cancel too: whichever request it was for, the block is here.
    conn.cancelled.delete(key);
    if (request === undefined || request.length !== lengthBytes) return false;
    conn.outstanding.delete(key);
    return true;
  }

  /** Endgame duplicates: everyone else asked for this block is told to forget it. */
  cancelDuplicates(sender: Connection, asked: AskedOf, index: number, begin: number): void {
    if (asked === undefined || asked === sender.id) return;
    const key = blockKey(index, begin);
    if (typeof asked === 'string') this.cancelDuplicate(sender, asked, key);
    else for (const otherId of asked) this.cancelDuplicate(sender, otherId, key);
  }

  private cancelDuplicate(sender: Connection, otherId: ConnectionId, key: BlockKey): void {
    if (otherId === sender.id) return;
    const other = this.connections.get(otherId);
    const duplicate = other?.outstanding.get(key);
    if (other !== undefined && duplicate !== undefined) this.withdraw(other, key, duplicate);
  }

  /** BEP 6: the peer will not send a block we asked for; returns whether it was ours to release. */
  rejected(conn: Connection, reject: BlockAddress): boolean {
    const key = blockKey(reject.index, reject.begin);
    // The answer to an earlier cancel of this block, not to the request that may stand for it now.
    if (conn.cancelled.delete(key)) return false;
    const request = conn.outstanding.get(key);
    if (request === undefined || request.length !== reject.length) return false;
    conn.outstanding.delete(key);
    this.assembly.release(conn, request);
    return true;
  }

  /** Withdraws every request still outstanding for chunk `index`, on every connection. */
  cancelChunk(index: number): void {
    for (const conn of this.connections.values()) this.cancel(conn, index, false);
  }

  /** Withdraws the requests for chunk `index` on `conn`; with `release`, others may be asked instead. */
  cancel(conn: Connection, index: number, release: boolean): void {
    // Values, not entries: no pair per request (the key is the request's own block key).
    for (const request of conn.outstanding.values()) {
      if (request.index !== index) continue;
      this.withdraw(conn, blockKey(request.index, request.begin), request);
      if (release) this.assembly.release(conn, request);
    }
  }

  /**
   * Cancels one request. BEP 6 answers every request, cancelled or not, with the piece or a reject,
   * so the block is remembered until that answer comes (bounded: a peer that never answers cancels
   * cannot grow it past the pipeline's depth twice over).
   */
  private withdraw(conn: Connection, key: BlockKey, request: OutstandingRequest): void {
    conn.outstanding.delete(key);
    this.outbox.send(conn, {
      type: 'cancel',
      index: request.index,
      begin: request.begin,
      length: request.length,
    });
    if (!conn.fastExtension) return;
    conn.cancelled.add(key);
    if (conn.cancelled.size > 2 * this.settings.limits.maxOutstandingRequestsPerPeer) {
      const oldest = conn.cancelled.values().next();
      if (oldest.done !== true) conn.cancelled.delete(oldest.value);
    }
  }

  /** Returns a closed or choked peer's outstanding blocks to the pool. */
  drop(conn: Connection): void {
    for (const request of conn.outstanding.values()) this.assembly.release(conn, request);
    conn.outstanding.clear();
  }

  /** Cancels requests to `conn` older than `requestTimeoutMs`; returns whether any expired. */
  expire(conn: Connection): boolean {
    let expired = false;
    for (const [key, request] of conn.outstanding) {
      if (this.clock.nowMs - request.sentAtMs < this.settings.limits.requestTimeoutMs) continue;
      this.withdraw(conn, key, request);
      this.assembly.release(conn, request);
      expired = true;
    }
    return expired;
  }

  /** Folds the bytes received since the last sample into the peer's moving-average rate. */
  sampleRate(conn: Connection): void {
    const elapsedMs = this.clock.nowMs - conn.lastSampleAtMs;
    if (elapsedMs < this.settings.limits.tickMs) return;
    const sample = Math.floor((conn.receivedSinceSampleBytes * 1000) / elapsedMs);
    conn.downloadBytesPerSecond =
      conn.downloadBytesPerSecond === 0
        ? sample
        : Math.floor(
            (conn.downloadBytesPerSecond * RATE_HISTORY_WEIGHT + sample) / (RATE_HISTORY_WEIGHT + 1),
          );
    conn.receivedSinceSampleBytes = 0;
    conn.lastSampleAtMs = this.clock.nowMs;
  }

  /** Blocks asked for over all connections, plus chunks still being written. */
  outstandingCount(writing: number): number {
    let total = writing;
    for (const conn of this.connections.values()) total += conn.outstanding.size;
    return total;
  }
}
