/**
 * The peer engine: a pure, synchronous state machine for one node (the owner or a peer) speaking
 * BitTorrent's peer wire protocol. Inputs arrive through `handle*` methods, each with the current
 * time; effects (send, connect, close, read, write, activity) are drained with `pollEffects`.
 * Nothing here touches a socket, a disk, a clock or ambient randomness.
 */
import type { ActivityEvent, ListSummary } from './activity.ts';
import { Bitfield } from './bitfield.ts';
import { chunkLength, type Geometry } from './chunking.ts';
import { encodeHandshake, encodeMessage, encodePieceHeader, WireDecoder } from './codec.ts';
import { type CloseReason, describeCloseReason, UsageError, type WireError, wireError } from './errors.ts';
import { ExtensionSession } from './extension.ts';
import { bytesEqual, type Sha1 } from './hash.ts';
import {
  BLOCK_LENGTH_BYTES,
  type Handshake,
  type Message,
  RESERVED_EXTENSION_PROTOCOL,
  RESERVED_FAST_EXTENSION,
} from './messages.ts';
import { peerLabel } from './peer-id.ts';
import { type PickerKind, pickChunk } from './picker.ts';
import type { Random } from './random.ts';

export type ConnectionId = string;
export type Role = 'owner' | 'peer';
export type Topology = 'ring' | 'mesh' | 'full' | 'star';
/** `two-phase`: the original, which takes its owner share before trading; `overlapped`: trade at once. */
export type PhaseMode = 'two-phase' | 'overlapped';
/** How the owner advertises: everything at once, or a distinct least-replicated share per peer. */
export type OwnerAdvertising = 'all' | 'shares';
/** How a remote address we were told about relates to us. */
export type PeerRole = 'owner' | 'download-neighbour' | 'neighbour';

export interface PeerAddress {
  readonly address: string;
  readonly role: PeerRole;
  /** Dial (and redial) even when we need nothing from it: a seeder reaching out to a client. */
  readonly dialAlways?: boolean;
}

export interface EngineLimits {
  readonly maxConnections: number;
  /** Blocks we ask one peer for at a time. */
  readonly maxOutstandingRequestsPerPeer: number;
  /** Requests from one peer we hold before rejecting more. */
  readonly maxQueuedRequestsFromPeer: number;
  /** Block reads we have asked the driver for on behalf of one peer; the driver's backpressure. */
  readonly maxReadsInFlightPerPeer: number;
  /**
   * Block reads in flight for all peers together. Few, so the engine, not the socket buffers,
   * decides the upload order: finish a chunk a peer has started, else the oldest request.
   */
  readonly maxReadsInFlight: number;
  /** Bad requests (chunks we lack, out of range) tolerated before we close. */
  readonly maxInvalidRequests: number;
  /** Chunk verification failures attributed to a peer before we stop trusting it. */
  readonly maxCorruptChunks: number;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveIntervalMs: number;
  readonly requestTimeoutMs: number;
  /** How long a peer finds nothing to request before it falls back to the owner. */
  readonly starvationMs: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly tickMs: number;
  /** After a chunk could not be stored (disk full), how long before writing it again; it doubles. */
  readonly storageRetryMs: number;
  readonly storageRetryMaxMs: number;
  /** In endgame, how many peers one block may be asked from at once. */
  readonly endgameDuplicates: number;
  /** Endgame starts when every missing chunk is under way and at most this many blocks are missing. */
  readonly endgameBlocks: number;
  /**
   * Requests kept in flight to a peer cover this much time at the rate it delivers (plus two), so
   * requests do not pile up in a busy peer's queue where the last chunks would wait behind others.
   */
  readonly requestQueueMs: number;
  /**
   * The fewest requests kept in flight to a peer, before its rate is known and after; by default a
   * whole chunk's blocks (at least four).
   */
  readonly minOutstandingRequestsPerPeer?: number;
}

export const DEFAULT_LIMITS: EngineLimits = {
  maxConnections: 256,
  maxOutstandingRequestsPerPeer: 32,
  maxQueuedRequestsFromPeer: 256,
  maxReadsInFlightPerPeer: 8,
  maxReadsInFlight: 8,
  maxInvalidRequests: 32,
  maxCorruptChunks: 1,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
  keepAliveIntervalMs: 30_000,
  requestTimeoutMs: 20_000,
  starvationMs: 2_000,
  reconnectBaseMs: 250,
  reconnectMaxMs: 8_000,
  tickMs: 250,
  storageRetryMs: 1_000,
  storageRetryMaxMs: 30_000,
  endgameDuplicates: 2,
  endgameBlocks: 16,
  requestQueueMs: 500,
};

export interface EngineOptions {
  readonly role: Role;
  /** Shown in activity lines and carried in our peer id. */
  readonly name: string;
  readonly peerId: Uint8Array;
  readonly infoHash: Uint8Array;
  readonly pieceHashes: readonly Uint8Array[];
  readonly geometry: Geometry;
  readonly sha1: Sha1;
  /** Where chunk buffers come from (a driver may pool them); a fresh zeroed array by default. */
  readonly allocateChunk?: (lengthBytes: number) => Uint8Array;
  readonly random: Random;
  /** Chunks already verified on disk. The owner starts with all of them. */
  readonly have?: Bitfield;
  /** Of `have`, those that came from the owner (kept in the summary file). */
  readonly fromOwner?: Bitfield;
  readonly topology?: Topology;
  readonly picker?: PickerKind;
  readonly phases?: PhaseMode;
  readonly endgame?: boolean;
  readonly ownerAdvertising?: OwnerAdvertising;
  /** Chunks in each share the owner hands out; also what a peer receives per turn in an upload slot. */
  readonly ownerShareChunks?: number;
  /**
   * How many peers we upload to at once; the rest wait in line, and a turn ends after a share's
   * worth of bytes. Unlimited by default: the upload order (a started chunk first, then the oldest
   * request) already lets a new chunk reach one peer at full speed.
   */
  readonly uploadSlots?: number;
  readonly limits?: Partial<EngineLimits>;
  /** Stores chunks without checking their hash. Only for proving that the checkers catch it. */
  readonly unsafeSkipVerification?: boolean;
  /** BEP 9 (extension.ts): the torrent's bencoded info dictionary, served to magnet-link clients. */
  readonly metadata?: Uint8Array;
}

