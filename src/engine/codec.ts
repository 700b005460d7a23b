/**
 * Bytes <-> peer wire messages (BEP 3, BEP 5 port, BEP 6, BEP 10 envelope).
 *
 * Encoding throws `RangeError` on values we should never produce (our bug). Decoding never throws on
 * any input: a remote's bad bytes become a `WireError`, after which the decoder stays poisoned.
 *
 * Ownership: `block`, `bits`, `payload` and the handshake fields of decoded events may be views into
 * the `Uint8Array` passed to `push` (or into a buffer the decoder allocated for that one frame and
 * then let go). Copy them before mutating or reusing the input buffer.
 */
import { chunkLength, type Geometry, MAXIMUM_CHUNK_COUNT } from './chunking.ts';
import { type WireError, type WireErrorCode, wireError } from './errors.ts';
import {
  BLOCK_LENGTH_BYTES,
  HANDSHAKE_LENGTH_BYTES,
  type Handshake,
  type Message,
  MessageId,
  PROTOCOL_NAME,
} from './messages.ts';

/** A whole frame including its 4-byte length prefix: a piece message carrying a 16 KiB block. */
export const MAX_FRAME_BYTES = BLOCK_LENGTH_BYTES + 13;
/** Cap on the `payload` of a BEP 10 message (the bytes after the extended id). */
export const MAX_EXTENDED_PAYLOAD_BYTES = 64 * 1024;

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

const PREFIX_BYTES = 4;
const PIECE_HEADER_BYTES = 13;
const PROTOCOL_BYTES = Uint8Array.from(PROTOCOL_NAME, (c) => c.charCodeAt(0));
const UINT32_MAX = 0xffffffff;
const EMPTY = new Uint8Array(0);

// Payload-free messages are immutable, so every decode can share one object.
const KEEP_ALIVE: Message = Object.freeze({ type: 'keep-alive' });
const CHOKE: Message = Object.freeze({ type: 'choke' });
const UNCHOKE: Message = Object.freeze({ type: 'unchoke' });
const INTERESTED: Message = Object.freeze({ type: 'interested' });
const NOT_INTERESTED: Message = Object.freeze({ type: 'not-interested' });
const HAVE_ALL: Message = Object.freeze({ type: 'have-all' });
const HAVE_NONE: Message = Object.freeze({ type: 'have-none' });

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeHandshake(h: {
  reserved: Uint8Array;
  infoHash: Uint8Array;
  peerId: Uint8Array;
}): Uint8Array {
  checkLength('reserved', h.reserved, 8);
  checkLength('infoHash', h.infoHash, 20);
  checkLength('peerId', h.peerId, 20);
  const out = new Uint8Array(HANDSHAKE_LENGTH_BYTES);
  out[0] = PROTOCOL_BYTES.length;
  out.set(PROTOCOL_BYTES, 1);
  out.set(h.reserved, 20);
  out.set(h.infoHash, 28);
  out.set(h.peerId, 48);
  return out;
}

export function encodeMessage(m: Message): Uint8Array {
  switch (m.type) {
    case 'keep-alive':
      return new Uint8Array(PREFIX_BYTES);
    case 'choke':
      return idOnly(MessageId.choke);
    case 'unchoke':
      return idOnly(MessageId.unchoke);
    case 'interested':
      return idOnly(MessageId.interested);
    case 'not-interested':
      return idOnly(MessageId.notInterested);
    case 'have-all':
      return idOnly(MessageId.haveAll);
    case 'have-none':
      return idOnly(MessageId.haveNone);
    case 'have':
      return withIndex(MessageId.have, m.index);
    case 'suggest':
      return withIndex(MessageId.suggest, m.index);
    case 'allowed-fast':
      return withIndex(MessageId.allowedFast, m.index);
    case 'request':
      return withBlockAddress(MessageId.request, m.index, m.begin, m.length);
    case 'cancel':
      return withBlockAddress(MessageId.cancel, m.index, m.begin, m.length);
    case 'reject':
      return withBlockAddress(MessageId.reject, m.index, m.begin, m.length);
    case 'bitfield': {
      const out = frame(MessageId.bitfield, m.bits.length);
      out.set(m.bits, 5);
      return out;
    }
    case 'piece': {
      const out = new Uint8Array(PIECE_HEADER_BYTES + m.block.length);
      out.set(encodePieceHeader(m.index, m.begin, m.block.length), 0);
      out.set(m.block, PIECE_HEADER_BYTES);
      return out;
    }
    case 'port': {
      if (!Number.isInteger(m.port) || m.port < 0 || m.port > 0xffff) {
        throw new RangeError(`port ${m.port} is not a 16-bit unsigned integer`);
      }
      const out = frame(MessageId.port, 2);
      out[5] = m.port >>> 8;
      out[6] = m.port & 0xff;
      return out;
    }
    case 'extended': {
      if (!Number.isInteger(m.extendedId) || m.extendedId < 0 || m.extendedId > 0xff) {
        throw new RangeError(`extended id ${m.extendedId} is not a byte`);
      }
      if (m.payload.length > MAX_EXTENDED_PAYLOAD_BYTES) {
        throw new RangeError(
          `extended payload of ${m.payload.length} bytes exceeds ${MAX_EXTENDED_PAYLOAD_BYTES}`,
        );
      }
      const out = frame(MessageId.extended, 1 + m.payload.length);
      out[5] = m.extendedId;
      out.set(m.payload, 6);
      return out;
    }
    default:
      return assertNever(m);
  }
}

