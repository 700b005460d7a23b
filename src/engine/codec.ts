/**
 * Bytes <-> peer wire messages (BEP 3, BEP 5 port, BEP 6, BEP 10 envelope). This file encodes;
 * `WireDecoder` (wire-decoder.ts) decodes, and is re-exported here.
 *
 * Encoding throws `RangeError` on values we should never produce (our bug). Decoding never throws on
 * any input: a remote's bad bytes become a `WireError`, after which the decoder stays poisoned.
 *
 * Ownership: `block`, `bits`, `payload` and the handshake fields of decoded events may be views into
 * the `Uint8Array` passed to `push` (or into a buffer the decoder allocated for that one frame and
 * then let go). Copy them before mutating or reusing the input buffer.
 */
import { writeUint32 } from './bytes.ts';
import {
  BLOCK_ADDRESS_MESSAGE_IDS,
  BLOCK_LENGTH_BYTES,
  HANDSHAKE_LENGTH_BYTES,
  ID_ONLY_MESSAGE_IDS,
  INDEX_MESSAGE_IDS,
  LENGTH_PREFIX_BYTES,
  MAX_EXTENDED_PAYLOAD_BYTES,
  type Message,
  MessageId,
  PROTOCOL_BYTES,
} from './messages.ts';

export { MAX_EXTENDED_PAYLOAD_BYTES, MAX_FRAME_BYTES } from './messages.ts';
export { DECODER_ERROR_CODES, type DecodedEvent, type DecodeResult, WireDecoder } from './wire-decoder.ts';

const PIECE_HEADER_BYTES = 13;
const UINT32_MAX = 0xffffffff;

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
      return new Uint8Array(LENGTH_PREFIX_BYTES);
    case 'choke':
    case 'unchoke':
    case 'interested':
    case 'not-interested':
    case 'have-all':
    case 'have-none':
      return idOnly(ID_ONLY_MESSAGE_IDS[m.type]);
    case 'have':
    case 'suggest':
    case 'allowed-fast':
      return withIndex(INDEX_MESSAGE_IDS[m.type], m.index);
    case 'request':
    case 'cancel':
    case 'reject':
      return withBlockAddress(BLOCK_ADDRESS_MESSAGE_IDS[m.type], m.index, m.begin, m.length);
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

function assertNever(value: never): never {
  throw new TypeError(`unexpected message ${JSON.stringify(value)}`);
}
