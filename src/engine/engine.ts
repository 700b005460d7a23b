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
import { AddressBook } from './address-book.ts';
import { Advertising } from './advertising.ts';
import { Availability } from './availability.ts';
import { Bitfield } from './bitfield.ts';
import { Choking } from './choking.ts';
import { ChunkAssembly, type ChunkDownload } from './chunk-assembly.ts';
import type { Geometry } from './chunking.ts';
import { type Connection, type ConnectionId, newConnectionRecord } from './connection.ts';
import { DownloadPolicy } from './download-policy.ts';
import { type Clock, type Effect, Outbox } from './effects.ts';
import { type CloseReason, describeCloseReason, UsageError, wireError } from './errors.ts';
import { ExtensionSession } from './extension.ts';
import { Handshakes } from './handshake.ts';
import { brokenInvariant } from './invariants.ts';
import { DEFAULT_LIMITS, type EngineLimits, MAX_ALLOWED_FAST_CHUNKS } from './limits.ts';
import { BLOCK_LENGTH_BYTES, type Message } from './messages.ts';
import type { EngineOptions, EngineSettings, PeerAddress, Role } from './options.ts';
import { OwnerShares } from './owner-shares.ts';
import { RequestPipeline } from './request-pipeline.ts';
import { Scheduler } from './scheduler.ts';
import { Serving } from './serving.ts';
import { Storage } from './storage.ts';
import { handshakeExpired, idleExpired, keepAliveDue, Sweep } from './timers.ts';
import { Verification } from './verification.ts';

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

export interface EngineStats {
  readonly chunksFromOwner: number;
  readonly chunksFromPeers: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly completedAtMs: number | undefined;
  readonly corruptChunks: number;
}

/** The options with every default filled in. */
function resolveSettings(options: EngineOptions): EngineSettings {
  const { geometry } = options;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const ownerShareChunks = Math.max(1, options.ownerShareChunks ?? Math.ceil(geometry.pieceCount / 5));
  return {
    role: options.role,
    geometry,
    limits,
    topology: options.topology ?? 'ring',
    picker: options.picker ?? 'random',
    phases: options.phases ?? 'two-phase',
    endgame: options.endgame ?? true,
    ownerAdvertising: options.ownerAdvertising ?? 'shares',
    ownerShareChunks,
    uploadSlots: options.uploadSlots ?? Number.POSITIVE_INFINITY,
    slotBytes: Math.max(1, ownerShareChunks) * geometry.pieceLengthBytes,
    // At least a whole chunk in flight, so a new sender's first chunk needs no second round trip.
    minOutstandingRequests:
      limits.minOutstandingRequestsPerPeer ??
      Math.min(
        limits.maxOutstandingRequestsPerPeer,
        Math.max(4, Math.ceil(geometry.pieceLengthBytes / BLOCK_LENGTH_BYTES)),
      ),
  };
}