/**
 * The 13 bytes before a piece message's block: length prefix, id, index, begin. Lets a driver write
 * header and block separately instead of copying the block into one frame.
 */
export function encodePieceHeader(index: number, begin: number, blockLengthBytes: number): Uint8Array {
  checkUint32('index', index);
  checkUint32('begin', begin);
  checkBlockLength(blockLengthBytes);
  const out = new Uint8Array(PIECE_HEADER_BYTES);
  writeUint32(out, 0, 9 + blockLengthBytes);
  out[4] = MessageId.piece;
  writeUint32(out, 5, index);
  writeUint32(out, 9, begin);
  return out;
}

/** Prefix + id, with `payloadBytes` zeroed bytes after them for the caller to fill. */
function frame(id: number, payloadBytes: number): Uint8Array {
  const out = new Uint8Array(5 + payloadBytes);
  writeUint32(out, 0, 1 + payloadBytes);
  out[4] = id;
  return out;
}

function idOnly(id: number): Uint8Array {
  return frame(id, 0);
}

function withIndex(id: number, index: number): Uint8Array {
  checkUint32('index', index);
  const out = frame(id, 4);
  writeUint32(out, 5, index);
  return out;
}

function withBlockAddress(id: number, index: number, begin: number, lengthBytes: number): Uint8Array {
  checkUint32('index', index);
  checkUint32('begin', begin);
  checkBlockLength(lengthBytes);
  const out = frame(id, 12);
  writeUint32(out, 5, index);
  writeUint32(out, 9, begin);
  writeUint32(out, 13, lengthBytes);
  return out;
}

function checkLength(name: string, bytes: Uint8Array, expectedBytes: number): void {
  if (bytes.length !== expectedBytes) {
    throw new RangeError(`handshake ${name} must be ${expectedBytes} bytes, got ${bytes.length}`);
  }
}

function checkUint32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new RangeError(`${name} ${value} is not a 32-bit unsigned integer`);
  }
}

// We never send a block our own decoder (or any common client) would reject.
function checkBlockLength(lengthBytes: number): void {
  if (!Number.isInteger(lengthBytes) || lengthBytes < 1 || lengthBytes > BLOCK_LENGTH_BYTES) {
    throw new RangeError(`block length ${lengthBytes} outside 1..${BLOCK_LENGTH_BYTES}`);
  }
}

function writeUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

function readUint32(bytes: Uint8Array, offset: number): number {
  // Multiply rather than shift the top byte: `<< 24` would go negative.
  return (
    (bytes[offset] as number) * 0x1000000 +
    (((bytes[offset + 1] as number) << 16) |
      ((bytes[offset + 2] as number) << 8) |
      (bytes[offset + 3] as number))
  );
}

function assertNever(value: never): never {
  throw new TypeError(`unexpected message ${JSON.stringify(value)}`);
}

// ---------------------------------------------------------------------------------------------
// Decoding

