/**
 * The peer engine: a pure, synchronous state machine for one node (the owner or a peer) speaking
 * BitTorrent's peer wire protocol. Inputs arrive through `handle*` methods, each with the current
 * time; effects (send, connect, close, read, write, activity) are drained with `pollEffects`.
 * Nothing here touches a socket, a disk, a clock or ambient randomness.
 *
 * This file is the face: the inputs, the outputs, message dispatch, the connection lifecycle and the
 * invariants. Each job lives in a room of its own beside it (see ARCHITECTURE.md), and the face owns
 * the records the rooms share and lends them out.
 */

import type { ChunkListMessage } from './availability.ts';
import { Bitfield } from './bitfield.ts';
import type { ChunkDownload } from './chunk-assembly.ts';
import type { Geometry } from './chunking.ts';
import { type Connection, type ConnectionId, newConnectionRecord } from './connection.ts';
import { type Clock, type Effect, Outbox } from './effects.ts';
import { type CloseReason, describeCloseReason, UsageError, wireError } from './errors.ts';
import { brokenInvariant, type InvariantRooms } from './invariants.ts';
import { type EngineLimits, MAX_ALLOWED_FAST_CHUNKS } from './limits.ts';
import type { Message } from './messages.ts';
import { checkOptions, type EngineOptions, type PeerAddress, type Role, resolveSettings } from './options.ts';
import { buildRooms, type Counters, newCounters, type Rooms } from './rooms.ts';
import { keepAliveDue, timerCloseReason } from './timers.ts';

export type { ConnectionId, Effect } from './effects.ts';
export { DEFAULT_LIMITS, type EngineLimits } from './limits.ts';
export type {
  EngineOptions,
  OwnerAdvertising,
  PeerAddress,
  PeerRole,
  PhaseMode,
  Role,
  Topology,
} from './options.ts';

/** The counters the rooms keep, and when we completed. */
export type EngineStats = Readonly<Counters> & { readonly completedAtMs: number | undefined };

export class Engine {
  readonly role: Role;
  readonly name: string;
  readonly geometry: Geometry;
  readonly limits: EngineLimits;
  private readonly clock: Clock = { nowMs: 0 };
  private readonly outbox = new Outbox(this.clock);
  private readonly have: Bitfield;
  private readonly fromOwner: Bitfield;
  private readonly connections = new Map<ConnectionId, Connection>();
  private readonly stats: Counters = newCounters();
  private completedAtMs: number | undefined;
  private completeAnnounced = false;
  private nextOutboundId = 1;
  private stopped = false;
  private readonly rooms: Rooms;
  /** What the invariant check reads, made once. */
  private invariantView: InvariantRooms | undefined;

  constructor(options: EngineOptions) {
    checkOptions(options);
    const settings = resolveSettings(options);
    const { geometry, limits } = settings;
    this.role = options.role;
    this.name = options.name;
    this.geometry = geometry;
    this.limits = limits;
    this.have =
      options.role === 'owner'
        ? Bitfield.full(geometry.pieceCount)
        : (options.have?.copy() ?? new Bitfield(geometry.pieceCount));
    this.fromOwner = options.fromOwner?.copy() ?? new Bitfield(geometry.pieceCount);
    const { clock, outbox, have, connections, stats: counters } = this;
    this.rooms = buildRooms(
      { options, settings, clock, outbox, have, connections, counters },
      {
        close: (conn, reason, redial) => this.closeConnection(conn, reason, redial),
        isStopped: () => this.stopped,
        dial: (address) => this.dial(address),
      },
    );
  }

  // ---- getters -------------------------------------------------------------------------------

  get isComplete(): boolean {
    return this.have.complete;
  }

  /** A copy of the verified, stored chunks. */
  haveField(): Bitfield {
    return this.have.copy();
  }

  fromOwnerField(): Bitfield {
    return this.fromOwner.copy();
  }

