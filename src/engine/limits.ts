/**
 * Every limit the engine keeps, in one place: the tunable ones (`EngineLimits`, with their defaults)
 * and the fixed ones the policies are built around.
 */

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
  /**
   * Verified chunks handed to the disk and not yet confirmed, at most: beyond it no new chunk is
   * started, so a disk slower than the wire holds the download back instead of filling memory.
   */
  readonly maxChunksWriting: number;
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
  maxChunksWriting: 16,
  endgameDuplicates: 2,
  endgameBlocks: 16,
  requestQueueMs: 500,
};

/** Failed chunks kept for the smart ban at most (each holds one chunk's bytes). */
export const MAX_SUSPECT_CHUNKS = 8;
/** BEP 6 allowed-fast chunks remembered per peer; a peer offering more is not listened to. */
export const MAX_ALLOWED_FAST_CHUNKS = 64;
/** Chunks per peer whose served bytes we track for the chunk-sent event; the oldest is forgotten. */
export const MAX_SERVING_CHUNKS_PER_PEER = 64;
/** Random draws tried before the random picker falls back to listing every eligible chunk. */
export const RANDOM_PICK_ATTEMPTS = 24;
/** How long a peer without chunks waits on the neighbour sending its first before asking others too. */
export const FIRST_CHUNK_PATIENCE_MS = 1_000;
/** How long a sender may leave a chunk we asked for unstarted before another takes it over. */
export const TAKE_OVER_AFTER_MS = 1_000;
/** Chunks still missing when a peer stops leaving the owner's share to the owner. */
export const NEAR_END_CHUNKS = 16;
/** How long the owner has sent us nothing before, near the end, its share is taken elsewhere. */
export const OWNER_QUIET_MS = 500;
/** Redial backoff doubles with each failure, up to this many doublings (then `reconnectMaxMs` caps it). */
export const MAX_REDIAL_DOUBLINGS = 16;
/** Storage backoff doubles with each failed write, up to this many doublings. */
export const MAX_STORAGE_DOUBLINGS = 20;
/** Copies of a chunk the owner counts at most (the counter is 16 bits wide). */
export const MAX_COPIES_COUNTED = 0xffff;

// Magnet links (BEP 9): what we read of one, at most.
/** Longest magnet link we read, in characters. */
export const MAX_MAGNET_LENGTH = 8192;
/** Parameters (`key=value` pairs) we read at most. */
export const MAX_MAGNET_PARAMETERS = 128;
/** Trackers (`tr`) kept at most. */
export const MAX_MAGNET_TRACKERS = 16;
/** Peer addresses (`x.pe`) kept at most. */
export const MAX_MAGNET_PEERS = 32;
/** Longest tracker URL, in characters after decoding. */
export const MAX_MAGNET_TRACKER_URL_LENGTH = 2048;
/** Longest display name (`dn`), in characters after decoding. */
export const MAX_MAGNET_NAME_LENGTH = 1024;
/** Longest host name in an `x.pe` address (DNS allows 253). */
export const MAX_MAGNET_HOST_LENGTH = 253;

// Peer exchange (BEP 11, pex.ts and peer-exchange.ts).
/** One `ut_pex` message to a peer per minute at most, as BEP 11 asks. */
export const PEX_INTERVAL_MS = 60_000;
/**
 * The first `ut_pex` message to a peer goes with its extension handshake when we have something to
 * say, else at most this long after the connection opened.
 */
export const PEX_FIRST_DELAY_MS = 1_000;
/** Added (and, separately, dropped) addresses we send in one message at most (BEP 11 says 50). */
export const MAX_PEX_SENT_ENTRIES = 50;
/**
 * Entries one received list may hold. Twice BEP 11's 50, for clients that count IPv4 and IPv6
 * together or send a first full list; more is a lie that closes the connection.
 */
export const MAX_PEX_RECEIVED_ENTRIES = 100;
/**
 * The largest `ut_pex` payload we read: a little over the largest honest one (every list at
 * `MAX_PEX_RECEIVED_ENTRIES`, IPv6 ones included, with flags: about 5 KB). More closes the connection
 * before the payload is decoded.
 */
export const MAX_PEX_PAYLOAD_BYTES = 8192;
/**
 * The closest two `ut_pex` messages from one peer may come. Half of BEP 11's minute, so an honest
 * peer's timer jitter is never mistaken for a flood.
 */
export const MIN_PEX_RECEIVE_INTERVAL_MS = 30_000;
/** Addresses learned through peer exchange kept in the address book at most, in total. */
export const MAX_EXCHANGED_ADDRESSES = 200;
/** Failed dials after which an address learned through peer exchange is forgotten. */
export const MAX_EXCHANGED_FAILURES = 5;
