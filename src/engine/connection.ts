/**
 * One connection's record: what we know of the remote, what each side has said (choke, interest,
 * chunk lists) and the requests in flight both ways. The face owns every record and lends it to the
 * rooms; each room reads and writes only the fields of its own job.
 */
import { Bitfield } from './bitfield.ts';
import type { Geometry } from './chunking.ts';
import { WireDecoder } from './codec.ts';
import type { ConnectionId } from './effects.ts';
import type { BlockAddress } from './messages.ts';

export type { ConnectionId } from './effects.ts';

export interface QueuedRequest extends BlockAddress {
  /** Arrival order across all peers. */
  readonly sequence: number;
}

export interface OutstandingRequest extends BlockAddress {
  readonly sentAtMs: number;
}

export type ConnectionState = 'connecting' | 'handshaking' | 'open' | 'closed';

export interface Connection {
  readonly id: ConnectionId;
  readonly direction: 'inbound' | 'outbound';
  readonly address: string;
  /** Set for outbound connections we made to a known address. */
  readonly knownAddress: string | undefined;
  state: ConnectionState;
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
  /** Blocks we asked this peer for, by `blockKey`. */
  readonly outstanding: Map<BlockKey, OutstandingRequest>;
  /**
   * Blocks we cancelled on a BEP 6 connection whose answer (the piece, or a reject) has not come:
   * a reject of such a block answers the cancel, not a later request for the same block.
   */
  readonly cancelled: Set<BlockKey>;
  /** Blocks this peer asked us for, not yet read. */
  readonly queued: QueuedRequest[];
  readonly readsInFlight: Map<BlockKey, BlockAddress>;
  /** Chunk -> bytes served of it in the current round, for the chunk-sent event. */
  readonly serving: Map<number, number>;
  invalidRequests: number;
  servedSinceUnchokeBytes: number;
  /** Download rate from this peer: bytes since the last sample, and a moving average. */
  receivedSinceSampleBytes: number;
  lastSampleAtMs: number;
  downloadBytesPerSecond: number;
}

/** The key of one block in the per-connection request maps: chunk index and offset in one number. */
export type BlockKey = number;

/** Offsets are 32-bit on the wire and chunk indices stay under 2^20, so the key is exact (< 2^53). */
const OFFSET_RANGE = 0x100000000;

/** A number, not a string: a block key is made on every request, piece and read. */
export const blockKey = (index: number, begin: number): BlockKey => index * OFFSET_RANGE + begin;

/** A fresh record, choked and uninterested both ways, as BEP 3 starts every connection. */
export function newConnectionRecord(
  id: ConnectionId,
  direction: 'inbound' | 'outbound',
  address: string,
  knownAddress: string | undefined,
  geometry: Geometry,
  nowMs: number,
): Connection {
  const count = geometry.pieceCount;
  return {
    id,
    direction,
    address,
    knownAddress,
    state: 'connecting',
    decoder: new WireDecoder(geometry),
    openedAtMs: nowMs,
    lastReceivedAtMs: nowMs,
    lastBlockAtMs: nowMs,
    lastSentAtMs: nowMs,
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
    cancelled: new Set(),
    queued: [],
    readsInFlight: new Map(),
    serving: new Map(),
    invalidRequests: 0,
    servedSinceUnchokeBytes: 0,
    receivedSinceSampleBytes: 0,
    lastSampleAtMs: nowMs,
    downloadBytesPerSecond: 0,
  };
}

/** Whether `conn` may be asked for chunk `index` now: unchoked, or the chunk is allowed fast (BEP 6). */
export function canRequest(conn: Connection, index: number): boolean {
  return !conn.peerChoking || conn.allowedFast.has(index);
}