function checkOptions(options: EngineOptions): void {
  if (options.peerId.length !== 20) throw new UsageError('peer id must be 20 bytes');
  if (options.infoHash.length !== 20) throw new UsageError('info hash must be 20 bytes');
  if (options.pieceHashes.length !== options.geometry.pieceCount) {
    throw new UsageError(
      `expected ${options.geometry.pieceCount} piece hashes, got ${options.pieceHashes.length}`,
    );
  }
}

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
  private readonly stats = {
    chunksFromOwner: 0,
    chunksFromPeers: 0,
    bytesUp: 0,
    bytesDown: 0,
    corruptChunks: 0,
  };
  private completedAtMs: number | undefined;
  private completeAnnounced = false;
  private nextOutboundId = 1;
  private stopped = false;
  private readonly availability: Availability;
  private readonly advertising: Advertising;
  private readonly choking: Choking;
  private readonly serving: Serving;
  private readonly assembly: ChunkAssembly;
  private readonly storage: Storage;
  private readonly verification: Verification;
  private readonly policy: DownloadPolicy;
  private readonly pipeline: RequestPipeline;
  private readonly scheduler: Scheduler;
  private readonly addressBook: AddressBook;
  private readonly handshakes: Handshakes;
  /** BEP 10 / BEP 9 (extension.ts): extension handshakes and ut_metadata, per connection. */
  private readonly extensions: ExtensionSession;
  private readonly sweep: Sweep;

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
    const { clock, outbox, have, connections, stats } = this;
    this.availability = new Availability(settings.role, geometry.pieceCount);
    const shares = new OwnerShares(
      geometry.pieceCount,
      settings.ownerShareChunks,
      this.availability,
      options.random,
    );
    this.advertising = new Advertising(settings, have, shares, outbox);
    this.choking = new Choking(settings, connections, outbox);
    const close = (conn: Connection, reason: CloseReason): void => this.closeConnection(conn, reason);
    const closeForGood = (conn: Connection, reason: CloseReason): void =>
      this.closeConnection(conn, reason, false);
    this.serving = new Serving(
      settings,
      have,
      connections,
      this.choking,
      outbox,
      stats,
      close,
      this.advertising.handsOutShares,
    );
    this.assembly = new ChunkAssembly(geometry, options.allocateChunk);
    this.storage = new Storage(limits, outbox);
    this.verification = new Verification(options, limits, connections, outbox, stats, closeForGood);
    this.policy = new DownloadPolicy(settings, have, connections, outbox);
    this.pipeline = new RequestPipeline(settings, clock, connections, this.assembly, outbox);
    const { assembly, storage, availability, policy, pipeline } = this;
    const singleSource = this.verification.singleSource;
    this.scheduler = new Scheduler({
      settings,
      clock,
      random: options.random,
      have,
      connections,
      assembly,
      storage,
      availability,
      policy,
      pipeline,
      singleSource,
    });
    this.addressBook = new AddressBook(settings, clock, options.random, {
      connections,
      untrusted: this.verification.untrusted,
      have,
      isStopped: () => this.stopped,
      dial: (address) => this.dial(address),
    });
    this.extensions = new ExtensionSession({
      requestQueue: limits.maxQueuedRequestsFromPeer,
      metadata: options.metadata,
    });
    this.handshakes = new Handshakes({
      infoHash: options.infoHash,
      peerId: options.peerId,
      connections,
      untrusted: this.verification.untrusted,
      outbox,
      addressBook: this.addressBook,
      advertising: this.advertising,
      choking: this.choking,
      extensions: this.extensions,
      policy,
      close: (conn, reason, redial) => this.closeConnection(conn, reason, redial),
    });
    this.sweep = new Sweep(limits.tickMs);
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
    return brokenInvariant(
      {
        limits: this.limits,
        have: this.have,
        connections: this.connections,
        downloading: this.assembly.downloads.keys(),
        readsInFlight: this.serving.readsInFlight,
      },
      deep,
    );
  }

  // ---- inputs --------------------------------------------------------------------------------

  /**
   * Tells the engine about remote addresses. A `download-neighbour` replaces any earlier one (a ring
   * neighbour that moved); the engine dials the addresses it needs and redials them with backoff.
   */
  handlePeers(nowMs: number, peers: readonly PeerAddress[]): void {
    this.advance(nowMs);
    this.addressBook.learn(peers);
    this.addressBook.dialDue();
    this.scheduleTick();
  }

  /** An outbound connection we asked for is established. */
  handleConnected(nowMs: number, connection: ConnectionId): void {
    this.advance(nowMs);
    const conn = this.connections.get(connection);
    if (conn === undefined || conn.state !== 'connecting')
      throw new UsageError(`connected: unknown ${connection}`);
    conn.state = 'handshaking';
    conn.lastReceivedAtMs = nowMs;
    this.handshakes.send(conn);
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

  handleData(nowMs: number, connection: ConnectionId, bytes: Uint8Array): void {
    this.advance(nowMs);
    const conn = this.connections.get(connection);
    if (conn === undefined) return;
    conn.lastReceivedAtMs = nowMs;
    const result = conn.decoder.push(bytes);
    for (const event of result.events) {
      if (!this.connections.has(connection)) return;
      if (event.type === 'handshake') this.handshakes.received(conn, event);
      else if (conn.remotePeerId === undefined) {
        this.closeConnection(conn, {
          code: 'protocol',
          error: wireError('bad-handshake', 'message before handshake'),
        });
        return;
      } else this.onMessage(conn, event);
    }
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
    this.serving.onBlockRead(conn, index, begin, bytes);
  }

  /** The driver stored (or failed to store) a verified chunk. */
  handleChunkWritten(nowMs: number, index: number, error: string | undefined): void {
    this.advance(nowMs);
    const download = this.storage.pending(index);
    if (download === undefined) throw new UsageError(`chunk-written: chunk ${index} was not being written`);
    if (error !== undefined) {
      this.outbox.activity({ kind: 'storage-error', chunk: index, message: error });
      this.storage.failed(nowMs, index);
      this.scheduleTick();
      return;
    }
    this.onChunkStored(this.storage.written(index));
  }

  /** Timers: handshake, idle, keep-alive, request timeouts, starvation and redials. */
  handleTimeout(nowMs: number): void {
    this.advance(nowMs);
    this.sweep.disarm();
    for (const conn of [...this.connections.values()]) this.checkConnectionTimers(conn);
    this.policy.checkStarvation(nowMs, () => this.pipeline.outstandingCount(this.storage.writing.size));
    this.storage.retryDue(nowMs);
    this.addressBook.dialDue();
    this.scheduler.fillAll();
    this.scheduleTick();
  }

  /** Closes every connection and dials nothing more. */
  shutdown(nowMs: number): void {
    this.advance(nowMs);
    this.stopped = true;
    for (const conn of [...this.connections.values()]) this.closeConnection(conn, { code: 'shutdown' });
    this.sweep.disarm();
  }

  // ---- outputs -------------------------------------------------------------------------------

  /** Drains the effects produced since the last call, in order. */
  pollEffects(): Effect[] {
    return this.outbox.drain();
  }

  /** When `handleTimeout` wants to run next, or undefined when nothing is waiting on time. */
  pollTimeout(): number | undefined {
    return this.sweep.next;
  }

  // ---- time ----------------------------------------------------------------------------------

  private advance(nowMs: number): void {
    if (!Number.isInteger(nowMs) || nowMs < this.clock.nowMs) {
      throw new UsageError(
        `time must be an integer that never decreases (was ${this.clock.nowMs}, got ${nowMs})`,
      );
    }
    this.clock.nowMs = nowMs;
    this.policy.invalidate();
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    const waiting =
      this.connections.size > 0 || this.storage.writeRetries.size > 0 || this.addressBook.wantsRedial();
    this.sweep.schedule(this.clock.nowMs, waiting);
  }

  private checkConnectionTimers(conn: Connection): void {
    const { nowMs } = this.clock;
    if (conn.state !== 'open') {
      if (handshakeExpired(conn, nowMs, this.limits))
        this.closeConnection(conn, { code: 'handshake-timeout' });
      return;
    }
    if (idleExpired(conn, nowMs, this.limits)) {
      this.closeConnection(conn, { code: 'idle-timeout' });
      return;
    }
    this.pipeline.sampleRate(conn);
    if (this.pipeline.expire(conn)) this.scheduler.fill(conn);
    if (keepAliveDue(conn, nowMs, this.limits)) this.outbox.send(conn, { type: 'keep-alive' });
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
    this.addressBook.classify(conn);
    return conn;
  }

  private closeConnection(conn: Connection, reason: CloseReason, redial = true): void {
    this.outbox.push({ kind: 'close', connection: conn.id, reason });
    this.forget(conn, describeCloseReason(reason), redial);
  }

  private forget(conn: Connection, reason: string, redial: boolean): void {
    if (!this.connections.delete(conn.id)) return;
    this.serving.forget(conn);
    this.choking.forget(conn);
    if (conn.state === 'open') this.outbox.activity({ kind: 'disconnected', peer: conn.label, reason });
    this.availability.remove(conn);
    this.pipeline.drop(conn);
    this.addressBook.closed(conn, redial);
    // Callers up the stack may still hold this object: nothing more is sent or asked on it.
    conn.state = 'closed';
    this.scheduleTick();
    this.scheduler.fillAll();
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
        conn.peerChoking = true;
        // Without BEP 6 a choke silently drops our requests; with it, rejects will follow.
        if (!conn.fastExtension) this.pipeline.drop(conn);
        return;
      case 'unchoke':
        conn.peerChoking = false;
        this.scheduler.fill(conn);
        return;
      case 'interested':
        conn.peerInterested = true;
        this.choking.offerSlot(conn);
        return;
      case 'not-interested':
        conn.peerInterested = false;
        this.choking.notInterested(conn);
        return;
      case 'have':
        this.onHave(conn, message.index);
        return;
      case 'bitfield':
        this.onBitfield(conn, new Bitfield(this.geometry.pieceCount, message.bits));
        return;
      case 'have-all':
      case 'have-none':
        this.onHaveAllOrNone(conn, message.type);
        return;
      case 'request':
        this.serving.onRequest(conn, message);
        return;
      case 'cancel':
        this.serving.onCancel(conn, message);
        return;
      case 'piece':
        this.onPiece(conn, message.index, message.begin, message.block);
        return;
      case 'reject':
        if (this.requireFastExtension(conn, message.type) && this.pipeline.rejected(conn, message))
          this.scheduler.fill(conn);
        return;
      case 'allowed-fast':
        this.onAllowedFast(conn, message.index);
        return;
    }
  }

  /** BEP 10 / BEP 9 (extension.ts): handshakes are recorded, metadata requests answered. */
  private onExtended(conn: Connection, extendedId: number, payload: Uint8Array): void {
    const outcome = this.extensions.receive(conn, extendedId, payload);
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

  private onHave(conn: Connection, index: number): void {
    this.availability.add(conn, index);
    this.outbox.activity({ kind: 'list-received', from: conn.label, list: { form: 'have', chunk: index } });
    this.afterRemoteListChange(conn);
  }

  private onBitfield(conn: Connection, field: Bitfield): void {
    this.availability.replace(conn, field);
    this.outbox.activity({
      kind: 'list-received',
      from: conn.label,
      list: { form: 'bitfield', chunks: conn.remoteHave.indices() },
    });
    this.afterRemoteListChange(conn);
  }

  private onHaveAllOrNone(conn: Connection, type: 'have-all' | 'have-none'): void {
    if (!this.requireFastExtension(conn, type)) return;
    const count = this.geometry.pieceCount;
    this.availability.replace(conn, type === 'have-all' ? Bitfield.full(count) : new Bitfield(count));
    this.outbox.activity({
      kind: 'list-received',
      from: conn.label,
      list: type === 'have-all' ? { form: 'have-all', count } : { form: 'have-none' },
    });
    this.afterRemoteListChange(conn);
  }

  private afterRemoteListChange(conn: Connection): void {
    if (this.advertising.handsOutShares) this.advertising.feedShare(conn);
    if (conn.ownerShare === undefined && conn.isOwner) conn.ownerShare = conn.remoteHave.copy();
    this.policy.updateInterest(conn);
    this.scheduler.fill(conn);
  }

  private onAllowedFast(conn: Connection, index: number): void {
    if (!this.requireFastExtension(conn, 'allowed-fast')) return;
    if (conn.allowedFast.size < MAX_ALLOWED_FAST_CHUNKS) conn.allowedFast.add(index);
    this.scheduler.fill(conn);
  }

  // ---- downloading ---------------------------------------------------------------------------

  private onPiece(conn: Connection, index: number, begin: number, block: Uint8Array): void {
    if (!this.pipeline.received(conn, index, begin, block.length)) return;
    conn.lastBlockAtMs = this.clock.nowMs;
    this.stats.bytesDown += block.length;
    conn.receivedSinceSampleBytes += block.length;
    this.policy.progressed(this.clock.nowMs);
    const download = this.assembly.downloads.get(index);
    if (download !== undefined) {
      const others = this.assembly.store(download, conn, begin, block);
      if (others !== undefined) this.pipeline.cancelDuplicates(conn, others, index, begin);
      if (this.assembly.isComplete(download)) this.finishChunk(download);
    }
    this.scheduler.fill(conn);
  }

  private finishChunk(download: ChunkDownload): void {
    this.assembly.downloads.delete(download.index);
    // Requests for it still out (after a take-over, say) are of no use now.
    this.pipeline.cancelChunk(download.index);
    if (this.verification.verify(download)) this.storage.write(download);
    else this.verification.onCorrupt(download);
  }

  /** A verified chunk is on disk: it is held, announced to every open connection, and counted. */
  private onChunkStored(download: ChunkDownload): void {
    const { index } = download;
    this.have.set(index);
    this.policy.progressed(this.clock.nowMs);
    this.policy.starving = false;
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
      if (conn.state === 'open') this.advertising.sendHave(conn, index);
    }
    if (this.have.complete && this.storage.writing.size === 0 && !this.completeAnnounced) this.complete();
    // Last, as it may close connections: the chunk is held by now, so nothing picks it again.
    this.verification.confirmSuspects(download);
    this.scheduler.fillAll();
  }

  private complete(): void {
    this.completeAnnounced = true;
    this.completedAtMs = this.clock.nowMs;
    this.outbox.activity({ kind: 'complete', chunks: this.geometry.pieceCount });
    this.outbox.push({ kind: 'complete' });
    this.policy.refreshInterest();
  }
}