export type Effect =
  | { readonly kind: 'connect'; readonly connection: ConnectionId; readonly address: string }
  | { readonly kind: 'send'; readonly connection: ConnectionId; readonly bytes: Uint8Array }
  | { readonly kind: 'close'; readonly connection: ConnectionId; readonly reason: CloseReason }
  | {
      readonly kind: 'read-block';
      readonly connection: ConnectionId;
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | {
      readonly kind: 'write-chunk';
      readonly index: number;
      readonly bytes: Uint8Array;
      /** The chunk came from the owner (kept in the summary file). */
      readonly fromOwner: boolean;
    }
  | { readonly kind: 'activity'; readonly event: ActivityEvent }
  | { readonly kind: 'complete' };

export interface EngineStats {
  readonly chunksFromOwner: number;
  readonly chunksFromPeers: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly completedAtMs: number | undefined;
  readonly corruptChunks: number;
}

interface Request {
  readonly index: number;
  readonly begin: number;
  readonly length: number;
}

interface QueuedRequest extends Request {
  /** Arrival order across all peers. */
  readonly sequence: number;
}

interface OutstandingRequest extends Request {
  readonly sentAtMs: number;
}

interface Connection {
  readonly id: ConnectionId;
  readonly direction: 'inbound' | 'outbound';
  readonly address: string;
  /** Set for outbound connections we made to a known address. */
  readonly knownAddress: string | undefined;
  state: 'connecting' | 'handshaking' | 'open' | 'closed';
  readonly decoder: WireDecoder;
  readonly openedAtMs: number;
  lastReceivedAtMs: number;
  /** When it last sent us a block we asked for (or when it connected). */
  lastBlockAtMs: number;
  lastSentAtMs: number;
  sentHandshake: boolean;
  remotePeerId: Uint8Array | undefined;
  label: string;
  fastExtension: boolean;
  isOwner: boolean;
  isDownloadSource: boolean;
  amChoking: boolean;
  amInterested: boolean;
  peerChoking: boolean;
  peerInterested: boolean;
  remoteHave: Bitfield;
  /** What we told this peer we hold (differs from `have` only for an owner handing out shares). */
  advertised: Bitfield;
  /** The first chunk ID list the owner sent: the share a two-phase peer takes before trading. */
  ownerShare: Bitfield | undefined;
  readonly allowedFast: Set<number>;
  readonly outstanding: Map<string, OutstandingRequest>;
  readonly queued: QueuedRequest[];
  readonly readsInFlight: Map<string, Request>;
  /** Chunk -> bytes served of it in the current round, for the chunk-sent event. */
  readonly serving: Map<number, number>;
  invalidRequests: number;
  servedSinceUnchokeBytes: number;
  /** Download rate from this peer: bytes since the last sample, and a moving average. */
  receivedSinceSampleBytes: number;
  lastSampleAtMs: number;
  downloadBytesPerSecond: number;
}

interface ChunkDownload {
  readonly index: number;
  readonly lengthBytes: number;
  readonly buffer: Uint8Array;
  /** Per block: 0 missing, 1 requested, 2 received. */
  readonly blockState: Uint8Array;
  blocksReceived: number;
  /** Peers that contributed a block, blamed together if the chunk fails verification. */
  readonly contributors: Set<ConnectionId>;
  readonly contributorIds: Uint8Array[];
  /** Connections each block has been requested from (more than one only in endgame). */
  readonly requestedFrom: Map<number, Set<ConnectionId>>;
  /** The connection that started it: the only sender of a chunk that once failed verification. */
  startedBy: ConnectionId;
  /** Who sent each block (a peer label), for the smart ban. */
  readonly blockSenders: (string | undefined)[];
  lastSource: string;
  lastSourceIsOwner: boolean;
  announced: Set<ConnectionId>;
  /** The sender it was taken over from, and when (see takeOver): not asked again for a while. */
  takenFrom: ConnectionId | undefined;
  takenAtMs: number;
}

interface KnownPeer {
  readonly address: string;
  role: PeerRole;
  dialAlways: boolean;
  connection: ConnectionId | undefined;
  failures: number;
  nextAttemptAtMs: number;
}

const FAST_EXTENSION_RESERVED = (() => {
  const reserved = new Uint8Array(8);
  reserved[RESERVED_FAST_EXTENSION.byteIndex] = RESERVED_FAST_EXTENSION.mask;
  // BEP 10: we speak the extension protocol too (extension.ts).
  reserved[RESERVED_EXTENSION_PROTOCOL.byteIndex] = RESERVED_EXTENSION_PROTOCOL.mask;
  return reserved;
})();

const blockKey = (index: number, begin: number): string => `${index}:${begin}`;

const EMPTY_BITS = new Uint8Array(0);

/** Failed chunks kept for the smart ban at most (each holds one chunk's bytes). */
const MAX_SUSPECT_CHUNKS = 8;

/** Random draws tried before the random picker falls back to listing every eligible chunk. */
const RANDOM_PICK_ATTEMPTS = 24;
/** How long a peer without chunks waits on the neighbour sending its first before asking others too. */
const FIRST_CHUNK_PATIENCE_MS = 1_000;
/** How long a sender may leave a chunk we asked for unstarted before another takes it over. */
const TAKE_OVER_AFTER_MS = 1_000;
/** Chunks still missing when a peer stops leaving the owner's share to the owner. */
const NEAR_END_CHUNKS = 16;
/** How long the owner has sent us nothing before, near the end, its share is taken elsewhere. */
const OWNER_QUIET_MS = 500;

export class Engine {
  readonly role: Role;
  readonly name: string;
  readonly geometry: Geometry;
  readonly limits: EngineLimits;
  private readonly options: EngineOptions;
  private readonly random: Random;
  private readonly have: Bitfield;
  private readonly fromOwner: Bitfield;
  private readonly topology: Topology;
  private readonly picker: PickerKind;
  private readonly phases: PhaseMode;
  private readonly endgame: boolean;
  private readonly ownerAdvertising: OwnerAdvertising;
  private readonly ownerShareChunks: number;
  private readonly connections = new Map<ConnectionId, Connection>();
  private readonly known = new Map<string, KnownPeer>();
  private readonly downloads = new Map<number, ChunkDownload>();
  /** Verified chunks handed to the driver to store, not yet confirmed. */
  private readonly writing = new Map<number, ChunkDownload>();
  private readonly availability: Uint16Array;
  /** Owner only: how many peers hold or were handed each chunk. */
  private readonly replication: Uint16Array;
  /** Owner only: how many times it has begun sending each chunk (super-seeding sends each once first). */
  private readonly copiesSent: Uint16Array;
  private readonly untrusted = new Set<string>();
  private readonly corruptByPeer = new Map<string, number>();
  /** Chunks that failed verification with several senders: now fetched from one sender only. */
  private readonly singleSource = new Set<number>();
  /** BEP 10 / BEP 9 (extension.ts): extension handshakes and ut_metadata, per connection. */
  private readonly extensions: ExtensionSession;
  private effects: Effect[] = [];
  private nextOutboundId = 1;
  private nowMs = 0;
  private lastProgressAtMs = 0;
  private starving = false;
  /** Whether two-phase trading may start; undefined when it must be worked out again. */
  private phaseDoneCache: boolean | undefined;
  private completeAnnounced = false;
  /** After a failed write, no new chunk is started before this time. */
  private storagePausedUntilMs = 0;
  /** Writes that failed since the last one that worked: the storage backoff doubles with each. */
  private storageFailures = 0;
  /** Verified chunks whose write failed: when to write them again. */
  private readonly writeRetries = new Map<number, number>();
  /**
   * Chunks that failed verification with several senders: the bad bytes and who sent each block.
   * When a good copy verifies, the blocks that differ name the liars (a "smart ban").
   */
  private readonly suspects = new Map<number, { buffer: Uint8Array; senders: (string | undefined)[] }>();
  /** Peers we upload to at once; the rest wait in line (the owner's slots; unlimited for peers). */
  private readonly uploadSlots: number;
  /** Bytes a peer receives before its slot passes to the next in line. */
  private readonly slotBytes: number;
  private unchokedCount = 0;
  private readonly minOutstandingRequests: number;
  /** Block reads asked of the driver and not yet answered, over all connections. */
  private readsInFlight = 0;
  private nextRequestSequence = 0;
  private readonly waitingForSlot: ConnectionId[] = [];
  private stopped = false;
  private nextTickAtMs: number | undefined;
  private stats = { chunksFromOwner: 0, chunksFromPeers: 0, bytesUp: 0, bytesDown: 0, corruptChunks: 0 };
  private completedAtMs: number | undefined;

  constructor(options: EngineOptions) {
    const { geometry } = options;
    if (options.peerId.length !== 20) throw new UsageError('peer id must be 20 bytes');
    if (options.infoHash.length !== 20) throw new UsageError('info hash must be 20 bytes');
    if (options.pieceHashes.length !== geometry.pieceCount) {
      throw new UsageError(`expected ${geometry.pieceCount} piece hashes, got ${options.pieceHashes.length}`);
    }
    this.options = options;
    this.role = options.role;
    this.name = options.name;
    this.geometry = geometry;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.random = options.random;
    this.have =
      options.role === 'owner'
        ? Bitfield.full(geometry.pieceCount)
        : (options.have?.copy() ?? new Bitfield(geometry.pieceCount));
    this.fromOwner = options.fromOwner?.copy() ?? new Bitfield(geometry.pieceCount);
    this.topology = options.topology ?? 'ring';
    this.picker = options.picker ?? 'random';
    this.phases = options.phases ?? 'two-phase';
    this.endgame = options.endgame ?? true;
    this.ownerAdvertising = options.ownerAdvertising ?? 'shares';
    this.ownerShareChunks = Math.max(1, options.ownerShareChunks ?? Math.ceil(geometry.pieceCount / 5));
    this.uploadSlots = options.uploadSlots ?? Number.POSITIVE_INFINITY;
    // At least a whole chunk in flight, so a new sender's first chunk needs no second round trip.
    this.minOutstandingRequests =
      this.limits.minOutstandingRequestsPerPeer ??
      Math.min(
        this.limits.maxOutstandingRequestsPerPeer,
        Math.max(4, Math.ceil(geometry.pieceLengthBytes / BLOCK_LENGTH_BYTES)),
      );
    this.slotBytes = Math.max(1, this.ownerShareChunks) * geometry.pieceLengthBytes;
    this.availability = new Uint16Array(geometry.pieceCount);
    this.replication = new Uint16Array(geometry.pieceCount);
    this.copiesSent = new Uint16Array(options.role === 'owner' ? geometry.pieceCount : 0);
    this.extensions = new ExtensionSession({
      requestQueue: this.limits.maxQueuedRequestsFromPeer,
      metadata: options.metadata,
    });
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
    for (const connection of this.connections.values()) {
      if (connection.outstanding.size > this.limits.maxOutstandingRequestsPerPeer) {
        return `outstanding requests to ${connection.label} over the limit`;
      }
      if (connection.queued.length > this.limits.maxQueuedRequestsFromPeer) {
        return `queued requests from ${connection.label} over the limit`;
      }
      if (connection.readsInFlight.size > this.limits.maxReadsInFlightPerPeer) {
        return `reads in flight for ${connection.label} over the limit`;
      }
      // Per connection and per chunk: only on request (the simulator's full checks).
      const advertised = deep ? connection.advertised.bits : EMPTY_BITS;
      for (let byte = 0; byte < advertised.length; byte++) {
        if (((advertised[byte] as number) & ~(this.have.bits[byte] as number)) !== 0) {
          return `advertised a chunk near ${byte * 8} to ${connection.label} that is not held`;
        }
      }
    }
    if (this.readsInFlight > this.limits.maxReadsInFlight) return 'block reads in flight over the limit';
    for (const index of this.downloads.keys()) {
      if (this.have.has(index)) return `downloading chunk ${index} that is already held`;
    }
    return undefined;
  }

  // ---- inputs --------------------------------------------------------------------------------

  /**
   * Tells the engine about remote addresses. A `download-neighbour` replaces any earlier one (a ring
   * neighbour that moved); the engine dials the addresses it needs and redials them with backoff.
   */
  handlePeers(nowMs: number, peers: readonly PeerAddress[]): void {
    this.advance(nowMs);
    for (const peer of peers) {
      if (peer.role === 'download-neighbour') {
        for (const other of this.known.values()) {
          if (other.role === 'download-neighbour' && other.address !== peer.address) {
            other.role = 'neighbour';
            const connection =
              other.connection === undefined ? undefined : this.connections.get(other.connection);
            if (connection !== undefined && this.topology === 'ring') connection.isDownloadSource = false;
            if (this.topology === 'ring') this.known.delete(other.address);
          }
        }
      }
      const existing = this.known.get(peer.address);
      if (existing !== undefined) {
        existing.role = peer.role;
        existing.dialAlways ||= peer.dialAlways === true;
        existing.failures = 0;
        existing.nextAttemptAtMs = nowMs;
        const connection =
          existing.connection === undefined ? undefined : this.connections.get(existing.connection);
        if (connection !== undefined) this.classify(connection);
      } else {
        this.known.set(peer.address, {
          address: peer.address,
          role: peer.role,
          dialAlways: peer.dialAlways === true,
          connection: undefined,
          failures: 0,
          nextAttemptAtMs: nowMs,
        });
      }
    }
    this.dialKnownPeers();
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
    this.sendHandshake(conn);
  }

  /** A remote connected to us. The driver names the connection. */
  handleAccepted(nowMs: number, connection: ConnectionId, remoteAddress: string): void {
    this.advance(nowMs);
    if (this.connections.has(connection)) throw new UsageError(`accepted: duplicate id ${connection}`);
    if (this.stopped || this.connections.size >= this.limits.maxConnections) {
      this.effects.push({ kind: 'close', connection, reason: { code: 'too-many-connections' } });
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
      if (event.type === 'handshake') this.onHandshake(conn, event);
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
    const key = blockKey(index, begin);
    const request = conn.readsInFlight.get(key);
    if (request === undefined) {
      this.serveQueued();
      return;
    }
    conn.readsInFlight.delete(key);
    this.readsInFlight--;
    if (bytes === undefined || bytes.length !== request.length || conn.amChoking) {
      if (conn.fastExtension) this.send(conn, { type: 'reject', ...request });
    } else {
      this.sendPiece(conn, request, bytes);
    }
    this.serveQueued();
  }

  /** The driver stored (or failed to store) a verified chunk. */
  handleChunkWritten(nowMs: number, index: number, error: string | undefined): void {
    this.advance(nowMs);
    const download = this.writing.get(index);
    if (download === undefined || this.writeRetries.has(index)) {
      throw new UsageError(`chunk-written: chunk ${index} was not being written`);
    }
    if (error !== undefined) {
      this.activity({ kind: 'storage-error', chunk: index, message: error });
      // The verified bytes are kept and written again later, with a backoff that doubles: a full
      // disk stays full for a while, and nothing is downloaded twice for it. No new chunk starts
      // meanwhile.
      // Writes failing together (several chunks, one full disk) count as one step of the backoff.
      if (nowMs >= this.storagePausedUntilMs) this.storageFailures++;
      const delayMs = Math.min(
        this.limits.storageRetryMaxMs,
        this.limits.storageRetryMs * 2 ** Math.min(this.storageFailures - 1, 20),
      );
      this.writeRetries.set(index, nowMs + delayMs);
      this.storagePausedUntilMs = Math.max(this.storagePausedUntilMs, nowMs + delayMs);
      this.scheduleTick();
      return;
    }
    this.writing.delete(index);
    this.storageFailures = 0;
    this.have.set(index);
    this.lastProgressAtMs = nowMs;
    this.starving = false;
    if (download.lastSourceIsOwner) {
      this.fromOwner.set(index);
      this.stats.chunksFromOwner++;
    } else {
      this.stats.chunksFromPeers++;
    }
    this.activity({
      kind: 'chunk-received',
      chunk: index,
      from: download.lastSource,
      bytes: download.lengthBytes,
      fromOwner: download.lastSourceIsOwner,
    });
    for (const conn of this.connections.values()) {
      if (conn.state !== 'open') continue;
      // Sent even to peers that hold the chunk: an owner handing out shares learns progress this way.
      this.announce(conn, index);
    }
    if (this.have.complete && this.writing.size === 0 && !this.completeAnnounced) {
      this.completeAnnounced = true;
      this.completedAtMs = nowMs;
      this.activity({ kind: 'complete', chunks: this.geometry.pieceCount });
      this.effects.push({ kind: 'complete' });
      this.refreshInterest();
    }
    // Last, as it may close connections: the chunk is held by now, so nothing picks it again.
    this.confirmSuspects(download);
    this.pumpAll();
  }

  /** Timers: handshake, idle, keep-alive, request timeouts, starvation and redials. */
  handleTimeout(nowMs: number): void {
    this.advance(nowMs);
    this.nextTickAtMs = undefined;
    for (const conn of [...this.connections.values()]) {
      if (conn.state !== 'open') {
        if (nowMs - conn.openedAtMs >= this.limits.handshakeTimeoutMs) {
          this.closeConnection(conn, { code: 'handshake-timeout' });
        }
        continue;
      }
      if (nowMs - conn.lastReceivedAtMs >= this.limits.idleTimeoutMs) {
        this.closeConnection(conn, { code: 'idle-timeout' });
        continue;
      }
      this.sampleRate(conn);
      this.expireRequests(conn);
      if (nowMs - conn.lastSentAtMs >= this.limits.keepAliveIntervalMs)
        this.send(conn, { type: 'keep-alive' });
    }
    if (
      this.role === 'peer' &&
      !this.have.complete &&
      !this.starving &&
      nowMs - this.lastProgressAtMs >= this.limits.starvationMs &&
      this.totalOutstanding() === 0 &&
      this.ownerPhaseDone()
    ) {
      this.starving = true;
      this.refreshInterest();
    }
    for (const [index, atMs] of [...this.writeRetries]) {
      if (atMs > nowMs) continue;
      this.writeRetries.delete(index);
      const download = this.writing.get(index) as ChunkDownload;
      this.effects.push({
        kind: 'write-chunk',
        index,
        bytes: download.buffer,
        fromOwner: download.lastSourceIsOwner,
      });
    }
    this.dialKnownPeers();
    this.pumpAll();
    this.scheduleTick();
  }

  /** Closes every connection and dials nothing more. */
  shutdown(nowMs: number): void {
    this.advance(nowMs);
    this.stopped = true;
    for (const conn of [...this.connections.values()]) this.closeConnection(conn, { code: 'shutdown' });
    this.nextTickAtMs = undefined;
  }

  // ---- outputs -------------------------------------------------------------------------------

  /** Drains the effects produced since the last call, in order. */
  pollEffects(): Effect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  /** When `handleTimeout` wants to run next, or undefined when nothing is waiting on time. */
  pollTimeout(): number | undefined {
    return this.nextTickAtMs;
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  private advance(nowMs: number): void {
    if (!Number.isInteger(nowMs) || nowMs < this.nowMs) {
      throw new UsageError(`time must be an integer that never decreases (was ${this.nowMs}, got ${nowMs})`);
    }
    this.nowMs = nowMs;
    // Every input may change what the phase rule sees (connections, lists, held chunks).
    this.phaseDoneCache = undefined;
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    const waiting = this.connections.size > 0 || this.writeRetries.size > 0 || this.wantsRedial();
    if (!waiting) {
      this.nextTickAtMs = undefined;
      return;
    }
    if (this.nextTickAtMs === undefined) this.nextTickAtMs = this.nowMs + this.limits.tickMs;
  }

  private wantsRedial(): boolean {
    for (const peer of this.known.values()) if (this.shouldDial(peer)) return true;
    return false;
  }

  private shouldDial(peer: KnownPeer): boolean {
    if (this.stopped || peer.connection !== undefined || this.untrusted.has(peer.address)) return false;
    // Peers we were asked to reach (a client that never dials out) are dialled even by a seeder.
    if (peer.dialAlways) return true;
    // A complete peer only serves; it redials nobody.
    if (this.role === 'owner' || this.have.complete) return false;
    if (this.topology === 'star') return peer.role === 'owner';
    return true;
  }

  private dialKnownPeers(): void {
    for (const peer of this.known.values()) {
      if (!this.shouldDial(peer) || peer.nextAttemptAtMs > this.nowMs) continue;
      if (this.connections.size >= this.limits.maxConnections) return;
      const id = `out:${this.nextOutboundId++}`;
      peer.connection = id;
      this.newConnection(id, 'outbound', peer.address, peer.address);
      this.effects.push({ kind: 'connect', connection: id, address: peer.address });
    }
  }

  private newConnection(
    id: ConnectionId,
    direction: 'inbound' | 'outbound',
    address: string,
    knownAddress: string | undefined,
  ): Connection {
    const count = this.geometry.pieceCount;
    const conn: Connection = {
      id,
      direction,
      address,
      knownAddress,
      state: 'connecting',
      decoder: new WireDecoder(this.geometry),
      openedAtMs: this.nowMs,
      lastReceivedAtMs: this.nowMs,
      lastBlockAtMs: this.nowMs,
      lastSentAtMs: this.nowMs,
      sentHandshake: false,
      remotePeerId: undefined,
      label: address,
      fastExtension: false,
      isOwner: false,
      isDownloadSource: false,
      amChoking: true,
      amInterested: false,
      peerChoking: true,
      peerInterested: false,
      remoteHave: new Bitfield(count),
      advertised: new Bitfield(count),
      ownerShare: undefined,
      allowedFast: new Set(),
      outstanding: new Map(),
      queued: [],
      readsInFlight: new Map(),
      serving: new Map(),
      invalidRequests: 0,
      servedSinceUnchokeBytes: 0,
      receivedSinceSampleBytes: 0,
      lastSampleAtMs: this.nowMs,
      downloadBytesPerSecond: 0,
    };
    this.connections.set(id, conn);
    this.classify(conn);
    return conn;
  }

  /** Decides, from what we know of the remote's address, whether we download from it. */
  private classify(conn: Connection): void {
    const peer = conn.knownAddress === undefined ? undefined : this.known.get(conn.knownAddress);
    conn.isOwner = peer?.role === 'owner';
    if (this.role === 'owner') {
      conn.isDownloadSource = false;
      return;
    }
    switch (this.topology) {
      case 'ring':
        conn.isDownloadSource = conn.isOwner || peer?.role === 'download-neighbour';
        break;
      case 'star':
        conn.isDownloadSource = conn.isOwner;
        break;
      default:
        conn.isDownloadSource = true;
    }
  }

  private sendHandshake(conn: Connection): void {
    conn.sentHandshake = true;
    this.sendBytes(
      conn,
      encodeHandshake({
        reserved: FAST_EXTENSION_RESERVED,
        infoHash: this.options.infoHash,
        peerId: this.options.peerId,
      }),
    );
  }

  private onHandshake(conn: Connection, handshake: Handshake): void {
    if (!bytesEqual(handshake.infoHash, this.options.infoHash)) {
      this.closeConnection(conn, {
        code: 'protocol',
        error: wireError('info-hash-mismatch', 'the remote asked for a torrent we do not serve'),
      });
      return;
    }
    if (bytesEqual(handshake.peerId, this.options.peerId)) {
      this.closeConnection(conn, { code: 'self-connection' });
      return;
    }
    conn.remotePeerId = handshake.peerId;
    conn.label = peerLabel(handshake.peerId, conn.address);
    if (this.untrusted.has(conn.label) || this.untrusted.has(conn.address)) {
      this.closeConnection(conn, { code: 'untrusted-peer' });
      return;
    }
    const duplicate = this.findDuplicate(conn, handshake.peerId);
    if (duplicate !== undefined && this.resolveDuplicate(conn, duplicate) === conn) return;
    conn.fastExtension =
      ((handshake.reserved[RESERVED_FAST_EXTENSION.byteIndex] ?? 0) & RESERVED_FAST_EXTENSION.mask) !== 0;
    if (!conn.sentHandshake) this.sendHandshake(conn);
    conn.state = 'open';
    if (conn.knownAddress !== undefined) {
      const peer = this.known.get(conn.knownAddress);
      if (peer !== undefined) peer.failures = 0;
    }
    this.activity({ kind: 'connected', peer: conn.label, direction: conn.direction });
    this.sendInitialList(conn);
    // With no upload slots to ration, unchoke at once, even with nothing to offer yet: when a chunk
    // arrives and is announced, the neighbour can request it at once instead of first asking to be
    // unchoked, a round trip saved for every first chunk between two peers.
    if (!Number.isFinite(this.uploadSlots)) this.unchoke(conn);
    // BEP 10: our extension handshake, when the remote speaks the extension protocol.
    const extensionHandshake = this.extensions.open(conn, handshake.reserved);
    if (extensionHandshake !== undefined) this.send(conn, extensionHandshake);
    this.updateInterest(conn);
  }

  private findDuplicate(conn: Connection, peerId: Uint8Array): Connection | undefined {
    for (const other of this.connections.values()) {
      if (other !== conn && other.remotePeerId !== undefined && bytesEqual(other.remotePeerId, peerId))
        return other;
    }
    return undefined;
  }

  /**
   * Two connections to one peer (both dialled each other): both sides keep the one dialled by the
   * peer with the smaller id, so they agree without talking. The loser's role moves to the survivor.
   * Returns the connection that was closed.
   */
  private resolveDuplicate(conn: Connection, existing: Connection): Connection {
    const remoteId = conn.remotePeerId as Uint8Array;
    const weDialSurvivor = compareBytes(this.options.peerId, remoteId) < 0;
    const keepNew =
      (conn.direction === 'outbound') === weDialSurvivor && existing.direction !== conn.direction;
    const [keep, drop] = keepNew ? [conn, existing] : [existing, conn];
    keep.isDownloadSource ||= drop.isDownloadSource;
    keep.isOwner ||= drop.isOwner;
    if (drop.knownAddress !== undefined) {
      const peer = this.known.get(drop.knownAddress);
      if (peer !== undefined) peer.connection = keep.id;
    }
    // The remote must see our handshake to find the duplicate too and move its role across.
    if (!drop.sentHandshake && drop.state !== 'connecting') this.sendHandshake(drop);
    this.closeConnection(drop, { code: 'duplicate-connection' }, false);
    return drop;
  }

  private sendInitialList(conn: Connection): void {
    if (this.role === 'owner' && this.ownerAdvertising === 'shares') {
      const share = this.chooseShare(conn);
      this.sendList(conn, share);
      return;
    }
    this.sendList(conn, this.have.indices());
  }

  /** Sends a whole chunk ID list: have-all or have-none where both sides speak BEP 6. */
  private sendList(conn: Connection, indices: readonly number[]): void {
    for (const index of indices) conn.advertised.set(index);
    let list: ListSummary;
    if (conn.fastExtension && indices.length === this.geometry.pieceCount) {
      this.send(conn, { type: 'have-all' });
      list = { form: 'have-all', count: indices.length };
    } else if (conn.fastExtension && indices.length === 0) {
      this.send(conn, { type: 'have-none' });
      list = { form: 'have-none' };
    } else if (indices.length === 0) {
      // Without BEP 6, a peer with nothing sends no bitfield at all.
      return;
    } else {
      this.send(conn, { type: 'bitfield', bits: conn.advertised.bits });
      list = { form: 'bitfield', chunks: indices };
    }
    this.activity({ kind: 'list-sent', to: conn.label, list });
  }

  private announce(conn: Connection, index: number): void {
    conn.advertised.set(index);
    this.send(conn, { type: 'have', index });
    this.activity({ kind: 'list-sent', to: conn.label, list: { form: 'have', chunk: index } });
  }

  private closeConnection(conn: Connection, reason: CloseReason, redial = true): void {
    this.effects.push({ kind: 'close', connection: conn.id, reason });
    this.forget(conn, describeCloseReason(reason), redial);
  }

  private forget(conn: Connection, reason: string, redial: boolean): void {
    if (!this.connections.delete(conn.id)) return;
    // Its reads may still come back from the driver; they no longer count.
    this.readsInFlight -= conn.readsInFlight.size;
    conn.readsInFlight.clear();
    this.serveQueued();
    if (!conn.amChoking) this.unchokedCount--;
    const waiting = this.waitingForSlot.indexOf(conn.id);
    if (waiting >= 0) this.waitingForSlot.splice(waiting, 1);
    this.fillSlots();
    if (conn.state === 'open') this.activity({ kind: 'disconnected', peer: conn.label, reason });
    for (let i = 0; i < this.geometry.pieceCount; i++) {
      if (conn.remoteHave.has(i)) {
        this.availability[i] = (this.availability[i] as number) - 1;
        if (this.role === 'owner') this.replication[i] = Math.max(0, (this.replication[i] as number) - 1);
      } else if (this.role === 'owner' && conn.advertised.has(i)) {
        this.replication[i] = Math.max(0, (this.replication[i] as number) - 1);
      }
    }
    this.dropOutstanding(conn);
    if (conn.knownAddress !== undefined) {
      const peer = this.known.get(conn.knownAddress);
      if (peer !== undefined && peer.connection === conn.id) {
        peer.connection = undefined;
        if (conn.state !== 'open') peer.failures++;
        const backoff = Math.min(
          this.limits.reconnectMaxMs,
          this.limits.reconnectBaseMs * 2 ** Math.min(peer.failures, 16),
        );
        const jitter = this.random.nextInt(Math.max(1, Math.floor(backoff / 4)));
        peer.nextAttemptAtMs = this.nowMs + (redial ? backoff + jitter : this.limits.reconnectMaxMs);
      }
    }
    for (const peer of this.known.values()) {
      if (peer.connection === conn.id) peer.connection = undefined;
    }
    // Callers up the stack may still hold this object: nothing more is sent or asked on it.
    conn.state = 'closed';
    this.scheduleTick();
    this.pumpAll();
  }

  /** Returns a closed or choked peer's outstanding blocks to the pool. */
  private dropOutstanding(conn: Connection): void {
    for (const request of conn.outstanding.values()) this.releaseBlock(conn, request);
    conn.outstanding.clear();
  }

  private releaseBlock(conn: Connection, request: Request): void {
    const download = this.downloads.get(request.index);
    if (download === undefined) return;
    const block = request.begin / BLOCK_LENGTH_BYTES;
    const from = download.requestedFrom.get(block);
    from?.delete(conn.id);
    if (download.blockState[block] === 1 && (from === undefined || from.size === 0))
      download.blockState[block] = 0;
  }

  // ---- messages ------------------------------------------------------------------------------

  private onMessage(conn: Connection, message: Message): void {
    switch (message.type) {
      case 'keep-alive':
      case 'port':
      case 'suggest':
        return;
      case 'extended': {
        // BEP 10 / BEP 9 (extension.ts): handshakes are recorded, metadata requests answered.
        const outcome = this.extensions.receive(conn, message.extendedId, message.payload);
        if (!outcome.ok) this.closeConnection(conn, { code: 'protocol', error: outcome.error });
        else for (const reply of outcome.replies) this.send(conn, reply);
        return;
      }
      case 'choke':
        conn.peerChoking = true;
        // Without BEP 6 a choke silently drops our requests; with it, rejects will follow.
        if (!conn.fastExtension) this.dropOutstanding(conn);
        return;
      case 'unchoke':
        conn.peerChoking = false;
        this.pump(conn);
        return;
      case 'interested':
        conn.peerInterested = true;
        this.offerSlot(conn);
        return;
      case 'not-interested':
        conn.peerInterested = false;
        if (Number.isFinite(this.uploadSlots) && !conn.amChoking) this.choke(conn);
        this.fillSlots();
        return;
      case 'have':
        this.onHave(conn, message.index);
        this.activity({
          kind: 'list-received',
          from: conn.label,
          list: { form: 'have', chunk: message.index },
        });
        this.afterRemoteListChange(conn);
        return;
      case 'bitfield':
        this.replaceRemoteList(conn, new Bitfield(this.geometry.pieceCount, message.bits));
        this.activity({
          kind: 'list-received',
          from: conn.label,
          list: { form: 'bitfield', chunks: conn.remoteHave.indices() },
        });
        this.afterRemoteListChange(conn);
        return;
      case 'have-all':
      case 'have-none':
        if (!conn.fastExtension) {
          this.protocolError(conn, 'unknown-message', `${message.type} without BEP 6`);
          return;
        }
        this.replaceRemoteList(
          conn,
          message.type === 'have-all'
            ? Bitfield.full(this.geometry.pieceCount)
            : new Bitfield(this.geometry.pieceCount),
        );
        this.activity({
          kind: 'list-received',
          from: conn.label,
          list:
            message.type === 'have-all'
              ? { form: 'have-all', count: this.geometry.pieceCount }
              : { form: 'have-none' },
        });
        this.afterRemoteListChange(conn);
        return;
      case 'request':
        this.onRequest(conn, message);
        return;
      case 'cancel':
        this.onCancel(conn, message);
        return;
      case 'piece':
        this.onPiece(conn, message.index, message.begin, message.block);
        return;
      case 'reject': {
        if (!conn.fastExtension) {
          this.protocolError(conn, 'unknown-message', 'reject without BEP 6');
          return;
        }
        const request = conn.outstanding.get(blockKey(message.index, message.begin));
        if (request !== undefined && request.length === message.length) {
          conn.outstanding.delete(blockKey(message.index, message.begin));
          this.releaseBlock(conn, request);
          this.pump(conn);
        }
        return;
      }
      case 'allowed-fast':
        if (!conn.fastExtension) {
          this.protocolError(conn, 'unknown-message', 'allowed-fast without BEP 6');
          return;
        }
        if (conn.allowedFast.size < 64) conn.allowedFast.add(message.index);
        this.pump(conn);
        return;
    }
  }

  private protocolError(conn: Connection, code: WireError['code'], message: string): void {
    this.closeConnection(conn, { code: 'protocol', error: wireError(code, message) });
  }

  private onHave(conn: Connection, index: number): void {
    if (conn.remoteHave.has(index)) return;
    conn.remoteHave.set(index);
    this.availability[index] = (this.availability[index] as number) + 1;
    if (this.role === 'owner' && !conn.advertised.has(index))
      this.replication[index] = (this.replication[index] as number) + 1;
  }

  /** A bitfield may arrive again mid-transfer (aria2 does this): replace the remote's list. */
  private replaceRemoteList(conn: Connection, field: Bitfield): void {
    for (let i = 0; i < this.geometry.pieceCount; i++) {
      const had = conn.remoteHave.has(i);
      const has = field.has(i);
      if (had === has) continue;
      if (has) this.onHave(conn, i);
      else {
        conn.remoteHave.clear(i);
        this.availability[i] = (this.availability[i] as number) - 1;
      }
    }
  }

  private afterRemoteListChange(conn: Connection): void {
    if (this.role === 'owner' && this.ownerAdvertising === 'shares') this.feedShare(conn);
    if (conn.ownerShare === undefined && conn.isOwner) conn.ownerShare = conn.remoteHave.copy();
    this.updateInterest(conn);
    this.pump(conn);
  }

  private onRequest(conn: Connection, request: Request): void {
    if (!conn.serving.has(request.index)) {
      if (conn.serving.size >= 64) {
        const oldest = conn.serving.keys().next().value as number;
        conn.serving.delete(oldest);
      }
      conn.serving.set(request.index, 0);
      this.activity({ kind: 'request-received', chunk: request.index, from: conn.label });
    }
    const refuse = (): void => {
      if (conn.fastExtension) this.send(conn, { type: 'reject', ...request });
    };
    if (!this.have.has(request.index)) {
      conn.invalidRequests++;
      if (conn.invalidRequests > this.limits.maxInvalidRequests) {
        this.closeConnection(conn, { code: 'request-flood' });
        return;
      }
      refuse();
      return;
    }
    if (conn.amChoking) {
      refuse();
      return;
    }
    if (conn.queued.length >= this.limits.maxQueuedRequestsFromPeer) {
      if (!conn.fastExtension) {
        this.closeConnection(conn, { code: 'request-flood' });
        return;
      }
      refuse();
      return;
    }
    conn.queued.push({
      index: request.index,
      begin: request.begin,
      length: request.length,
      sequence: this.nextRequestSequence++,
    });
    this.serveQueued();
  }

  private onCancel(conn: Connection, request: Request): void {
    const at = conn.queued.findIndex(
      (queued) =>
        queued.index === request.index && queued.begin === request.begin && queued.length === request.length,
    );
    if (at >= 0) {
      conn.queued.splice(at, 1);
      // BEP 6: a cancelled request is still answered, with a reject.
      if (conn.fastExtension) this.send(conn, { type: 'reject', ...request });
      return;
    }
    // A read already in flight is answered with the piece when it arrives.
  }

  /** Starts block reads, in upload order, while there is room. */
  private serveQueued(): void {
    while (this.readsInFlight < this.limits.maxReadsInFlight) {
      const conn = this.nextUpload();
      if (conn === undefined) return;
      const request = conn.queued.shift() as QueuedRequest;
      const key = blockKey(request.index, request.begin);
      if (conn.readsInFlight.has(key)) continue;
      conn.readsInFlight.set(key, request);
      this.readsInFlight++;
      if (this.role === 'owner' && this.ownerAdvertising === 'shares' && request.begin === 0) {
        this.copiesSent[request.index] = Math.min(0xffff, (this.copiesSent[request.index] as number) + 1);
      }
      this.effects.push({
        kind: 'read-block',
        connection: conn.id,
        index: request.index,
        begin: request.begin,
        length: request.length,
      });
    }
  }

  /**
   * The peer to upload to next: one whose chunk is under way first; then, for a super-seeding owner,
   * a chunk it has sent least often (a scarce owner sends every chunk once before any twice); then
   * the peer holding least; then the oldest request.
   */
  private nextUpload(): Connection | undefined {
    let best: Connection | undefined;
    let bestContinues = false;
    let bestCopies = Number.POSITIVE_INFINITY;
    let bestSequence = Number.POSITIVE_INFINITY;
    let bestHeld = Number.POSITIVE_INFINITY;
    for (const conn of this.connections.values()) {
      const head = conn.queued[0];
      if (
        head === undefined ||
        conn.amChoking ||
        conn.readsInFlight.size >= this.limits.maxReadsInFlightPerPeer
      ) {
        continue;
      }
      const continues = (conn.serving.get(head.index) ?? 0) > 0;
      const copies = continues ? 0 : (this.copiesSent[head.index] ?? 0);
      const held = conn.remoteHave.count;
      if (
        (continues && !bestContinues) ||
        (continues === bestContinues &&
          (copies < bestCopies ||
            (copies === bestCopies &&
              (held < bestHeld || (held === bestHeld && head.sequence < bestSequence)))))
      ) {
        best = conn;
        bestContinues = continues;
        bestCopies = copies;
        bestHeld = held;
        bestSequence = head.sequence;
      }
    }
    return best;
  }

  private sendPiece(conn: Connection, request: Request, block: Uint8Array): void {
    this.sendBytes(conn, encodePieceHeader(request.index, request.begin, block.length));
    this.sendBytes(conn, block);
    this.stats.bytesUp += block.length;
    conn.servedSinceUnchokeBytes += block.length;
    const served = (conn.serving.get(request.index) ?? 0) + block.length;
    const total = chunkLength(this.geometry, request.index);
    if (served >= total) {
      conn.serving.delete(request.index);
      this.activity({ kind: 'chunk-sent', chunk: request.index, to: conn.label, bytes: total });
    } else if (conn.serving.has(request.index)) {
      conn.serving.set(request.index, served);
    }
    if (conn.servedSinceUnchokeBytes >= this.slotBytes && this.waitingForSlot.length > 0) {
      // Its turn is over: the slot goes to the peer that has waited longest.
      this.choke(conn);
      this.waitingForSlot.push(conn.id);
      this.fillSlots();
    }
  }

  // ---- upload slots --------------------------------------------------------------------------

  /** An interested peer gets a slot if one is free, else waits in line. */
  private offerSlot(conn: Connection): void {
    if (!conn.amChoking || conn.state !== 'open') return;
    if (this.unchokedCount < this.uploadSlots) {
      this.unchoke(conn);
    } else if (!this.waitingForSlot.includes(conn.id)) {
      this.waitingForSlot.push(conn.id);
    }
  }

  private fillSlots(): void {
    while (this.unchokedCount < this.uploadSlots && this.waitingForSlot.length > 0) {
      const next = this.connections.get(this.waitingForSlot.shift() as ConnectionId);
      if (next?.peerInterested && next.amChoking) this.unchoke(next);
    }
  }

  private unchoke(conn: Connection): void {
    conn.amChoking = false;
    conn.servedSinceUnchokeBytes = 0;
    this.unchokedCount++;
    this.send(conn, { type: 'unchoke' });
  }

  /** Chokes a peer; BEP 6 wants every request it still has with us answered, so they are rejected. */
  private choke(conn: Connection): void {
    conn.amChoking = true;
    this.unchokedCount--;
    this.send(conn, { type: 'choke' });
    for (const request of conn.queued.splice(0)) {
      if (conn.fastExtension) this.send(conn, { type: 'reject', ...request });
    }
  }

  private onPiece(conn: Connection, index: number, begin: number, block: Uint8Array): void {
    const key = blockKey(index, begin);
    const request = conn.outstanding.get(key);
    // A block we did not ask this peer for (or already cancelled) is ignored: cancels race.
    if (request === undefined || request.length !== block.length) return;
    conn.outstanding.delete(key);
    conn.lastBlockAtMs = this.nowMs;
    this.stats.bytesDown += block.length;
    conn.receivedSinceSampleBytes += block.length;
    this.lastProgressAtMs = this.nowMs;
    const download = this.downloads.get(index);
    if (download === undefined) {
      this.pump(conn);
      return;
    }
    const blockIndex = begin / BLOCK_LENGTH_BYTES;
    const others = download.requestedFrom.get(blockIndex);
    download.requestedFrom.delete(blockIndex);
    if (download.blockState[blockIndex] !== 2) {
      download.buffer.set(block, begin);
      download.blockState[blockIndex] = 2;
      download.blocksReceived++;
      download.blockSenders[blockIndex] = conn.label;
      if (!download.contributors.has(conn.id)) {
        download.contributors.add(conn.id);
        if (conn.remotePeerId !== undefined) download.contributorIds.push(conn.remotePeerId);
      }
      download.lastSource = conn.label;
      download.lastSourceIsOwner = conn.isOwner;
      // Endgame duplicates: everyone else asked for this block is told to forget it.
      for (const otherId of others ?? []) {
        if (otherId === conn.id) continue;
        const other = this.connections.get(otherId);
        const duplicate = other?.outstanding.get(key);
        if (other !== undefined && duplicate !== undefined) {
          other.outstanding.delete(key);
          this.send(other, { type: 'cancel', index, begin, length: duplicate.length });
        }
      }
    }
    if (download.blocksReceived === download.blockState.length) this.finishChunk(download);
    this.pump(conn);
  }

  /** A good copy of a chunk that once failed: every peer whose block differed from it lied. */
  private confirmSuspects(good: ChunkDownload): void {
    const suspect = this.suspects.get(good.index);
    if (suspect === undefined) return;
    this.suspects.delete(good.index);
    const liars = new Set<string>();
    for (let block = 0; block < good.blockState.length; block++) {
      const sender = suspect.senders[block];
      if (sender === undefined) continue;
      const begin = block * BLOCK_LENGTH_BYTES;
      const end = Math.min(begin + BLOCK_LENGTH_BYTES, good.lengthBytes);
      if (!bytesEqual(suspect.buffer.subarray(begin, end), good.buffer.subarray(begin, end)))
        liars.add(sender);
    }
    for (const label of liars) {
      this.untrusted.add(label);
      for (const conn of [...this.connections.values()]) {
        if (conn.label !== label) continue;
        this.untrusted.add(conn.address);
        this.closeConnection(conn, { code: 'corrupt-data', chunkIndex: good.index }, false);
      }
    }
  }

  private finishChunk(download: ChunkDownload): void {
    this.downloads.delete(download.index);
    // Requests for it still out (after a take-over, say) are of no use now.
    this.cancelChunkRequests(download.index);
    const expected = this.options.pieceHashes[download.index] as Uint8Array;
    const verified =
      this.options.unsafeSkipVerification === true ||
      bytesEqual(this.options.sha1(download.buffer), expected);
    if (!verified) {
      this.onCorruptChunk(download);
      return;
    }
    this.writing.set(download.index, download);
    this.effects.push({
      kind: 'write-chunk',
      index: download.index,
      bytes: download.buffer,
      fromOwner: download.lastSourceIsOwner,
    });
  }

  /** A chunk failed its hash: every contributor is blamed; past the limit it is closed and not trusted. */
  private onCorruptChunk(download: ChunkDownload): void {
    this.stats.corruptChunks++;
    this.activity({ kind: 'chunk-corrupt', chunk: download.index, from: download.lastSource });
    if (download.contributors.size > 1) {
      // Several senders: which one lied is unknown. The chunk is fetched again from one sender
      // only, so the next failure names the liar and no honest peer is blamed; and the bad copy is
      // kept, so the good one shows whose blocks were wrong.
      this.singleSource.add(download.index);
      if (this.suspects.size >= MAX_SUSPECT_CHUNKS)
        this.suspects.delete(this.suspects.keys().next().value as number);
      this.suspects.set(download.index, { buffer: download.buffer, senders: [...download.blockSenders] });
      return;
    }
    for (const id of download.contributors) {
      const conn = this.connections.get(id);
      if (conn === undefined) continue;
      const strikes = (this.corruptByPeer.get(conn.label) ?? 0) + 1;
      this.corruptByPeer.set(conn.label, strikes);
      if (strikes >= this.limits.maxCorruptChunks) {
        this.untrusted.add(conn.label);
        this.untrusted.add(conn.address);
        this.closeConnection(conn, { code: 'corrupt-data', chunkIndex: download.index }, false);
      }
    }
  }

  // ---- downloading ---------------------------------------------------------------------------

  /** Whether we would download chunk `index` from `conn` now, by topology and phase. */
  private wouldDownload(conn: Connection, index: number): boolean {
    if (!conn.remoteHave.has(index) || this.have.has(index)) return false;
    // A starving ring peer (its download neighbour gone, lying or empty-handed) takes from any
    // connected peer: the ring is how work is shared, not a reason to stall.
    if (!conn.isDownloadSource && !(this.starving && this.topology === 'ring' && this.role === 'peer'))
      return false;
    if (this.phases === 'overlapped' || this.topology === 'star') return true;
    if (conn.isOwner) {
      if (conn.ownerShare?.has(index) === true) return true;
      // Falling back to the owner: only for chunks no trading neighbour can give us.
      return this.starving && !this.anyNeighbourHas(index);
    }
    if (this.phaseDoneCache === undefined) this.phaseDoneCache = this.ownerPhaseDone();
    return this.phaseDoneCache;
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

  private refreshInterest(): void {
    for (const conn of this.connections.values()) if (conn.state === 'open') this.updateInterest(conn);
  }

  private updateInterest(conn: Connection): void {
    if (conn.state !== 'open' || this.role === 'owner') return;
    let wanted = false;
    if (!this.have.complete) {
      for (let i = 0; i < this.geometry.pieceCount && !wanted; i++) wanted = this.wouldDownload(conn, i);
    }
    if (wanted !== conn.amInterested) {
      conn.amInterested = wanted;
      this.send(conn, { type: wanted ? 'interested' : 'not-interested' });
    }
  }

  private pumpAll(): void {
    if (this.role === 'owner' || this.have.complete) return;
    for (const conn of this.connections.values()) this.pump(conn);
  }

  /** Fills `conn`'s request pipeline. */
  private pump(conn: Connection): void {
    if (conn.state !== 'open' || this.role === 'owner' || this.have.complete) return;
    if (!conn.amInterested) this.updateInterest(conn);
    const limit = this.requestLimit(conn);
    while (conn.outstanding.size < limit) {
      const next = this.nextBlock(conn);
      if (next === undefined) break;
      this.requestBlock(conn, next.download, next.block);
    }
  }

  /** Folds the bytes received since the last sample into the peer's moving-average rate. */
  private sampleRate(conn: Connection): void {
    const elapsedMs = this.nowMs - conn.lastSampleAtMs;
    if (elapsedMs < this.limits.tickMs) return;
    const sample = Math.floor((conn.receivedSinceSampleBytes * 1000) / elapsedMs);
    conn.downloadBytesPerSecond =
      conn.downloadBytesPerSecond === 0 ? sample : Math.floor((conn.downloadBytesPerSecond * 3 + sample) / 4);
    conn.receivedSinceSampleBytes = 0;
    conn.lastSampleAtMs = this.nowMs;
  }

  private requestLimit(conn: Connection): number {
    const byRate =
      Math.ceil((conn.downloadBytesPerSecond * this.limits.requestQueueMs) / 1000 / BLOCK_LENGTH_BYTES) + 2;
    return Math.min(this.limits.maxOutstandingRequestsPerPeer, Math.max(this.minOutstandingRequests, byRate));
  }

  private canRequest(conn: Connection, index: number): boolean {
    return !conn.peerChoking || conn.allowedFast.has(index);
  }

  /** The next block to ask `conn` for: finish started chunks first, then a new chunk, then endgame. */
  private nextBlock(conn: Connection): { download: ChunkDownload; block: number } | undefined {
    for (const download of this.downloads.values()) {
      if (this.takenFrom(download, conn)) continue;
      if (!this.wouldDownload(conn, download.index) || !this.canRequest(conn, download.index)) continue;
      if (download.startedBy !== conn.id) {
        // An owner that offers everything (a plain seed, not handing out shares) has the scarcest
        // upload in an overlapped swarm: it is not spent on the rest of a chunk a neighbour is
        // sending us. Nor is a chunk fetched from one sender only asked of another.
        const plainSeed = conn.isOwner && conn.ownerShare?.complete === true && this.phases === 'overlapped';
        const single = this.singleSource.has(download.index);
        if ((plainSeed || single) && this.starterCanSend(download)) continue;
        // Its sender is gone (or may no longer be asked): this peer takes the chunk over, afresh.
        if (single) this.restartDownload(download, conn);
      }
      const block = download.blockState.indexOf(0);
      if (block >= 0) return { download, block };
    }
    // Near the end the owner's share is rare and the owner's line long: taken over first.
    const share = this.takeOver(conn, true);
    if (share !== undefined) return share;
    const index = this.pickNewChunk(conn);
    if (index !== undefined) return { download: this.startDownload(index, conn), block: 0 };
    const taken = this.takeOver(conn, false);
    if (taken !== undefined) return taken;
    // Nothing else here: what the owner showed us but we have not asked it for yet is fair game too.
    const owner = conn.isOwner || this.phases !== 'overlapped' ? undefined : this.ownerConnection();
    // (Only when the first pick left the owner's chunks out: else it would be the same scan again.)
    const shared = owner === undefined || this.bypassOwner(owner) ? undefined : this.pickNewChunk(conn, true);
    if (shared !== undefined) return { download: this.startDownload(shared, conn), block: 0 };
    if (!this.endgame) return undefined;
    return this.endgameBlock(conn);
  }

  /**
   * A chunk asked of one sender that has not sent a byte of it for a second (an owner with hundreds
   * of peers in line, a neighbour serving others first) is taken over by a neighbour with nothing
   * else to give us: the first sender's requests are cancelled. Otherwise it would sit there until
   * endgame and, more often than not, be the last chunk the peer waits for. With `bypassedOwnerOnly`,
   * only the owner's share near the end (see bypassOwner), which is taken before any new chunk: the
   * owner hands out the least-replicated chunks, so it is also the rarest one we lack.
   */
  private takeOver(
    conn: Connection,
    bypassedOwnerOnly: boolean,
  ): { download: ChunkDownload; block: number } | undefined {
    if (this.phases !== 'overlapped') return undefined;
    // Cheap way out on the hot path: the owner is only bypassed in a peer's last chunks.
    if (bypassedOwnerOnly && this.geometry.pieceCount - this.have.count > NEAR_END_CHUNKS) return undefined;
    for (const download of this.downloads.values()) {
      if (download.blocksReceived > 0 || this.singleSource.has(download.index)) continue;
      const sender = this.connections.get(download.startedBy);
      if (sender === undefined || sender === conn) continue;
      const bypassed = sender.isOwner && this.bypassOwner(sender);
      if (bypassedOwnerOnly && !bypassed) continue;
      if (!this.wouldDownload(conn, download.index) || !this.canRequest(conn, download.index)) continue;
      let waiting = false;
      let stale = true;
      for (const request of sender.outstanding.values()) {
        if (request.index !== download.index) continue;
        waiting = true;
        if (this.nowMs - request.sentAtMs < TAKE_OVER_AFTER_MS) stale = false;
      }
      // Near the end nothing waits for an owner that is busy with others.
      if (!waiting || !(stale || bypassed)) continue;
      this.cancelRequests(sender, download.index, true);
      download.startedBy = conn.id;
      download.takenFrom = sender.id;
      download.takenAtMs = this.nowMs;
      const block = download.blockState.indexOf(0);
      if (block >= 0) return { download, block };
    }
    return undefined;
  }

  /** Whether `conn` is the sender this chunk was just taken from (it is asked again only later). */
  private takenFrom(download: ChunkDownload, conn: Connection): boolean {
    return download.takenFrom === conn.id && this.nowMs - download.takenAtMs < TAKE_OVER_AFTER_MS;
  }

  private pickNewChunk(conn: Connection, includeOwnerShare = false): number | undefined {
    if (this.nowMs < this.storagePausedUntilMs) return undefined;
    // Until we hold a chunk, one neighbour sends us one at a time: a first chunk that arrives whole
    // at full speed makes us an uploader sooner than several arriving side by side, slowly.
    if (this.have.count === 0 && !conn.isOwner && this.neighbourDownloadUnderWay()) return undefined;
    let owner =
      conn.isOwner || this.phases !== 'overlapped' || includeOwnerShare ? undefined : this.ownerConnection();
    if (owner !== undefined && this.bypassOwner(owner)) owner = undefined;
    const eligible = (i: number): boolean =>
      !this.downloads.has(i) &&
      !this.writing.has(i) &&
      // What the owner hands us is left to the owner: taking it elsewhere would stall its next share.
      owner?.remoteHave.has(i) !== true &&
      this.wouldDownload(conn, i) &&
      this.canRequest(conn, i);
    if (this.picker === 'random') {
      // Rejection sampling is uniform over the eligible chunks and, while many are eligible, avoids
      // scanning them all for every pick (quadratic in the chunk count over a download).
      for (let attempt = 0; attempt < RANDOM_PICK_ATTEMPTS; attempt++) {
        const index = this.random.nextInt(this.geometry.pieceCount);
        if (eligible(index)) return index;
      }
    }
    const candidates: number[] = [];
    for (let i = 0; i < this.geometry.pieceCount; i++) if (eligible(i)) candidates.push(i);
    return pickChunk(this.picker, candidates, this.availability, this.random);
  }

  /** Withdraws every request still outstanding for chunk `index`, on every connection. */
  private cancelChunkRequests(index: number): void {
    for (const conn of this.connections.values()) this.cancelRequests(conn, index, false);
  }

  /** Withdraws the requests for chunk `index` on `conn`; with `release`, others may be asked instead. */
  private cancelRequests(conn: Connection, index: number, release: boolean): void {
    for (const [key, request] of conn.outstanding) {
      if (request.index !== index) continue;
      conn.outstanding.delete(key);
      if (release) this.releaseBlock(conn, request);
      this.send(conn, { type: 'cancel', index, begin: request.begin, length: request.length });
    }
  }

  /** A chunk a neighbour is sending us, or was asked for less than a second ago. */
  private neighbourDownloadUnderWay(): boolean {
    for (const download of this.downloads.values()) {
      const source = this.connections.get(download.startedBy);
      if (source === undefined || source.isOwner) continue;
      if (download.blocksReceived > 0) return true;
      for (const request of source.outstanding.values()) {
        if (request.index === download.index && this.nowMs - request.sentAtMs < FIRST_CHUNK_PATIENCE_MS)
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
    return (
      this.geometry.pieceCount - this.have.count <= NEAR_END_CHUNKS &&
      this.nowMs - owner.lastBlockAtMs >= OWNER_QUIET_MS
    );
  }

  /** The open, unchoked connection to the owner, if any. */
  private ownerConnection(): Connection | undefined {
    for (const conn of this.connections.values()) {
      if (conn.isOwner && conn.state === 'open' && !conn.peerChoking) return conn;
    }
    return undefined;
  }

  /** Whether the connection that started `download` is still there and may still be asked for it. */
  private starterCanSend(download: ChunkDownload): boolean {
    const starter = this.connections.get(download.startedBy);
    return (
      starter !== undefined &&
      this.wouldDownload(starter, download.index) &&
      this.canRequest(starter, download.index)
    );
  }

  private restartDownload(download: ChunkDownload, conn: Connection): void {
    this.cancelChunkRequests(download.index);
    download.blockState.fill(0);
    download.blocksReceived = 0;
    download.contributors.clear();
    download.requestedFrom.clear();
    download.blockSenders.length = 0;
    download.startedBy = conn.id;
  }

  private startDownload(index: number, conn: Connection): ChunkDownload {
    const lengthBytes = chunkLength(this.geometry, index);
    const download: ChunkDownload = {
      index,
      lengthBytes,
      buffer: this.options.allocateChunk?.(lengthBytes) ?? new Uint8Array(lengthBytes),
      blockState: new Uint8Array(Math.ceil(lengthBytes / BLOCK_LENGTH_BYTES)),
      blocksReceived: 0,
      contributors: new Set(),
      contributorIds: [],
      requestedFrom: new Map(),
      startedBy: conn.id,
      blockSenders: [],
      lastSource: conn.label,
      lastSourceIsOwner: conn.isOwner,
      announced: new Set(),
      takenFrom: undefined,
      takenAtMs: 0,
    };
    this.downloads.set(index, download);
    return download;
  }

  /** Endgame: every missing block is already asked for; ask this peer too, for a block it was not asked. */
  private endgameBlock(conn: Connection): { download: ChunkDownload; block: number } | undefined {
    for (let i = 0; i < this.geometry.pieceCount; i++) {
      if (!this.have.has(i) && !this.downloads.has(i) && !this.writing.has(i)) return undefined;
    }
    // Only the last few blocks: duplicating a large remainder would waste the senders' upload.
    let missingBlocks = 0;
    for (const download of this.downloads.values())
      missingBlocks += download.blockState.length - download.blocksReceived;
    if (missingBlocks > this.limits.endgameBlocks) return undefined;
    for (const download of this.downloads.values()) {
      if (this.singleSource.has(download.index) || this.takenFrom(download, conn)) continue;
      if (!this.wouldDownload(conn, download.index) || !this.canRequest(conn, download.index)) continue;
      for (let block = 0; block < download.blockState.length; block++) {
        if (download.blockState[block] !== 1) continue;
        const from = download.requestedFrom.get(block);
        if (from !== undefined && !from.has(conn.id) && from.size < this.limits.endgameDuplicates)
          return { download, block };
      }
    }
    return undefined;
  }

  private requestBlock(conn: Connection, download: ChunkDownload, block: number): void {
    const begin = block * BLOCK_LENGTH_BYTES;
    const length = Math.min(BLOCK_LENGTH_BYTES, download.lengthBytes - begin);
    download.blockState[block] = 1;
    let from = download.requestedFrom.get(block);
    if (from === undefined) {
      from = new Set();
      download.requestedFrom.set(block, from);
    }
    from.add(conn.id);
    conn.outstanding.set(blockKey(download.index, begin), {
      index: download.index,
      begin,
      length,
      sentAtMs: this.nowMs,
    });
    if (!download.announced.has(conn.id)) {
      download.announced.add(conn.id);
      this.activity({ kind: 'request-sent', chunk: download.index, to: conn.label });
    }
    this.send(conn, { type: 'request', index: download.index, begin, length });
  }

  private expireRequests(conn: Connection): void {
    let expired = false;
    for (const [key, request] of conn.outstanding) {
      if (this.nowMs - request.sentAtMs < this.limits.requestTimeoutMs) continue;
      conn.outstanding.delete(key);
      this.releaseBlock(conn, request);
      this.send(conn, { type: 'cancel', index: request.index, begin: request.begin, length: request.length });
      expired = true;
    }
    if (expired) this.pump(conn);
  }

  private totalOutstanding(): number {
    let total = this.writing.size;
    for (const conn of this.connections.values()) total += conn.outstanding.size;
    return total;
  }

  // ---- owner shares --------------------------------------------------------------------------

  /** A distinct share of the least-replicated chunks this peer lacks (BEP 16 style). */
  private chooseShare(conn: Connection): number[] {
    const candidates: number[] = [];
    for (let i = 0; i < this.geometry.pieceCount; i++) {
      if (!conn.remoteHave.has(i) && !conn.advertised.has(i)) candidates.push(i);
    }
    // Shuffle first so ties between equally replicated chunks fall at random, then a stable sort.
    this.random.shuffle(candidates);
    candidates.sort((a, b) => (this.replication[a] as number) - (this.replication[b] as number));
    const share = candidates.slice(0, this.ownerShareChunks).sort((a, b) => a - b);
    for (const index of share) this.replication[index] = (this.replication[index] as number) + 1;
    return share;
  }

  /** Once a peer holds everything we showed it, show it the next share. */
  private feedShare(conn: Connection): void {
    if (conn.remoteHave.complete) return;
    for (let i = 0; i < this.geometry.pieceCount; i++) {
      if (conn.advertised.has(i) && !conn.remoteHave.has(i)) return;
    }
    for (const index of this.chooseShare(conn)) this.announce(conn, index);
  }

  // ---- sending -------------------------------------------------------------------------------

  private send(conn: Connection, message: Message): void {
    this.sendBytes(conn, encodeMessage(message));
  }

  private sendBytes(conn: Connection, bytes: Uint8Array): void {
    conn.lastSentAtMs = this.nowMs;
    this.effects.push({ kind: 'send', connection: conn.id, bytes });
  }

  private activity(event: ActivityEvent): void {
    this.effects.push({ kind: 'activity', event });
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = (a[i] as number) - (b[i] as number);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}