  getStats(): EngineStats {
    return { ...this.stats, completedAtMs: this.completedAtMs };
  }

  openConnectionCount(): number {
    return this.connections.size;
  }

  /**
   * Checks internal invariants (limits; with `deep`, also that nothing advertised is unheld) and
   * returns the first broken one, for the simulator's checker.
   */
  checkInvariants(deep = false): string | undefined {
    const { limits, have, connections, rooms } = this;
    this.invariantView ??= { limits, have, connections, rooms };
    return brokenInvariant(this.invariantView, deep);
  }

  // ---- inputs --------------------------------------------------------------------------------

  /**
   * Tells the engine about remote addresses. A `download-neighbour` replaces any earlier one (a ring
   * neighbour that moved); the engine dials the addresses it needs and redials them with backoff.
   */
  handlePeers(nowMs: number, peers: readonly PeerAddress[]): void {
    this.advance(nowMs);
    this.rooms.addressBook.learn(peers);
    this.rooms.addressBook.dialDue();
    this.scheduleTick();
  }

  /** We listen on `port` at `ownAddresses`: our BEP 10 `p`; PEX never offers us to ourselves. */
  handleListening(nowMs: number, port: number, ownAddresses: readonly string[]): void {
    this.advance(nowMs);
    this.rooms.exchange.listening(port, ownAddresses);
  }

  /** An outbound connection we asked for is established. */
  handleConnected(nowMs: number, connection: ConnectionId): void {
    this.advance(nowMs);
    const conn = this.connections.get(connection);
    if (conn === undefined || conn.state !== 'connecting')
      throw new UsageError(`connected: unknown ${connection}`);
    conn.state = 'handshaking';
    conn.lastReceivedAtMs = nowMs;
    this.rooms.handshakes.send(conn);
  }

  /** A remote connected to us. The driver names the connection. */
  handleAccepted(nowMs: number, connection: ConnectionId, remoteAddress: string): void {
    this.advance(nowMs);
    if (this.connections.has(connection)) throw new UsageError(`accepted: duplicate id ${connection}`);
    if (this.stopped || this.connections.size >= this.limits.maxConnections) {
      this.outbox.push({ kind: 'close', connection, reason: { code: 'too-many-connections' } });
      return;
    }
    const conn = this.newConnection(connection, 'inbound', remoteAddress, undefined);
    conn.state = 'handshaking';
    this.scheduleTick();
  }

  /** Bytes from the remote; nothing keeps them after the call (blocks are copied), so they may be reused. */
  handleData(nowMs: number, connection: ConnectionId, bytes: Uint8Array): void {
    this.advance(nowMs);
    const conn = this.connections.get(connection);
    if (conn === undefined) return;
    conn.lastReceivedAtMs = nowMs;
    const result = conn.decoder.push(bytes);
    for (const event of result.events) {
      if (!this.connections.has(connection)) break;
      if (event.type === 'handshake') this.rooms.handshakes.received(conn, event);
      else if (conn.remotePeerId === undefined) {
        this.closeConnection(conn, {
          code: 'protocol',
          error: wireError('bad-handshake', 'message before handshake'),
        });
        break;
      } else this.onMessage(conn, event);
    }
    conn.decoder.release();
    if (!result.ok && this.connections.has(connection)) {
      this.closeConnection(conn, { code: 'protocol', error: result.error });
    }
  }

  /** The connection is gone: closed by the remote, reset, or never established. */
  handleClosed(nowMs: number, connection: ConnectionId, reason: string): void {
    this.advance(nowMs);
    const conn = this.connections.get(connection);
    if (conn === undefined) return;
    this.forget(conn, reason, true);
  }

  /** The driver read a block we asked for; `bytes` undefined when the read failed. */
  handleBlockRead(
    nowMs: number,
    connection: ConnectionId,
    index: number,
    begin: number,
    bytes: Uint8Array | undefined,
  ): void {
    this.advance(nowMs);
    const conn = this.connections.get(connection);
    if (conn === undefined) return;
    this.rooms.serving.onBlockRead(conn, index, begin, bytes);
  }

