/**
 * Bytes -> peer wire messages: an incremental decoder for one connection's inbound bytes.
 *
 * Decoding never throws on any input: a remote's bad bytes become a `WireError`, after which the
 * decoder stays poisoned.
 *
 * Ownership: `block`, `bits`, `payload` and the handshake fields of decoded events may be views into
 * the `Uint8Array` passed to `push` (or into a buffer the decoder allocated for that one frame and
 * then let go). Copy them before mutating or reusing the input buffer.
 */
import { readUint32, writeUint32 } from './bytes.ts';
import { type Geometry, MAXIMUM_CHUNK_COUNT } from './chunking.ts';
import { type WireError, type WireErrorCode, wireError } from './errors.ts';
import {
  HANDSHAKE_LENGTH_BYTES,
  type Handshake,
  ID_ONLY_MESSAGE_IDS,
  MAX_EXTENDED_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  type Message,
  MessageId,
  LENGTH_PREFIX_BYTES as PREFIX_BYTES,
} from './messages.ts';
import { BLOCK_OFFSET, givePieceBody, PIECE_BODY_BYTES, takePieceBody } from './piece-bodies.ts';
import { checkBlock, checkHeader, checkIndex, checkProtocolName } from './wire-checks.ts';

/** Every error code the decoder itself can return (the engine adds its own, like info-hash-mismatch). */
export const DECODER_ERROR_CODES: readonly WireErrorCode[] = [
  'not-bittorrent',
  'bad-handshake',
  'frame-too-large',
  'bad-message-length',
  'unknown-message',
  'bad-bitfield-length',
  'bitfield-spare-bits',
  'index-out-of-range',
  'block-too-large',
  'block-out-of-range',
];

export type DecodedEvent = Handshake | Message;
export type DecodeResult =
  | { ok: true; events: DecodedEvent[] }
  | { ok: false; events: DecodedEvent[]; error: WireError };

const EMPTY = new Uint8Array(0);

// Payload-free messages are immutable, so every decode can share one object.
const KEEP_ALIVE: Message = Object.freeze({ type: 'keep-alive' });
/** The messages that are an id alone, by id; immutable, so every decode shares one object each. */
const ID_ONLY_EVENTS: ReadonlyMap<number, Message> = new Map(
  Object.entries(ID_ONLY_MESSAGE_IDS).map(([type, id]) => [id, Object.freeze({ type }) as Message]),
);

const PHASE_HANDSHAKE = 0;
const PHASE_PREFIX = 1;
const PHASE_ID = 2;
const PHASE_BODY = 3;
/** What a decoding step returns instead of an offset: wait for more input, or the input is bad. */
const NEED_MORE = -1;
const FAILED = -2;
type Phase = typeof PHASE_HANDSHAKE | typeof PHASE_PREFIX | typeof PHASE_ID | typeof PHASE_BODY;

/**
 * Incremental decoder for one connection's inbound bytes. Feed it whatever the socket delivers;
 * frames may be split or merged at any byte.
 *
 * Memory is bounded before any body byte is buffered: the length prefix and id are validated first,
 * so at most one frame (a bitfield, a 64 KiB extended message or a 16 KiB piece) is ever held.
 */
export class WireDecoder {
  readonly #geometry: Geometry;
  readonly #bitfieldBytes: number;
  /** Largest length prefix any message could carry; anything above is refused before the id. */
  readonly #maxLengthBytes: number;

  #phase: Phase;
  #error: WireError | null = null;

  #handshake: Uint8Array | null;
  #handshakeFilledBytes = 0;

  readonly #prefix = new Uint8Array(PREFIX_BYTES);
  #prefixFilledBytes = 0;
  /** The current frame's length prefix: id byte + body. */
  #frameLengthBytes = 0;
  #messageId = 0;
  /** Only allocated when a body arrives split across pushes; whole bodies are decoded in place. */
  #body: Uint8Array | null = null;
  #bodyFilledBytes = 0;
  /** The whole spare buffer `#body` views while a piece body is being filled, else null. */
  #pieceBody: Uint8Array | null = null;
  /** A piece body decoded in the last push, until `release` hands it back. */
  #decodedPieceBody: Uint8Array | null = null;
  /**
   * A piece's address (index, begin) came alone at the end of a push: the block may come whole in
   * the next one, and is then handed over as a view of it instead of a copy.
   */
  #addressed = false;
  #pieceIndex = 0;
  #pieceBegin = 0;

