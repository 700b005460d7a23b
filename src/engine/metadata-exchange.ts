/**
 * Fetching a torrent's info dictionary from one peer (BEP 9 over BEP 10), as a pure state machine:
 * bytes in, bytes to send and at most one outcome out. The transport (`metadata-fetch.ts`) owns the
 * socket, the timeouts and the choice of peers.
 *
 * Before the metadata arrives we know no piece count, so the peer wire decoder cannot check the
 * remote's bitfield: this exchange frames messages itself, keeps extended messages and skips every
 * other one, each frame bounded before its body is buffered. The remote is hostile: every size,
 * piece index and count it sends is checked, and the assembled bytes count only if their SHA-1 is
 * the info hash we asked for.
 */

import { decodeBencode } from './bencode.ts';
import { readUint32 } from './bytes.ts';
import { MAXIMUM_CHUNK_COUNT } from './chunking.ts';
import { encodeHandshake, encodeMessage } from './codec.ts';
import {
  EXTENSION_HANDSHAKE_ID,
  encodeExtensionHandshake,
  encodeMetadataMessage,
  MAX_METADATA_BYTES,
  METADATA_PIECE_BYTES,
  OUR_UT_METADATA_ID,
  parseExtensionHandshake,
  parseMetadataMessage,
  UT_METADATA,
} from './extension.ts';
import { bytesEqual, type Sha1 } from './hash.ts';
import {
  HANDSHAKE_LENGTH_BYTES,
  LENGTH_PREFIX_BYTES,
  MAX_EXTENDED_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  MessageId,
  PROTOCOL_BYTES,
  RESERVED_EXTENSION_PROTOCOL,
} from './messages.ts';

/** Metadata pieces asked for at a time from one peer. */
export const METADATA_REQUESTS_IN_FLIGHT = 8;
/** Largest frame we read while fetching: a bitfield of the most pieces we allow, or an extended message. */
export const MAX_METADATA_FRAME_BYTES = Math.max(
  MAX_FRAME_BYTES - LENGTH_PREFIX_BYTES,
  1 + Math.ceil(MAXIMUM_CHUNK_COUNT / 8),
  2 + MAX_EXTENDED_PAYLOAD_BYTES,
);
/** Frames other than extended ones we skip before deciding the peer only wastes our time. */
export const MAX_SKIPPED_FRAMES = 4096;

export type MetadataExchangeErrorCode =
  | 'not-bittorrent'
  | 'info-hash-mismatch'
  | 'no-extension-protocol'
  | 'no-metadata-support'
  | 'bad-metadata-size'
  | 'metadata-too-large'
  | 'frame-too-large'
  | 'bad-extension-message'
  | 'metadata-rejected'
  | 'unsolicited-metadata'
  | 'too-many-frames'
  | 'metadata-hash-mismatch';

export interface MetadataExchangeError {
  readonly code: MetadataExchangeErrorCode;
  readonly message: string;
}

export type MetadataStep =
  /** Bytes to send now (maybe none); the exchange goes on. */
  | { readonly kind: 'continue'; readonly send: readonly Uint8Array[] }
  /** The verified info dictionary: its SHA-1 is the info hash. */
  | { readonly kind: 'done'; readonly info: Uint8Array }
  /** The peer misbehaved or cannot help: close its connection. */
  | { readonly kind: 'failed'; readonly error: MetadataExchangeError };

const PHASE_HANDSHAKE = 0;
const PHASE_FRAMES = 1;
const PHASE_OVER = 2;

const fail = (code: MetadataExchangeErrorCode, message: string): MetadataStep => ({
  kind: 'failed',
  error: { code, message },
});

function ourReserved(): Uint8Array {
  const reserved = new Uint8Array(8);
  reserved[RESERVED_EXTENSION_PROTOCOL.byteIndex] = RESERVED_EXTENSION_PROTOCOL.mask;
  return reserved;
}

/** One peer's side of a metadata fetch. Call `opening()` once, then `receive()` with every chunk of bytes. */
export class MetadataExchange {
  #phase: typeof PHASE_HANDSHAKE | typeof PHASE_FRAMES | typeof PHASE_OVER = PHASE_HANDSHAKE;
  /** Unframed input (the first `#pendingBytes`): at most one unfinished frame after each call. */
  #pending: Uint8Array = new Uint8Array(0);
  #pendingBytes = 0;
  #skippedFrames = 0;
  /** The remote's id for ut_metadata messages we send; known after its extension handshake. */
  #theirMetadataId: number | undefined;
  #metadata: Uint8Array | undefined;
  #received: boolean[] = [];
  #nextPiece = 0;
  #inFlight = 0;
  #receivedCount = 0;

