/**
 * Serving: requests from peers wait in their queue, and a few block reads at a time are asked of the
 * driver, so the engine, not the socket buffers, decides the upload order (see `compareUploads`).
 * Bad requests are refused (a BEP 6 reject) and counted; past the limits the peer is closed.
 */
import type { Bitfield } from './bitfield.ts';
import type { Choking } from './choking.ts';
import { chunkLength } from './chunking.ts';
import { encodePieceHeader } from './codec.ts';
import { blockKey, type Connection, type ConnectionId, type QueuedRequest } from './connection.ts';
import type { Outbox } from './effects.ts';
import type { CloseReason } from './errors.ts';
import type { GrowthWatch } from './invariants.ts';
import { MAX_COPIES_COUNTED, MAX_SERVING_CHUNKS_PER_PEER } from './limits.ts';
import type { BlockAddress } from './messages.ts';
import type { EngineSettings } from './options.ts';

/** What decides whose request is read next, for one connection's oldest queued request. */
export interface UploadCandidate {
  /** A chunk under way to this peer: finishing it first lets the peer share it sooner. */
  readonly continues: boolean;
  /** How often a super-seeding owner has begun sending the chunk (0 when it continues). */
  readonly copies: number;
  /** Chunks the peer holds: the one holding least goes first. */
  readonly held: number;
  /** Arrival order of the request across all peers; unique, so the order is total. */
  readonly sequence: number;
}

/**
 * The upload order: a chunk under way first; then, for a super-seeding owner, a chunk it has sent
 * least often (a scarce owner sends every chunk once before any twice); then the peer holding least;
 * then the oldest request.
 */