const PHASE_HANDSHAKE = 0;
const PHASE_PREFIX = 1;
const PHASE_ID = 2;
const PHASE_BODY = 3;
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
    const endOffset = bytes.length;
    let offset = 0;
    while (offset < endOffset) {
      if (this.#phase === PHASE_PREFIX) {
        let lengthBytes: number;
        if (this.#prefixFilledBytes === 0 && endOffset - offset >= PREFIX_BYTES) {
          lengthBytes = readUint32(bytes, offset);
          offset += PREFIX_BYTES;
        } else {
          while (this.#prefixFilledBytes < PREFIX_BYTES && offset < endOffset) {
            this.#prefix[this.#prefixFilledBytes++] = bytes[offset++] as number;
          }
          if (this.#prefixFilledBytes < PREFIX_BYTES) break;
          lengthBytes = readUint32(this.#prefix, 0);
          this.#prefixFilledBytes = 0;
        }
        if (lengthBytes === 0) {
          events.push(KEEP_ALIVE);
          continue;
        }
        if (lengthBytes > this.#maxLengthBytes) {
          return this.#fail(
            events,
            wireError('frame-too-large', `length prefix ${lengthBytes} exceeds any message's limit`),
          );
        }
        this.#frameLengthBytes = lengthBytes;
        this.#phase = PHASE_ID;
      } else if (this.#phase === PHASE_ID) {
        const id = bytes[offset++] as number;
        const headerError = this.#checkHeader(id, this.#frameLengthBytes);
        if (headerError !== null) return this.#fail(events, headerError);
        this.#messageId = id;
        if (this.#frameLengthBytes === 1) {
          const bodyError = this.#decodeBody(id, EMPTY, 0, 0, events);
          if (bodyError !== null) return this.#fail(events, bodyError);
          this.#phase = PHASE_PREFIX;
        } else {
          this.#phase = PHASE_BODY;
        }
      } else if (this.#phase === PHASE_BODY) {
        const bodyBytes = this.#frameLengthBytes - 1;
        let source: Uint8Array;
        let start: number;
        if (this.#body === null) {
          const availableBytes = endOffset - offset;
          if (availableBytes < bodyBytes) {
            this.#body = new Uint8Array(bodyBytes);
            this.#body.set(bytes.subarray(offset), 0);
            this.#bodyFilledBytes = availableBytes;
            offset = endOffset;
            break;
          }
          source = bytes;
          start = offset;
          offset += bodyBytes;
        } else {
          const takeBytes = Math.min(bodyBytes - this.#bodyFilledBytes, endOffset - offset);
          this.#body.set(bytes.subarray(offset, offset + takeBytes), this.#bodyFilledBytes);
          this.#bodyFilledBytes += takeBytes;
          offset += takeBytes;
          if (this.#bodyFilledBytes < bodyBytes) break;
          source = this.#body;
          start = 0;
          this.#body = null;
          this.#bodyFilledBytes = 0;
        }
        const bodyError = this.#decodeBody(this.#messageId, source, start, bodyBytes, events);
        if (bodyError !== null) return this.#fail(events, bodyError);
        this.#phase = PHASE_PREFIX;
      } else {
        const handshake = this.#handshake as Uint8Array;
        const filledBytes = this.#handshakeFilledBytes;
        const takeBytes = Math.min(HANDSHAKE_LENGTH_BYTES - filledBytes, endOffset - offset);
        handshake.set(bytes.subarray(offset, offset + takeBytes), filledBytes);
        offset += takeBytes;
        this.#handshakeFilledBytes = filledBytes + takeBytes;
        // Check the pstrlen and protocol name as they arrive, so a non-BitTorrent peer fails fast.
        const checkEnd = Math.min(this.#handshakeFilledBytes, 1 + PROTOCOL_BYTES.length);
        for (let i = filledBytes; i < checkEnd; i++) {
          if (i === 0) {
            if (handshake[0] !== PROTOCOL_BYTES.length) {
              return this.#fail(
                events,
                wireError('not-bittorrent', `first byte is ${handshake[0]}, not ${PROTOCOL_BYTES.length}`),
              );
            }
          } else if (handshake[i] !== PROTOCOL_BYTES[i - 1]) {
            return this.#fail(events, wireError('bad-handshake', `protocol name is not '${PROTOCOL_NAME}'`));
          }
        }
        if (this.#handshakeFilledBytes < HANDSHAKE_LENGTH_BYTES) break;
        events.push({
          type: 'handshake',
          reserved: handshake.subarray(20, 28),
          infoHash: handshake.subarray(28, 48),
          peerId: handshake.subarray(48, 68),
        });
        this.#handshake = null;
        this.#handshakeFilledBytes = 0;
        this.#phase = PHASE_PREFIX;
      }
    }
    return { ok: true, events };
  }

  #fail(events: DecodedEvent[], error: WireError): DecodeResult {
    this.#error = error;
    this.#handshake = null;
    this.#body = null;
    return { ok: false, events, error };
  }

  /** Everything knowable from the length prefix and id, checked before any body byte is buffered. */
  #checkHeader(id: number, lengthBytes: number): WireError | null {
    if (id === MessageId.bitfield) {
      const expectedBytes = 1 + this.#bitfieldBytes;
      return lengthBytes === expectedBytes
        ? null
        : wireError(
            'bad-bitfield-length',
            `bitfield length prefix ${lengthBytes}, expected ${expectedBytes}`,
          );
    }
    if (id === MessageId.extended) {
      if (lengthBytes < 2) return wireError('bad-message-length', 'extended message without an extended id');
      return lengthBytes - 2 > MAX_EXTENDED_PAYLOAD_BYTES
        ? wireError('frame-too-large', `extended payload of ${lengthBytes - 2} bytes`)
        : null;
    }
    if (lengthBytes + PREFIX_BYTES > MAX_FRAME_BYTES) {
      return wireError(
        'frame-too-large',
        `frame of ${lengthBytes + PREFIX_BYTES} bytes for message id ${id}`,
      );
    }
    const expectedBytes = fixedLengthBytes(id);
    if (expectedBytes === undefined) return wireError('unknown-message', `unknown message id ${id}`);
    if (expectedBytes === -1) {
      // piece: index + begin, then a block whose length is checked with the body.
      return lengthBytes < 9 ? wireError('bad-message-length', `piece length prefix ${lengthBytes}`) : null;
    }
    return lengthBytes === expectedBytes
      ? null
      : wireError(
          'bad-message-length',
          `message id ${id} has length ${lengthBytes}, expected ${expectedBytes}`,
        );
  }

  /** Decodes a complete body (`bodyBytes` bytes from `start`, after the id) into `events`. */
  #decodeBody(
    id: number,
    source: Uint8Array,
    start: number,
    bodyBytes: number,
    events: DecodedEvent[],
  ): WireError | null {
    switch (id) {
      case MessageId.choke:
        events.push(CHOKE);
        return null;
      case MessageId.unchoke:
        events.push(UNCHOKE);
        return null;
      case MessageId.interested:
        events.push(INTERESTED);
        return null;
      case MessageId.notInterested:
        events.push(NOT_INTERESTED);
        return null;
      case MessageId.haveAll:
        events.push(HAVE_ALL);
        return null;
      case MessageId.haveNone:
        events.push(HAVE_NONE);
        return null;
      case MessageId.have:
      case MessageId.suggest:
      case MessageId.allowedFast: {
        const index = readUint32(source, start);
        const error = this.#checkIndex(index);
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
        const error = this.#checkBlock(index, begin, length);
        if (error !== null) return error;
        const type = id === MessageId.request ? 'request' : id === MessageId.cancel ? 'cancel' : 'reject';
        events.push({ type, index, begin, length });
        return null;
      }
      case MessageId.piece: {
        const index = readUint32(source, start);
        const begin = readUint32(source, start + 4);
        const error = this.#checkBlock(index, begin, bodyBytes - 8);
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
        // Unreachable: #checkHeader already refused unknown ids.
        return wireError('unknown-message', `unknown message id ${id}`);
    }
  }

  #checkIndex(index: number): WireError | null {
    return index < this.#geometry.pieceCount
      ? null
      : wireError('index-out-of-range', `piece index ${index} not below ${this.#geometry.pieceCount}`);
  }

  #checkBlock(index: number, begin: number, lengthBytes: number): WireError | null {
    const indexError = this.#checkIndex(index);
    if (indexError !== null) return indexError;
    if (lengthBytes > BLOCK_LENGTH_BYTES) {
      return wireError('block-too-large', `block of ${lengthBytes} bytes exceeds ${BLOCK_LENGTH_BYTES}`);
    }
    const chunkBytes = chunkLength(this.#geometry, index);
    if (lengthBytes === 0 || begin + lengthBytes > chunkBytes) {
      return wireError(
        'block-out-of-range',
        `block ${begin}+${lengthBytes} outside chunk ${index} of ${chunkBytes} bytes`,
      );
    }
    return null;
  }
}

/** Body length (id included) each id requires; -1 for piece (variable); undefined for unknown ids. */
function fixedLengthBytes(id: number): number | undefined {
  switch (id) {
    case MessageId.choke:
    case MessageId.unchoke:
    case MessageId.interested:
    case MessageId.notInterested:
    case MessageId.haveAll:
    case MessageId.haveNone:
      return 1;
    case MessageId.have:
    case MessageId.suggest:
    case MessageId.allowedFast:
      return 5;
    case MessageId.request:
    case MessageId.cancel:
    case MessageId.reject:
      return 13;
    case MessageId.port:
      return 3;
    case MessageId.piece:
      return -1;
    default:
      return undefined;
  }
}
