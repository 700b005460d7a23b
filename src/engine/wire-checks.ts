/**
 * The peer wire decoder's checks on what a remote sends (src/engine/wire-decoder.ts): a frame's
 * length prefix and id before any body byte is buffered, piece indexes and block addresses, and the
 * handshake's protocol name as it arrives. Each returns the `WireError` to close the connection
 * with, or null.
 */
import { chunkLength, type Geometry } from './chunking.ts';
import { type WireError, wireError } from './errors.ts';
import {
  BLOCK_LENGTH_BYTES,
  MAX_EXTENDED_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  MessageId,
  LENGTH_PREFIX_BYTES as PREFIX_BYTES,
  PROTOCOL_BYTES,
  PROTOCOL_NAME,
} from './messages.ts';

/** Everything knowable from the length prefix and id, checked before any body byte is buffered. */
export function checkHeader(id: number, lengthBytes: number, bitfieldBytes: number): WireError | null {
  if (id === MessageId.bitfield) {
    const expectedBytes = 1 + bitfieldBytes;
    return lengthBytes === expectedBytes
      ? null
      : wireError('bad-bitfield-length', `bitfield length prefix ${lengthBytes}, expected ${expectedBytes}`);
  }
  if (id === MessageId.extended) {
    if (lengthBytes < 2) return wireError('bad-message-length', 'extended message without an extended id');
    return lengthBytes - 2 > MAX_EXTENDED_PAYLOAD_BYTES
      ? wireError('frame-too-large', `extended payload of ${lengthBytes - 2} bytes`)
      : null;
  }
  if (lengthBytes + PREFIX_BYTES > MAX_FRAME_BYTES) {
    return wireError('frame-too-large', `frame of ${lengthBytes + PREFIX_BYTES} bytes for message id ${id}`);
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

/** A piece index the torrent has. */
export function checkIndex(geometry: Geometry, index: number): WireError | null {
  return index < geometry.pieceCount
    ? null
    : wireError('index-out-of-range', `piece index ${index} not below ${geometry.pieceCount}`);
}

/** A block address inside its chunk, of at most one block's length. */
export function checkBlock(
  geometry: Geometry,
  index: number,
  begin: number,
  lengthBytes: number,
): WireError | null {
  const indexError = checkIndex(geometry, index);
  if (indexError !== null) return indexError;
  if (lengthBytes > BLOCK_LENGTH_BYTES) {
    return wireError('block-too-large', `block of ${lengthBytes} bytes exceeds ${BLOCK_LENGTH_BYTES}`);
  }
  const chunkBytes = chunkLength(geometry, index);
  if (lengthBytes === 0 || begin + lengthBytes > chunkBytes) {
    return wireError(
      'block-out-of-range',
      `block ${begin}+${lengthBytes} outside chunk ${index} of ${chunkBytes} bytes`,
    );
  }
  return null;
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

/**
 * Checks the pstrlen and protocol name as they arrive (handshake bytes `from` to `to`), so a
 * non-BitTorrent peer fails fast.
 */
export function checkProtocolName(handshake: Uint8Array, from: number, to: number): WireError | null {
  const checkEnd = Math.min(to, 1 + PROTOCOL_BYTES.length);
  for (let i = from; i < checkEnd; i++) {
    if (i === 0) {
      if (handshake[0] !== PROTOCOL_BYTES.length) {
        return wireError('not-bittorrent', `first byte is ${handshake[0]}, not ${PROTOCOL_BYTES.length}`);
      }
    } else if (handshake[i] !== PROTOCOL_BYTES[i - 1]) {
      return wireError('bad-handshake', `protocol name is not '${PROTOCOL_NAME}'`);
    }
  }
  return null;
}