  constructor(
    private readonly infoHash: Uint8Array,
    private readonly peerId: Uint8Array,
    private readonly sha1: Sha1,
  ) {}

  /** Our BitTorrent handshake (extension bit set) and extension handshake, to send on connect. */
  opening(): Uint8Array[] {
    const extensionHandshake = encodeExtensionHandshake({
      messages: new Map([[UT_METADATA, OUR_UT_METADATA_ID]]),
      client: 'swarm 0.1',
    });
    return [
      encodeHandshake({ reserved: ourReserved(), infoHash: this.infoHash, peerId: this.peerId }),
      encodeMessage({ type: 'extended', extendedId: EXTENSION_HANDSHAKE_ID, payload: extensionHandshake }),
    ];
  }

  /** The metadata size the peer announced, once known. */
  get metadataBytes(): number | undefined {
    return this.#metadata?.length;
  }

  /** Feeds bytes from the socket. After a `done` or `failed` step, further input is ignored. */
  receive(bytes: Uint8Array): MetadataStep {
    if (this.#phase === PHASE_OVER) return { kind: 'continue', send: [] };
    this.#append(bytes);
    const buffer = this.#pending.subarray(0, this.#pendingBytes);
    const send: Uint8Array[] = [];
    let offset = 0;
    for (;;) {
      const step =
        this.#phase === PHASE_HANDSHAKE ? this.#handshake(buffer, offset) : this.#frame(buffer, offset, send);
      if (typeof step === 'number') {
        if (step === offset) break; // needs more input
        offset = step;
        continue;
      }
      this.#phase = PHASE_OVER;
      this.#pending = new Uint8Array(0);
      this.#pendingBytes = 0;
      return step;
    }
    // Only the unfinished frame stays; it moves only when whole frames went before it.
    if (offset > 0) this.#pending.copyWithin(0, offset, this.#pendingBytes);
    this.#pendingBytes -= offset;
    return { kind: 'continue', send };
  }

  /** Appends input, growing the buffer by doubling so a trickle of bytes costs linear time. */
  #append(bytes: Uint8Array): void {
    const needed = this.#pendingBytes + bytes.length;
    if (needed > this.#pending.length) {
      const grown = new Uint8Array(Math.max(needed, 2 * this.#pending.length, 1024));
      grown.set(this.#pending.subarray(0, this.#pendingBytes));
      this.#pending = grown;
    }
    this.#pending.set(bytes, this.#pendingBytes);
    this.#pendingBytes = needed;
  }

  /** The remote's 68-byte handshake at `offset`: the offset after it, the same offset to wait, or a failure. */
  #handshake(bytes: Uint8Array, offset: number): number | MetadataStep {
    const available = bytes.length - offset;
    for (let i = 0; i < Math.min(available, 1 + PROTOCOL_BYTES.length); i++) {
      const expected = i === 0 ? PROTOCOL_BYTES.length : PROTOCOL_BYTES[i - 1];
      if (bytes[offset + i] !== expected) return fail('not-bittorrent', 'the peer does not speak BitTorrent');
    }
    if (available < HANDSHAKE_LENGTH_BYTES) return offset;
    const reserved = bytes.subarray(offset + 20, offset + 28);
    if (!bytesEqual(bytes.subarray(offset + 28, offset + 48), this.infoHash))
      return fail('info-hash-mismatch', 'the peer answered for another torrent');
    if (
      ((reserved[RESERVED_EXTENSION_PROTOCOL.byteIndex] as number) & RESERVED_EXTENSION_PROTOCOL.mask) ===
      0
    )
      return fail('no-extension-protocol', 'the peer does not speak the extension protocol (BEP 10)');
    this.#phase = PHASE_FRAMES;
    return offset + HANDSHAKE_LENGTH_BYTES;
  }

  /** One frame at `offset`: the offset after it, the same offset to wait, or the outcome. */
  #frame(bytes: Uint8Array, offset: number, send: Uint8Array[]): number | MetadataStep {
    if (bytes.length - offset < LENGTH_PREFIX_BYTES) return offset;
    const length = readUint32(bytes, offset);
    if (length > MAX_METADATA_FRAME_BYTES)
      return fail(
        'frame-too-large',
        `a frame of ${length} bytes is over the limit of ${MAX_METADATA_FRAME_BYTES}`,
      );
    const end = offset + LENGTH_PREFIX_BYTES + length;
    if (bytes.length < end) return offset;
    if (length === 0) return end; // keep-alive
    const id = bytes[offset + LENGTH_PREFIX_BYTES] as number;
    if (id !== MessageId.extended || length < 2) {
      if (++this.#skippedFrames > MAX_SKIPPED_FRAMES)
        return fail('too-many-frames', `more than ${MAX_SKIPPED_FRAMES} messages without the metadata`);
      return end;
    }
    const extendedId = bytes[offset + LENGTH_PREFIX_BYTES + 1] as number;
    const payload = bytes.subarray(offset + LENGTH_PREFIX_BYTES + 2, end);
    const outcome =
      extendedId === EXTENSION_HANDSHAKE_ID
        ? this.#onExtensionHandshake(payload)
        : extendedId === OUR_UT_METADATA_ID
          ? this.#onMetadata(payload)
          : undefined;
    if (outcome !== undefined) return outcome;
    this.#requestMore(send);
    return end;
  }

  #onExtensionHandshake(payload: Uint8Array): MetadataStep | undefined {
    const parsed = parseExtensionHandshake(payload);
    if (!parsed.ok) return fail('bad-extension-message', parsed.error.message);
    // A second handshake may only confirm what we already use.
    if (this.#metadata !== undefined) return undefined;
    const theirId = parsed.value.messages.get(UT_METADATA);
    if (theirId === undefined)
      return fail('no-metadata-support', 'the peer does not serve metadata (no ut_metadata)');
    const size = announcedSize(payload);
    if (size === undefined || size === 0)
      return fail('bad-metadata-size', 'the peer announced no valid metadata_size');
    if (size > MAX_METADATA_BYTES)
      return fail(
        'metadata-too-large',
        `metadata_size ${size} is over the limit of ${MAX_METADATA_BYTES} bytes`,
      );
    this.#theirMetadataId = theirId;
    this.#metadata = new Uint8Array(size);
    this.#received = new Array<boolean>(Math.ceil(size / METADATA_PIECE_BYTES)).fill(false);
    return undefined;
  }

  #onMetadata(payload: Uint8Array): MetadataStep | undefined {
    const metadata = this.#metadata;
    if (metadata === undefined)
      return fail('unsolicited-metadata', 'metadata before the extension handshake');
    const parsed = parseMetadataMessage(payload);
    if (!parsed.ok) return fail('bad-extension-message', parsed.error.message);
    const message = parsed.value;
    if (message.type === 'request') return undefined; // we serve nothing here
    if (message.type === 'reject')
      return fail('metadata-rejected', `the peer refused metadata piece ${message.piece}`);
    if (message.totalSize !== metadata.length)
      return fail(
        'bad-metadata-size',
        `total_size ${message.totalSize} differs from metadata_size ${metadata.length}`,
      );
    if (message.piece >= this.#nextPiece || this.#received[message.piece] !== false)
      return fail('unsolicited-metadata', `metadata piece ${message.piece} was not asked for or came twice`);
    metadata.set(message.data, message.piece * METADATA_PIECE_BYTES);
    this.#received[message.piece] = true;
    this.#receivedCount++;
    this.#inFlight--;
    if (this.#receivedCount < this.#received.length) return undefined;
    if (!bytesEqual(this.sha1(metadata), this.infoHash))
      return fail('metadata-hash-mismatch', 'the metadata the peer sent does not hash to the info hash');
    return { kind: 'done', info: metadata };
  }

  /** Keeps up to `METADATA_REQUESTS_IN_FLIGHT` piece requests outstanding. */
  #requestMore(send: Uint8Array[]): void {
    const theirId = this.#theirMetadataId;
    if (theirId === undefined) return;
    while (this.#inFlight < METADATA_REQUESTS_IN_FLIGHT && this.#nextPiece < this.#received.length) {
      const payload = encodeMetadataMessage({ type: 'request', piece: this.#nextPiece });
      send.push(encodeMessage({ type: 'extended', extendedId: theirId, payload }));
      this.#nextPiece++;
      this.#inFlight++;
    }
  }
}

/**
 * The raw `metadata_size` of an extension handshake (already known to be a dictionary), so a size
 * over our limit is told apart from a missing one.
 */
function announcedSize(payload: Uint8Array): number | undefined {
  const decoded = decodeBencode(payload, { maxDepth: 8, maxItems: 1024 });
  if (!decoded.ok || !(decoded.value instanceof Map)) return undefined;
  const size = decoded.value.get('metadata_size');
  return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}