export function compareUploads(a: UploadCandidate, b: UploadCandidate): number {
  if (a.continues !== b.continues) return a.continues ? -1 : 1;
  return a.copies - b.copies || a.held - b.held || a.sequence - b.sequence;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const newCandidate = (): Mutable<UploadCandidate> => ({ continues: false, copies: 0, held: 0, sequence: 0 });

export interface ServingStats {
  bytesUp: number;
}

export class Serving {
  /** Block reads asked of the driver and not yet answered, over all connections. */
  private readsInFlightCount = 0;
  private nextRequestSequence = 0;
  /** Owner only: how many times it has begun sending each chunk (super-seeding sends each once first). */
  private readonly copiesSent: Uint16Array;
  /**
   * Connections that may have queued requests: every one that queued one, dropped once found empty
   * or gone. The owner of a large swarm has thousands of connections and only some waiting.
   */
  private readonly waiting = new Set<Connection>();
  /** Scratch records for `nextUpload`. */
  private readonly candidates = [newCandidate(), newCandidate()] as const;

  constructor(
    private readonly settings: EngineSettings,
    private readonly have: Bitfield,
    private readonly connections: ReadonlyMap<ConnectionId, Connection>,
    private readonly choking: Choking,
    private readonly outbox: Outbox,
    private readonly stats: ServingStats,
    private readonly close: (conn: Connection, reason: CloseReason) => void,
    private readonly handsOutShares: boolean,
    private readonly growth: GrowthWatch,
  ) {
    this.copiesSent = new Uint16Array(settings.role === 'owner' ? settings.geometry.pieceCount : 0);
  }

  get readsInFlight(): number {
    return this.readsInFlightCount;
  }

  onRequest(conn: Connection, request: BlockAddress): void {
    this.logFirstRequest(conn, request.index);
    const limits = this.settings.limits;
    if (!this.have.has(request.index)) {
      conn.invalidRequests++;
      if (conn.invalidRequests > limits.maxInvalidRequests) this.close(conn, { code: 'request-flood' });
      else this.refuse(conn, request);
      return;
    }
    if (conn.amChoking) {
      this.refuse(conn, request);
      return;
    }
    if (conn.queued.length >= limits.maxQueuedRequestsFromPeer) {
      if (!conn.fastExtension) this.close(conn, { code: 'request-flood' });
      else this.refuse(conn, request);
      return;
    }
    const { index, begin, length } = request;
    conn.queued.push({ index, begin, length, sequence: this.nextRequestSequence++ });
    this.waiting.add(conn);
    this.growth.grew(conn);
    this.serveQueued();
  }

  onCancel(conn: Connection, request: BlockAddress): void {
    const at = conn.queued.findIndex(
      (queued) =>
        queued.index === request.index && queued.begin === request.begin && queued.length === request.length,
    );
    if (at < 0) return; // A read already in flight is answered with the piece when it arrives.
    conn.queued.splice(at, 1);
    // BEP 6: a cancelled request is still answered, with a reject.
    this.refuse(conn, request);
  }

  /** The driver read a block for `conn`; `bytes` undefined when the read failed. */
  onBlockRead(conn: Connection, index: number, begin: number, bytes: Uint8Array | undefined): void {
    const key = blockKey(index, begin);
    const request = conn.readsInFlight.get(key);
    if (request !== undefined) {
      conn.readsInFlight.delete(key);
      this.readsInFlightCount--;
      if (bytes === undefined || bytes.length !== request.length || conn.amChoking)
        this.refuse(conn, request);
      else this.sendPiece(conn, request, bytes);
    }
    this.serveQueued();
  }

  /** Starts block reads, in upload order, while there is room. */
  serveQueued(): void {
    while (this.readsInFlightCount < this.settings.limits.maxReadsInFlight) {
      const conn = this.nextUpload();
      if (conn === undefined) return;
      const request = conn.queued.shift() as QueuedRequest;
      const key = blockKey(request.index, request.begin);
      if (conn.readsInFlight.has(key)) continue;
      conn.readsInFlight.set(key, request);
      this.growth.grew(conn);
      this.readsInFlightCount++;
      if (this.handsOutShares && request.begin === 0) this.countCopy(request.index);
      this.outbox.push({
        kind: 'read-block',
        connection: conn.id,
        index: request.index,
        begin: request.begin,
        length: request.length,
      });
    }
  }

  /** The connection is gone: its reads may still come back from the driver; they no longer count. */
  forget(conn: Connection): void {
    this.readsInFlightCount -= conn.readsInFlight.size;
    conn.readsInFlight.clear();
    // What we sent it of chunks it had not finished is still sent: each part gets its line.
    for (const index of [...conn.serving.keys()]) this.onRemoteHave(conn, index);
    this.serveQueued();
  }

  /**
   * The peer now holds `index` (or is gone). If we sent it only part of that chunk (others sent the
   * rest), the part is logged as sent now: every chunk we send, whole or not, gets its line.
   */
  onRemoteHave(conn: Connection, index: number): void {
    const served = conn.serving.get(index);
    if (served === undefined) return;
    conn.serving.delete(index);
    if (served === 0) return;
    const chunkBytes = chunkLength(this.settings.geometry, index);
    this.outbox.activity({ kind: 'chunk-sent', chunk: index, to: conn.label, bytes: served, chunkBytes });
  }

  /** The first request for a chunk in this round is logged; later blocks of it are not. */
  private logFirstRequest(conn: Connection, index: number): void {
    if (conn.serving.has(index)) return;
    if (conn.serving.size >= MAX_SERVING_CHUNKS_PER_PEER) {
      const oldest = conn.serving.keys().next().value as number;
      conn.serving.delete(oldest);
    }
    conn.serving.set(index, 0);
    this.outbox.activity({ kind: 'request-received', chunk: index, from: conn.label });
  }

  /**
   * Without BEP 6 a refused request goes unanswered; with it, a reject answers it. The address is
   * copied field by field: `request` may be the incoming REQUEST or CANCEL message itself.
   */
  private refuse(conn: Connection, request: BlockAddress): void {
    const { index, begin, length } = request;
    if (conn.fastExtension) this.outbox.send(conn, { type: 'reject', index, begin, length });
  }

  private countCopy(index: number): void {
    this.copiesSent[index] = Math.min(MAX_COPIES_COUNTED, (this.copiesSent[index] as number) + 1);
  }

  /** The connection whose oldest request is read next (see `compareUploads`). */
  private nextUpload(): Connection | undefined {
    // Two records filled in turn, not one per connection: the owner compares hundreds per read.
    let best: Connection | undefined;
    let bestCandidate = this.candidates[0];
    let trial = this.candidates[1];
    // The order of the scan does not matter: the upload order is total (sequence numbers are unique).
    for (const conn of this.waiting) {
      if (conn.queued.length === 0 || this.connections.get(conn.id) !== conn) {
        this.waiting.delete(conn);
        continue;
      }
      if (!this.fillCandidate(conn, trial)) continue;
      if (best === undefined || compareUploads(trial, bestCandidate) < 0) {
        best = conn;
        const previous = bestCandidate;
        bestCandidate = trial;
        trial = previous;
      }
    }
    return best;
  }

  /** Fills `into` from `conn`'s oldest queued request; false when it has none that may be read now. */
  private fillCandidate(conn: Connection, into: Mutable<UploadCandidate>): boolean {
    const head = conn.queued[0];
    if (head === undefined || conn.amChoking) return false;
    if (conn.readsInFlight.size >= this.settings.limits.maxReadsInFlightPerPeer) return false;
    const continues = (conn.serving.get(head.index) ?? 0) > 0;
    into.continues = continues;
    into.copies = continues ? 0 : (this.copiesSent[head.index] ?? 0);
    into.held = conn.remoteHave.count;
    into.sequence = head.sequence;
    return true;
  }

  private sendPiece(conn: Connection, request: BlockAddress, block: Uint8Array): void {
    this.outbox.sendBytes(conn, encodePieceHeader(request.index, request.begin, block.length));
    this.outbox.sendBytes(conn, block);
    this.stats.bytesUp += block.length;
    conn.servedSinceUnchokeBytes += block.length;
    const served = (conn.serving.get(request.index) ?? 0) + block.length;
    const total = chunkLength(this.settings.geometry, request.index);
    if (served >= total) {
      conn.serving.delete(request.index);
      this.outbox.activity({
        kind: 'chunk-sent',
        chunk: request.index,
        to: conn.label,
        bytes: total,
        chunkBytes: total,
      });
    } else if (conn.serving.has(request.index)) {
      conn.serving.set(request.index, served);
    }
    this.choking.endTurnIfDue(conn);
  }
}