  /** The driver stored (or failed to store) a verified chunk. */
  handleChunkWritten(nowMs: number, index: number, error: string | undefined): void {
    this.advance(nowMs);
    const download = this.rooms.storage.pending(index);
    if (download === undefined) throw new UsageError(`chunk-written: chunk ${index} was not being written`);
    if (error !== undefined) {
      this.outbox.activity({ kind: 'storage-error', chunk: index, message: error });
      this.rooms.storage.failed(nowMs, index);
      this.scheduleTick();
      return;
    }
    this.onChunkStored(this.rooms.storage.written(index));
  }

  /** Timers: handshake, idle, keep-alive, request timeouts, starvation and redials. */
  handleTimeout(nowMs: number): void {
    this.advance(nowMs);
    this.rooms.sweep.disarm();
    for (const conn of [...this.connections.values()]) this.checkConnectionTimers(conn);
    this.rooms.policy.checkStarvation(nowMs, () =>
      this.rooms.pipeline.outstandingCount(this.rooms.storage.writing.size),
    );
    this.rooms.storage.retryDue(nowMs);
    this.rooms.addressBook.dialDue();
    this.rooms.exchange.sendDue();
    this.rooms.scheduler.fillAll();
    this.scheduleTick();
  }

  /** Closes every connection and dials nothing more. */
  shutdown(nowMs: number): void {
    this.advance(nowMs);
    this.stopped = true;
    for (const conn of [...this.connections.values()]) this.closeConnection(conn, { code: 'shutdown' });
    this.rooms.sweep.disarm();
  }

  // ---- outputs -------------------------------------------------------------------------------

  /** Drains the effects produced since the last call, in order. */
  pollEffects(): Effect[] {
    return this.outbox.drain();
  }

  /** When `handleTimeout` wants to run next, or undefined when nothing is waiting on time. */
  pollTimeout(): number | undefined {
    return this.rooms.sweep.next;
  }

  // ---- time ----------------------------------------------------------------------------------

  private advance(nowMs: number): void {
    if (!Number.isInteger(nowMs) || nowMs < this.clock.nowMs) {
      throw new UsageError(
        `time must be an integer that never decreases (was ${this.clock.nowMs}, got ${nowMs})`,
      );
    }
    this.clock.nowMs = nowMs;
    this.rooms.policy.invalidate();
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    const waiting =
      this.connections.size > 0 ||
      this.rooms.storage.writeRetries.size > 0 ||
      this.rooms.addressBook.wantsRedial();
    this.rooms.sweep.schedule(this.clock.nowMs, waiting);
  }