  constructor(geometry: Geometry, options?: { expectHandshake?: boolean }) {
    const { pieceCount, pieceLengthBytes, totalLengthBytes } = geometry;
    if (
      !Number.isSafeInteger(pieceCount) ||
      pieceCount < 0 ||
      pieceCount > MAXIMUM_CHUNK_COUNT ||
      !Number.isSafeInteger(pieceLengthBytes) ||
      pieceLengthBytes < 1 ||
      !Number.isSafeInteger(totalLengthBytes) ||
      totalLengthBytes < 0
    ) {
      throw new RangeError(`invalid geometry ${JSON.stringify(geometry)}`);
    }
    this.#geometry = geometry;
    this.#bitfieldBytes = Math.ceil(pieceCount / 8);
    this.#maxLengthBytes = Math.max(
      MAX_FRAME_BYTES - PREFIX_BYTES,
      1 + this.#bitfieldBytes,
      2 + MAX_EXTENDED_PAYLOAD_BYTES,
    );
    const expectHandshake = options?.expectHandshake ?? true;
    this.#phase = expectHandshake ? PHASE_HANDSHAKE : PHASE_PREFIX;
    this.#handshake = expectHandshake ? new Uint8Array(HANDSHAKE_LENGTH_BYTES) : null;
  }

  /** Bytes of an unfinished handshake or frame held until more input arrives. */
  get bufferedBytes(): number {
    switch (this.#phase) {
      case PHASE_HANDSHAKE:
        return this.#handshakeFilledBytes;
      case PHASE_PREFIX:
        return this.#prefixFilledBytes;
      case PHASE_ID:
        return PREFIX_BYTES;
      default:
        return PREFIX_BYTES + 1 + this.#bodyFilledBytes;
    }
  }

  push(bytes: Uint8Array): DecodeResult {
    if (this.#error !== null) return { ok: false, events: [], error: this.#error };
    const events: DecodedEvent[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      const next = this.#step(bytes, offset, events);
      if (next === FAILED) return this.#failed(events);
      if (next === NEED_MORE) break;
      offset = next;
    }
    return { ok: true, events };
  }

  /** Decodes what the current phase can from `offset`: the next offset, `NEED_MORE` or `FAILED`. */
  #step(bytes: Uint8Array, offset: number, events: DecodedEvent[]): number {
    switch (this.#phase) {
      case PHASE_PREFIX:
        return this.#readPrefix(bytes, offset, events);
      case PHASE_ID:
        return this.#readId(bytes, offset, events);
      case PHASE_BODY:
        return this.#readBody(bytes, offset, events);
      default:
        return this.#readHandshake(bytes, offset, events);
    }
  }

  #readPrefix(bytes: Uint8Array, start: number, events: DecodedEvent[]): number {
    let offset = start;
    let lengthBytes: number;
    if (this.#prefixFilledBytes === 0 && bytes.length - offset >= PREFIX_BYTES) {
      lengthBytes = readUint32(bytes, offset);
      offset += PREFIX_BYTES;
    } else {
      while (this.#prefixFilledBytes < PREFIX_BYTES && offset < bytes.length) {
        this.#prefix[this.#prefixFilledBytes++] = bytes[offset++] as number;
      }
      if (this.#prefixFilledBytes < PREFIX_BYTES) return NEED_MORE;
      lengthBytes = readUint32(this.#prefix, 0);
      this.#prefixFilledBytes = 0;
    }
    if (lengthBytes === 0) {
      events.push(KEEP_ALIVE);
      return offset;
    }
    if (lengthBytes > this.#maxLengthBytes) {
      return this.#fail(
        wireError('frame-too-large', `length prefix ${lengthBytes} exceeds any message's limit`),
      );
    }
    this.#frameLengthBytes = lengthBytes;
    this.#phase = PHASE_ID;
    return offset;
  }

  #readId(bytes: Uint8Array, offset: number, events: DecodedEvent[]): number {
    const id = bytes[offset] as number;
    const headerError = checkHeader(id, this.#frameLengthBytes, this.#bitfieldBytes);
    if (headerError !== null) return this.#fail(headerError);
    this.#messageId = id;
    if (this.#frameLengthBytes > 1) {
      this.#phase = PHASE_BODY;
      return offset + 1;
    }
    const bodyError = this.#decodeBody(id, EMPTY, 0, 0, events);
    if (bodyError !== null) return this.#fail(bodyError);
    this.#phase = PHASE_PREFIX;
    return offset + 1;
  }

  #readBody(bytes: Uint8Array, offset: number, events: DecodedEvent[]): number {
    if (this.#addressed) return this.#readBlock(bytes, offset, events);
    const bodyBytes = this.#frameLengthBytes - 1;
    let source: Uint8Array;
    let start: number;
    let next: number;
    if (this.#body === null) {
      const availableBytes = bytes.length - offset;
      if (availableBytes < bodyBytes) {
        if (this.#messageId === MessageId.piece && availableBytes === BLOCK_OFFSET) {
          this.#pieceIndex = readUint32(bytes, offset);
          this.#pieceBegin = readUint32(bytes, offset + 4);
          this.#addressed = true;
          this.#bodyFilledBytes = BLOCK_OFFSET;
          return NEED_MORE;
        }
        this.#body = this.#newBody(bodyBytes);
        this.#body.set(bytes.subarray(offset), 0);
        this.#bodyFilledBytes = availableBytes;
        return NEED_MORE;
      }
      source = bytes;
      start = offset;
      next = offset + bodyBytes;
    } else {
      const takeBytes = Math.min(bodyBytes - this.#bodyFilledBytes, bytes.length - offset);
      this.#body.set(bytes.subarray(offset, offset + takeBytes), this.#bodyFilledBytes);
      this.#bodyFilledBytes += takeBytes;
      next = offset + takeBytes;
      if (this.#bodyFilledBytes < bodyBytes) return NEED_MORE;
      source = this.#body;
      start = 0;
      this.#body = null;
      this.#bodyFilledBytes = 0;
      this.#decodedPieceBody = this.#pieceBody;
      this.#pieceBody = null;
    }
    const bodyError = this.#decodeBody(this.#messageId, source, start, bodyBytes, events);
    if (bodyError !== null) return this.#fail(bodyError);
    this.#phase = PHASE_PREFIX;
    return next;
  }

  /**
   * The block after a piece's address that came alone: whole in this push, it is handed over as a
   * view; else it is buffered after the address, as if the two had come together.
   */
  #readBlock(bytes: Uint8Array, offset: number, events: DecodedEvent[]): number {
    const bodyBytes = this.#frameLengthBytes - 1;
    const blockBytes = bodyBytes - BLOCK_OFFSET;
    const index = this.#pieceIndex;
    const begin = this.#pieceBegin;
    this.#addressed = false;
    if (bytes.length - offset < blockBytes) {
      this.#body = this.#newBody(bodyBytes);
      writeUint32(this.#body, 0, index);
      writeUint32(this.#body, 4, begin);
      return this.#readBody(bytes, offset, events);
    }
    const error = checkBlock(this.#geometry, index, begin, blockBytes);
    if (error !== null) return this.#fail(error);
    events.push({ type: 'piece', index, begin, block: bytes.subarray(offset, offset + blockBytes) });
    this.#bodyFilledBytes = 0;
    this.#phase = PHASE_PREFIX;
    return offset + blockBytes;
  }

  /** A buffer for a body split across pushes: a spare one for a piece, else a new one. */
  #newBody(bodyBytes: number): Uint8Array {
    if (this.#messageId !== MessageId.piece || bodyBytes > PIECE_BODY_BYTES) return new Uint8Array(bodyBytes);
    this.#pieceBody = takePieceBody();
    return this.#pieceBody.subarray(0, bodyBytes);
  }

  /**
   * The caller is done with the events of the last push: a piece block that was assembled from
   * several pushes may now be reused for another. Optional; a caller that keeps blocks never calls it.
   */
  release(): void {
    const body = this.#decodedPieceBody;
    this.#decodedPieceBody = null;
    if (body !== null) givePieceBody(body);
  }

  /**
   * Hands over the piece body `block` (of the last push's events) lies in, when the decoder put it
   * together from several pushes: the caller keeps it (the block at BLOCK_OFFSET), gives it back with
   * `givePieceBody`, and `release` no longer reuses it. Null when `block` is a view of the input.
   */
  adopt(block: Uint8Array): Uint8Array | null {
    const body = this.#decodedPieceBody;
    if (body === null || block.buffer !== body.buffer) return null;
    this.#decodedPieceBody = null;
    return body;
  }

  #readHandshake(bytes: Uint8Array, offset: number, events: DecodedEvent[]): number {
    const handshake = this.#handshake as Uint8Array;
    const filledBytes = this.#handshakeFilledBytes;
    const takeBytes = Math.min(HANDSHAKE_LENGTH_BYTES - filledBytes, bytes.length - offset);
    handshake.set(bytes.subarray(offset, offset + takeBytes), filledBytes);
    this.#handshakeFilledBytes = filledBytes + takeBytes;
    const protocolError = checkProtocolName(handshake, filledBytes, this.#handshakeFilledBytes);
    if (protocolError !== null) return this.#fail(protocolError);
    if (this.#handshakeFilledBytes < HANDSHAKE_LENGTH_BYTES) return NEED_MORE;
    events.push({
      type: 'handshake',
      reserved: handshake.subarray(20, 28),
      infoHash: handshake.subarray(28, 48),
      peerId: handshake.subarray(48, 68),
    });
    this.#handshake = null;
    this.#handshakeFilledBytes = 0;
    this.#phase = PHASE_PREFIX;
    return offset + takeBytes;
  }

  #failed(events: DecodedEvent[]): DecodeResult {
    return { ok: false, events, error: this.#error as WireError };
  }

  /** Poisons the decoder: every later push returns `error`. */
  #fail(error: WireError): typeof FAILED {
    this.#error = error;
    this.#handshake = null;
    this.#body = null;
    this.#addressed = false;
    return FAILED;
  }

  /** Decodes a complete body (`bodyBytes` bytes from `start`, after the id) into `events`. */
  #decodeBody(
    id: number,
    source: Uint8Array,
    start: number,
    bodyBytes: number,
    events: DecodedEvent[],
  ): WireError | null {
    const idOnly = ID_ONLY_EVENTS.get(id);
    if (idOnly !== undefined) {
      events.push(idOnly);
      return null;
    }
    switch (id) {
      case MessageId.have:
      case MessageId.suggest:
      case MessageId.allowedFast: {
        const index = readUint32(source, start);
        const error = checkIndex(this.#geometry, index);
        if (error !== null) return error;
        const type = id === MessageId.have ? 'have' : id === MessageId.suggest ? 'suggest' : 'allowed-fast';
        events.push({ type, index });
        return null;
      }
      case MessageId.request:
      case MessageId.cancel:
      case MessageId.reject: {
        const index = readUint32(source, start);
        const begin = readUint32(source, start + 4);
        const length = readUint32(source, start + 8);
        const error = checkBlock(this.#geometry, index, begin, length);
        if (error !== null) return error;
        const type = id === MessageId.request ? 'request' : id === MessageId.cancel ? 'cancel' : 'reject';
        events.push({ type, index, begin, length });
        return null;
      }
      case MessageId.piece: {
        const index = readUint32(source, start);
        const begin = readUint32(source, start + 4);
        const error = checkBlock(this.#geometry, index, begin, bodyBytes - 8);
        if (error !== null) return error;
        events.push({ type: 'piece', index, begin, block: source.subarray(start + 8, start + bodyBytes) });
        return null;
      }
      case MessageId.bitfield: {
        const bits = source.subarray(start, start + bodyBytes);
        const spareBits = this.#bitfieldBytes * 8 - this.#geometry.pieceCount;
        // Spare bits are the low bits of the last byte (piece 0 is the high bit of byte 0).
        if (spareBits > 0 && ((bits[bodyBytes - 1] as number) & ((1 << spareBits) - 1)) !== 0) {
          return wireError('bitfield-spare-bits', 'bitfield has bits set past the last piece');
        }
        events.push({ type: 'bitfield', bits });
        return null;
      }
      case MessageId.port:
        events.push({
          type: 'port',
          port: ((source[start] as number) << 8) | (source[start + 1] as number),
        });
        return null;
      case MessageId.extended:
        events.push({
          type: 'extended',
          extendedId: source[start] as number,
          payload: source.subarray(start + 1, start + bodyBytes),
        });
        return null;
      default:
        // Unreachable: checkHeader already refused unknown ids.
        return wireError('unknown-message', `unknown message id ${id}`);
    }
  }
}