  private checkConnectionTimers(conn: Connection): void {
    const close = timerCloseReason(conn, this.clock.nowMs, this.limits);
    if (close !== undefined) this.closeConnection(conn, close);
    if (close !== undefined || conn.state !== 'open') return;
    this.rooms.pipeline.sampleRate(conn);
    if (this.rooms.pipeline.expire(conn)) this.rooms.scheduler.fill(conn);
    // After the cancels `expire` may send, which count as sending.
    if (keepAliveDue(conn, this.clock.nowMs, this.limits)) this.outbox.send(conn, { type: 'keep-alive' });
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  private dial(address: string): ConnectionId {
    const id = `out:${this.nextOutboundId++}`;
    this.newConnection(id, 'outbound', address, address);
    this.outbox.push({ kind: 'connect', connection: id, address });
    return id;
  }

  private newConnection(
    id: ConnectionId,
    direction: 'inbound' | 'outbound',
    address: string,
    knownAddress: string | undefined,
  ): Connection {
    const conn = newConnectionRecord(id, direction, address, knownAddress, this.geometry, this.clock.nowMs);
    this.connections.set(id, conn);
    this.rooms.addressBook.classify(conn);
    return conn;
  }

  private closeConnection(conn: Connection, reason: CloseReason, redial = true): void {
    this.outbox.push({ kind: 'close', connection: conn.id, reason });
    this.forget(conn, describeCloseReason(reason), redial);
  }

  private forget(conn: Connection, reason: string, redial: boolean): void {
    if (!this.connections.delete(conn.id)) return;
    this.rooms.serving.forget(conn);
    this.rooms.choking.forget(conn);
    if (conn.state === 'open') this.outbox.activity({ kind: 'disconnected', peer: conn.label, reason });
    this.rooms.availability.remove(conn);
    this.rooms.pipeline.drop(conn);
    this.rooms.addressBook.closed(conn, redial);
    // Callers up the stack may still hold this object: nothing more is sent or asked on it.
    conn.state = 'closed';
    this.scheduleTick();
    this.rooms.scheduler.fillAll();
  }

  // ---- messages ------------------------------------------------------------------------------

  private onMessage(conn: Connection, message: Message): void {
    switch (message.type) {
      case 'keep-alive':
      case 'port':
      case 'suggest':
        return;
      case 'extended':
        this.onExtended(conn, message.extendedId, message.payload);
        return;
      case 'choke':
      case 'unchoke':
        this.onPeerChoke(conn, message.type === 'choke');
        return;
      case 'interested':
      case 'not-interested':
        this.onPeerInterest(conn, message.type === 'interested');
        return;
      case 'have':
        this.rooms.serving.onRemoteHave(conn, message.index);
        this.onList(conn, message);
        return;
      case 'bitfield':
      case 'have-all':
      case 'have-none':
        this.onList(conn, message);
        return;
      case 'request':
        this.rooms.serving.onRequest(conn, message);
        return;
      case 'cancel':
        this.rooms.serving.onCancel(conn, message);
        return;
      case 'piece':
        this.onPiece(conn, message.index, message.begin, message.block);
        return;
      case 'reject':
        if (this.requireFastExtension(conn, message.type) && this.rooms.pipeline.rejected(conn, message))
          this.rooms.scheduler.fill(conn);
        return;
      case 'allowed-fast':
        this.onAllowedFast(conn, message.index);
        return;
    }
  }

  private onPeerChoke(conn: Connection, choking: boolean): void {
    conn.peerChoking = choking;
    // Without BEP 6 a choke silently drops our requests; with it, rejects will follow.
    if (!choking) this.rooms.scheduler.fill(conn);
    else if (!conn.fastExtension) this.rooms.pipeline.drop(conn);
  }

  private onPeerInterest(conn: Connection, interested: boolean): void {
    conn.peerInterested = interested;
    if (interested) this.rooms.choking.offerSlot(conn);
    else this.rooms.choking.notInterested(conn);
  }

  /** BEP 10 / BEP 9 (extension.ts): handshakes are recorded, metadata requests answered. */
  private onExtended(conn: Connection, extendedId: number, payload: Uint8Array): void {
    const outcome = this.rooms.extensions.receive(conn, extendedId, payload);
    if (!outcome.ok) this.closeConnection(conn, { code: 'protocol', error: outcome.error });
    else for (const reply of outcome.replies) this.outbox.send(conn, reply);
  }

  /** BEP 6 messages are a protocol error from a remote that did not offer BEP 6. */
  private requireFastExtension(conn: Connection, type: Message['type']): boolean {
    if (conn.fastExtension) return true;
    this.closeConnection(conn, {
      code: 'protocol',
      error: wireError('unknown-message', `${type} without BEP 6`),
    });
    return false;
  }

  /** A chunk ID list from the remote (HAVE, BITFIELD, or BEP 6's HAVE ALL and HAVE NONE). */
  private onList(conn: Connection, message: ChunkListMessage): void {
    if (
      (message.type === 'have-all' || message.type === 'have-none') &&
      !this.requireFastExtension(conn, message.type)
    )
      return;
    const list = this.rooms.availability.receive(conn, message);
    this.outbox.activity({ kind: 'list-received', from: conn.label, list });
    this.afterRemoteListChange(conn);
  }

  private afterRemoteListChange(conn: Connection): void {
    if (this.rooms.advertising.handsOutShares) this.rooms.advertising.feedShare(conn);
    if (conn.ownerShare === undefined && conn.isOwner) conn.ownerShare = conn.remoteHave.copy();
    if (this.rooms.policy.recheckNeighbour()) this.rooms.scheduler.fillAll();
    this.rooms.policy.updateInterest(conn);
    this.rooms.scheduler.fill(conn);
  }

  private onAllowedFast(conn: Connection, index: number): void {
    if (!this.requireFastExtension(conn, 'allowed-fast')) return;
    if (conn.allowedFast.size < MAX_ALLOWED_FAST_CHUNKS) conn.allowedFast.add(index);
    this.rooms.scheduler.fill(conn);
  }

  // ---- downloading ---------------------------------------------------------------------------

  private onPiece(conn: Connection, index: number, begin: number, block: Uint8Array): void {
    if (!this.rooms.pipeline.received(conn, index, begin, block.length)) return;
    conn.lastBlockAtMs = this.clock.nowMs;
    this.stats.bytesDown += block.length;
    conn.receivedSinceSampleBytes += block.length;
    this.rooms.policy.progressed(this.clock.nowMs);
    const download = this.rooms.assembly.downloads.get(index);
    if (download !== undefined) {
      const asked = this.rooms.assembly.takeAsked(download, begin);
      if (this.rooms.assembly.store(download, conn, begin, block))
        this.rooms.pipeline.cancelDuplicates(conn, asked, index, begin);
      if (this.rooms.assembly.isComplete(download)) this.finishChunk(download);
    }
    this.rooms.scheduler.fill(conn);
  }

  private finishChunk(download: ChunkDownload): void {
    this.rooms.assembly.downloads.delete(download.index);
    // Requests for it still out (after a take-over, say) are of no use now.
    this.rooms.pipeline.cancelChunk(download.index);
    if (this.rooms.verification.verify(download)) this.rooms.storage.write(download);
    else this.rooms.verification.onCorrupt(download);
  }

  /** A verified chunk is on disk: it is held, announced to every open connection, and counted. */
  private onChunkStored(download: ChunkDownload): void {
    const { index } = download;
    this.have.set(index);
    this.rooms.policy.chunkStored(this.clock.nowMs);
    this.rooms.policy.recheckNeighbour();
    if (download.lastSourceIsOwner) {
      this.fromOwner.set(index);
      this.stats.chunksFromOwner++;
    } else {
      this.stats.chunksFromPeers++;
    }
    this.outbox.activity({
      kind: 'chunk-received',
      chunk: index,
      from: download.lastSource,
      bytes: download.lengthBytes,
      fromOwner: download.lastSourceIsOwner,
    });
    for (const conn of this.connections.values()) {
      // Sent even to peers that hold the chunk: an owner handing out shares learns progress this way.
      if (conn.state === 'open') this.rooms.advertising.sendHave(conn, index);
    }
    if (this.have.complete && this.rooms.storage.writing.size === 0 && !this.completeAnnounced)
      this.complete();
    // Last, as it may close connections: the chunk is held by now, so nothing picks it again.
    this.rooms.verification.confirmSuspects(download);
    this.rooms.scheduler.fillAll();
  }

  private complete(): void {
    this.completeAnnounced = true;
    this.completedAtMs = this.clock.nowMs;
    this.outbox.activity({ kind: 'complete', chunks: this.geometry.pieceCount });
    this.outbox.push({ kind: 'complete' });
    this.rooms.policy.refreshInterest();
  }
}
