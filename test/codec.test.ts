import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { concatBytes } from '../src/engine/bytes.ts';
import { chunkLength, type Geometry } from '../src/engine/chunking.ts';
import {
  DECODER_ERROR_CODES,
  type DecodedEvent,
  type DecodeResult,
  encodeHandshake,
  encodeMessage,
  encodePieceHeader,
  MAX_EXTENDED_PAYLOAD_BYTES,
  MAX_FRAME_BYTES,
  WireDecoder,
} from '../src/engine/codec.ts';
import type { WireError, WireErrorCode } from '../src/engine/errors.ts';
import type { Message } from '../src/engine/messages.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

/** '00 00 00 05 04' -> bytes; whitespace is ignored so vectors can be laid out as on the wire. */
function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, '');
  if (digits.length % 2 !== 0 || /[^0-9a-f]/i.test(digits)) throw new Error(`bad hex ${text}`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(digits.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** Events with byte fields as hex, so deep equality ignores views vs copies. */
function normalize(event: DecodedEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event))
    out[key] = value instanceof Uint8Array ? toHex(value) : value;
  return out;
}

/** Deterministic pseudo-random bytes: cheaper than asking fast-check for 16 KiB of arbitraries. */
function pattern(lengthBytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(lengthBytes);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < lengthBytes; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    // slice, not subarray: a socket hands us fresh buffers, and views must not alias across chunks.
    chunks.push(bytes.slice(previous, point));
    previous = point;
  }
  return chunks;
}

interface Outcome {
  events: Record<string, unknown>[];
  error: WireError | undefined;
}

/** Feeds `chunks` in order, checking the poisoning contract along the way. */
function feed(decoder: WireDecoder, chunks: readonly Uint8Array[]): Outcome {
  const events: Record<string, unknown>[] = [];
  let error: WireError | undefined;
  for (const chunk of chunks) {
    const result: DecodeResult = decoder.push(chunk);
    if (error !== undefined) {
      assert.is(result.ok, false, 'a poisoned decoder keeps failing');
      assert.equal(result.events, [], 'a poisoned decoder emits nothing');
      if (!result.ok) assert.is(result.error, error, 'a poisoned decoder repeats its error');
      continue;
    }
    for (const event of result.events) events.push(normalize(event));
    if (!result.ok) error = result.error;
  }
  return { events, error };
}

function decodeChunks(geometry: Geometry, chunks: readonly Uint8Array[], expectHandshake = false): Outcome {
  return feed(new WireDecoder(geometry, { expectHandshake }), chunks);
}

function expectError(outcome: Outcome, code: WireErrorCode): void {
  assert.ok(outcome.error !== undefined, `expected error ${code}, got none`);
  assert.is(outcome.error?.code, code);
}

/** 44 chunks of 32 KiB, the last one 1000 bytes: 6-byte bitfield with 4 spare bits. */
const G: Geometry = { pieceCount: 44, pieceLengthBytes: 32768, totalLengthBytes: 43 * 32768 + 1000 };

// ---------------------------------------------------------------------------------------------
// Byte vectors, written out by hand from BEP 3 / BEP 6 / BEP 10

const VECTORS: readonly { message: Message; bytes: string }[] = [
  { message: { type: 'keep-alive' }, bytes: '00 00 00 00' },
  { message: { type: 'choke' }, bytes: '00 00 00 01 00' },
  { message: { type: 'unchoke' }, bytes: '00 00 00 01 01' },
  { message: { type: 'interested' }, bytes: '00 00 00 01 02' },
  { message: { type: 'not-interested' }, bytes: '00 00 00 01 03' },
  { message: { type: 'have', index: 42 }, bytes: '00 00 00 05 04 00 00 00 2a' },
  {
    message: { type: 'bitfield', bits: hex('ff 00 a5 5a 81 f0') },
    bytes: '00 00 00 07 05 ff 00 a5 5a 81 f0',
  },
  {
    message: { type: 'request', index: 1, begin: 16384, length: 16384 },
    bytes: '00 00 00 0d 06  00 00 00 01  00 00 40 00  00 00 40 00',
  },
  {
    message: { type: 'piece', index: 2, begin: 16384, block: hex('de ad be ef') },
    bytes: '00 00 00 0d 07  00 00 00 02  00 00 40 00  de ad be ef',
  },
  {
    message: { type: 'cancel', index: 1, begin: 16384, length: 16384 },
    bytes: '00 00 00 0d 08  00 00 00 01  00 00 40 00  00 00 40 00',
  },
  { message: { type: 'port', port: 6881 }, bytes: '00 00 00 03 09 1a e1' },
  { message: { type: 'suggest', index: 7 }, bytes: '00 00 00 05 0d 00 00 00 07' },
  { message: { type: 'have-all' }, bytes: '00 00 00 01 0e' },
  { message: { type: 'have-none' }, bytes: '00 00 00 01 0f' },
  {
    // The short last chunk: 1000 bytes.
    message: { type: 'reject', index: 43, begin: 0, length: 1000 },
    bytes: '00 00 00 0d 10  00 00 00 2b  00 00 00 00  00 00 03 e8',
  },
  { message: { type: 'allowed-fast', index: 3 }, bytes: '00 00 00 05 11 00 00 00 03' },
  {
    // BEP 10 handshake (extended id 0) carrying the bencoded empty dict "de".
    message: { type: 'extended', extendedId: 0, payload: ascii('de') },
    bytes: '00 00 00 04 14 00 64 65',
  },
  {
    message: { type: 'extended', extendedId: 3, payload: new Uint8Array(0) },
    bytes: '00 00 00 02 14 03',
  },
];

for (const { message, bytes } of VECTORS) {
  test(`vector: ${message.type} ${bytes}`, () => {
    assert.is(toHex(encodeMessage(message)), toHex(hex(bytes)), 'encode');
    const outcome = decodeChunks(G, [hex(bytes)]);
    assert.is(outcome.error, undefined);
    assert.equal(outcome.events, [normalize(message)], 'decode');
  });
}

const INFO_HASH = hex('12 34 56 78 9a bc de f0 12 34 56 78 9a bc de f0 12 34 56 78');
const PEER_ID = ascii('-SW0001-abcdefghijkl');
// Reserved: extension protocol (reserved[5] |= 0x10) and fast extension (reserved[7] |= 0x04).
const RESERVED = hex('00 00 00 00 00 10 00 04');
const HANDSHAKE_BYTES = hex(`
  13
  42 69 74 54 6f 72 72 65 6e 74 20 70 72 6f 74 6f 63 6f 6c
  00 00 00 00 00 10 00 04
  12 34 56 78 9a bc de f0 12 34 56 78 9a bc de f0 12 34 56 78
  2d 53 57 30 30 30 31 2d 61 62 63 64 65 66 67 68 69 6a 6b 6c
`);

test('vector: handshake with fast and extension protocol bits', () => {
  assert.is(HANDSHAKE_BYTES.length, 68);
  const encoded = encodeHandshake({ reserved: RESERVED, infoHash: INFO_HASH, peerId: PEER_ID });
  assert.is(toHex(encoded), toHex(HANDSHAKE_BYTES));
  const outcome = decodeChunks(G, [HANDSHAKE_BYTES, hex('00 00 00 01 0e')], true);
  assert.is(outcome.error, undefined);
  assert.equal(outcome.events, [
    { type: 'handshake', reserved: toHex(RESERVED), infoHash: toHex(INFO_HASH), peerId: toHex(PEER_ID) },
    { type: 'have-all' },
  ]);
});

test('handshake split byte by byte', () => {
  const chunks = split(
    HANDSHAKE_BYTES,
    Array.from({ length: 67 }, (_, i) => i + 1),
  );
  const decoder = new WireDecoder(G);
  for (let i = 0; i < 67; i++) {
    const result = decoder.push(chunks[i] as Uint8Array);
    assert.ok(result.ok);
    assert.is(result.events.length, 0);
    assert.is(decoder.bufferedBytes, i + 1);
  }
  const last = decoder.push(chunks[67] as Uint8Array);
  assert.ok(last.ok);
  assert.is(last.events[0]?.type, 'handshake');
  assert.is(decoder.bufferedBytes, 0);
});

test('encodePieceHeader + block equals encodeMessage(piece)', () => {
  const block = pattern(16384, 7);
  const header = encodePieceHeader(5, 32768, block.length);
  assert.is(toHex(header), '00 00 40 09 07 00 00 00 05 00 00 80 00');
  const whole = encodeMessage({ type: 'piece', index: 5, begin: 32768, block });
  assert.is(whole.length, MAX_FRAME_BYTES);
  assert.ok(toHex(concatBytes([header, block])) === toHex(whole));
});

test('a whole piece in one push is decoded without copying the block', () => {
  const frame = encodeMessage({ type: 'piece', index: 0, begin: 0, block: pattern(16384, 3) });
  const result = new WireDecoder(G, { expectHandshake: false }).push(frame);
  assert.ok(result.ok);
  const event = result.events[0];
  assert.ok(event?.type === 'piece');
  if (event?.type === 'piece') {
    assert.is(event.block.buffer, frame.buffer);
    assert.is(event.block.byteOffset, frame.byteOffset + 13);
  }
});

test('a piece header pushed alone, then its whole block: the block is a view of the second push', () => {
  const block = pattern(16384, 5);
  const decoder = new WireDecoder(G, { expectHandshake: false });
  assert.equal(decoder.push(encodePieceHeader(3, 16384, block.length)), { ok: true, events: [] });
  assert.is(decoder.bufferedBytes, 13);
  // The block in a larger push, followed by a HAVE.
  const push = concatBytes([new Uint8Array(7), block, encodeMessage({ type: 'have', index: 2 })]).subarray(7);
  const result = decoder.push(push);
  assert.ok(result.ok);
  assert.equal(result.events.map(normalize), [
    normalize({ type: 'piece', index: 3, begin: 16384, block }),
    { type: 'have', index: 2 },
  ]);
  const event = result.events[0];
  if (event?.type === 'piece') {
    assert.is(event.block.buffer, push.buffer);
    assert.is(event.block.byteOffset, push.byteOffset);
  }
  assert.is(decoder.bufferedBytes, 0);
});

test('a piece header pushed alone, then its block split: decoded whole, and bad addresses still refused', () => {
  const block = pattern(16384, 6);
  const decoder = new WireDecoder(G, { expectHandshake: false });
  decoder.push(encodePieceHeader(43, 0, 1000));
  assert.equal(decoder.push(block.subarray(0, 600)), { ok: true, events: [] });
  assert.is(decoder.bufferedBytes, 13 + 600);
  const result = decoder.push(block.subarray(600, 1000));
  assert.equal(result.events.map(normalize), [
    normalize({ type: 'piece', index: 43, begin: 0, block: block.subarray(0, 1000) }),
  ]);
  decoder.release();
  for (const split of [false, true]) {
    const bad = new WireDecoder(G, { expectHandshake: false });
    // Chunk 43 is 1000 bytes long: a 16 KiB block at 0 does not fit.
    bad.push(encodePieceHeader(43, 0, block.length));
    if (split) bad.push(block.subarray(0, 10));
    const outcome = bad.push(split ? block.subarray(10) : block);
    assert.is(outcome.ok, false);
    if (!outcome.ok) assert.is(outcome.error.code, 'block-out-of-range');
  }
});

test('a split piece body is reused only after release, and never while its block is held', () => {
  const decoder = new WireDecoder(G, { expectHandshake: false });
  const pieceOf = (seed: number): Uint8Array =>
    encodeMessage({ type: 'piece', index: 0, begin: 0, block: pattern(16384, seed) });
  const blockOf = (frame: Uint8Array): Uint8Array => {
    decoder.push(frame.subarray(0, 100));
    const event = decoder.push(frame.subarray(100)).events[0];
    assert.ok(event?.type === 'piece');
    return event.type === 'piece' ? event.block : new Uint8Array(0);
  };
  const kept = blockOf(pieceOf(1));
  // Not released: the next split piece gets a buffer of its own.
  const second = blockOf(pieceOf(2));
  assert.ok(toHex(kept) === toHex(pattern(16384, 1)));
  assert.ok(toHex(second) === toHex(pattern(16384, 2)));
  decoder.release();
  // Released: the buffer is reused, and the block decoded into it is whole and right.
  const third = blockOf(pieceOf(3));
  assert.is(third.buffer, second.buffer);
  assert.ok(toHex(third) === toHex(pattern(16384, 3)));
  decoder.release();
});

test('encode rejects values we must never send', () => {
  const bad: Message[] = [
    { type: 'have', index: -1 },
    { type: 'have', index: 2 ** 32 },
    { type: 'suggest', index: 1.5 },
    { type: 'allowed-fast', index: Number.NaN },
    { type: 'request', index: 0, begin: 0, length: 0 },
    { type: 'request', index: 0, begin: 0, length: 16385 },
    { type: 'cancel', index: 0, begin: -1, length: 1 },
    { type: 'reject', index: 0, begin: 2 ** 32, length: 1 },
    { type: 'piece', index: 0, begin: 0, block: new Uint8Array(0) },
    { type: 'piece', index: 0, begin: 0, block: new Uint8Array(16385) },
    { type: 'port', port: 65536 },
    { type: 'port', port: -1 },
    { type: 'extended', extendedId: 256, payload: new Uint8Array(1) },
    { type: 'extended', extendedId: 1, payload: new Uint8Array(MAX_EXTENDED_PAYLOAD_BYTES + 1) },
  ];
  for (const message of bad) {
    assert.throws(() => encodeMessage(message), RangeError, JSON.stringify(message));
  }
  assert.throws(() => encodePieceHeader(0, 0, 0), RangeError);
  const good = { reserved: RESERVED, infoHash: INFO_HASH, peerId: PEER_ID };
  assert.throws(() => encodeHandshake({ ...good, reserved: new Uint8Array(7) }), RangeError);
  assert.throws(() => encodeHandshake({ ...good, infoHash: new Uint8Array(32) }), RangeError);
  assert.throws(() => encodeHandshake({ ...good, peerId: new Uint8Array(19) }), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Limits and errors

test('first byte not 19 fails after one byte (an MSE handshake)', () => {
  const decoder = new WireDecoder(G);
  const result = decoder.push(hex('a7'));
  assert.is(result.ok, false);
  if (!result.ok) assert.is(result.error.code, 'not-bittorrent');
});

test('bad protocol string fails before the handshake is complete', () => {
  const outcome = decodeChunks(G, [concatBytes([hex('13'), ascii('BitTorrent protocoX')])], true);
  expectError(outcome, 'bad-handshake');
  const early = decodeChunks(G, [concatBytes([hex('13'), ascii('Bx')])], true);
  expectError(early, 'bad-handshake');
});

test('oversized frame is rejected from the length prefix alone', () => {
  for (const prefix of ['ff ff ff ff', '00 10 00 00', '00 01 00 03']) {
    const decoder = new WireDecoder(G, { expectHandshake: false });
    const result = decoder.push(hex(prefix));
    assert.is(result.ok, false, prefix);
    if (!result.ok) assert.is(result.error.code, 'frame-too-large');
  }
});

test('frame limits are checked from prefix and id, before the body is buffered', () => {
  // A piece one byte over 16 KiB.
  const piece = new WireDecoder(G, { expectHandshake: false });
  const pieceResult = piece.push(hex('00 00 40 0a 07'));
  assert.is(pieceResult.ok, false);
  if (!pieceResult.ok) assert.is(pieceResult.error.code, 'frame-too-large');
  // Largest allowed extended payload is fine; one more byte is not.
  const okExtended = new WireDecoder(G, { expectHandshake: false });
  assert.ok(okExtended.push(hex('00 01 00 02 14 01')).ok);
  assert.is(okExtended.bufferedBytes, 6);
  const bigExtended = new WireDecoder(G, { expectHandshake: false }).push(hex('00 01 00 03 14'));
  assert.is(bigExtended.ok, false);
  if (!bigExtended.ok) assert.is(bigExtended.error.code, 'frame-too-large');
  expectError(decodeChunks(G, [hex('00 00 00 01 14')]), 'bad-message-length');
  // A huge bitfield is allowed only when the torrent has that many pieces.
  const manyPieces: Geometry = {
    pieceCount: 200_000,
    pieceLengthBytes: 16384,
    totalLengthBytes: 200_000 * 16384,
  };
  const bitsBytes = 25_000;
  const frame = encodeMessage({ type: 'bitfield', bits: pattern(bitsBytes, 9) });
  assert.ok(frame.length > MAX_FRAME_BYTES);
  const outcome = decodeChunks(manyPieces, split(frame, [3, 5, 7000, 20000]));
  assert.is(outcome.error, undefined);
  assert.is(outcome.events.length, 1);
  expectError(decodeChunks(G, [frame.subarray(0, 5)]), 'bad-bitfield-length');
});

test('wrong bitfield length', () => {
  expectError(decodeChunks(G, [hex('00 00 00 06 05 ff ff ff ff f0')]), 'bad-bitfield-length');
  expectError(decodeChunks(G, [hex('00 00 00 08 05 ff ff ff ff f0 00 00')]), 'bad-bitfield-length');
});

test('bitfield spare bits set', () => {
  expectError(decodeChunks(G, [hex('00 00 00 07 05 ff ff ff ff ff f8')]), 'bitfield-spare-bits');
  expectError(decodeChunks(G, [hex('00 00 00 07 05 00 00 00 00 00 01')]), 'bitfield-spare-bits');
  const exact: Geometry = { pieceCount: 16, pieceLengthBytes: 10, totalLengthBytes: 160 };
  assert.is(decodeChunks(exact, [hex('00 00 00 03 05 ff ff')]).error, undefined);
});

test('unknown message id', () => {
  expectError(decodeChunks(G, [hex('00 00 00 01 0a')]), 'unknown-message');
  expectError(decodeChunks(G, [hex('00 00 00 03 ff 00 00')]), 'unknown-message');
});

test('fixed-length messages with the wrong length', () => {
  expectError(decodeChunks(G, [hex('00 00 00 02 00 00')]), 'bad-message-length');
  expectError(decodeChunks(G, [hex('00 00 00 04 04 00 00 00')]), 'bad-message-length');
  expectError(
    decodeChunks(G, [hex('00 00 00 0e 06 00 00 00 00 00 00 00 00 00 00 40 00 00')]),
    'bad-message-length',
  );
  expectError(decodeChunks(G, [hex('00 00 00 02 09 1a')]), 'bad-message-length');
  expectError(decodeChunks(G, [hex('00 00 00 02 0e 00')]), 'bad-message-length');
  expectError(decodeChunks(G, [hex('00 00 00 08 07 00 00 00 00 00 00 00')]), 'bad-message-length');
});

test('index out of range', () => {
  expectError(decodeChunks(G, [hex('00 00 00 05 04 00 00 00 2c')]), 'index-out-of-range');
  expectError(decodeChunks(G, [hex('00 00 00 05 0d ff ff ff ff')]), 'index-out-of-range');
  expectError(decodeChunks(G, [hex('00 00 00 05 11 00 00 00 2c')]), 'index-out-of-range');
  expectError(
    decodeChunks(G, [hex('00 00 00 0d 06 00 00 00 2c 00 00 00 00 00 00 40 00')]),
    'index-out-of-range',
  );
});

test('request over 16 KiB, empty, or outside its chunk', () => {
  const request = (index: number, begin: number, length: number) =>
    concatBytes([hex('00 00 00 0d 06'), u32(index), u32(begin), u32(length)]);
  expectError(decodeChunks(G, [request(0, 0, 16385)]), 'block-too-large');
  expectError(decodeChunks(G, [request(0, 0, 0)]), 'block-out-of-range');
  expectError(decodeChunks(G, [request(0, 32768 - 100, 101)]), 'block-out-of-range');
  expectError(decodeChunks(G, [request(43, 0, 1001)]), 'block-out-of-range');
  expectError(decodeChunks(G, [request(0, 0xffffffff, 1)]), 'block-out-of-range');
  // Transmission-style 12800-byte blocks, and a block ending exactly at the chunk end, are valid.
  assert.is(decodeChunks(G, [request(0, 12800, 12800)]).error, undefined);
  assert.is(decodeChunks(G, [request(0, 32768 - 100, 100)]).error, undefined);
  assert.is(decodeChunks(G, [request(43, 999, 1)]).error, undefined);
  const reject = concatBytes([hex('00 00 00 0d 10'), u32(43), u32(1), u32(1000)]);
  expectError(decodeChunks(G, [reject]), 'block-out-of-range');
});

test('piece crossing the chunk end, or empty', () => {
  const piece = (index: number, begin: number, block: Uint8Array) =>
    concatBytes([u32(9 + block.length), hex('07'), u32(index), u32(begin), block]);
  expectError(decodeChunks(G, [piece(43, 900, new Uint8Array(101))]), 'block-out-of-range');
  expectError(decodeChunks(G, [piece(1, 32768 - 16383, new Uint8Array(16384))]), 'block-out-of-range');
  expectError(decodeChunks(G, [piece(1, 0, new Uint8Array(0))]), 'block-out-of-range');
  expectError(decodeChunks(G, [piece(44, 0, new Uint8Array(1))]), 'index-out-of-range');
  assert.is(decodeChunks(G, [piece(43, 900, new Uint8Array(100))]).error, undefined);
});

test('events before an error in the same push are returned, then the decoder is poisoned', () => {
  const decoder = new WireDecoder(G, { expectHandshake: false });
  const first = decoder.push(
    hex('00 00 00 05 04 00 00 00 01  00 00 00 01 02  00 00 00 01 63  00 00 00 01 01'),
  );
  assert.is(first.ok, false);
  assert.equal(first.events.map(normalize), [{ type: 'have', index: 1 }, { type: 'interested' }]);
  if (first.ok) return;
  assert.is(first.error.code, 'unknown-message');
  for (const more of [hex('00 00 00 01 01'), new Uint8Array(0), HANDSHAKE_BYTES]) {
    const again = decoder.push(more);
    assert.is(again.ok, false);
    assert.equal(again.events, []);
    if (!again.ok) assert.equal(again.error, first.error);
  }
});

test('a 16 KiB piece pushed one byte at a time', () => {
  const block = pattern(16384, 11);
  const frame = encodeMessage({ type: 'piece', index: 43 - 1, begin: 16384, block });
  const decoder = new WireDecoder(G, { expectHandshake: false });
  const events: DecodedEvent[] = [];
  for (let i = 0; i < frame.length; i++) {
    const result = decoder.push(frame.subarray(i, i + 1));
    assert.ok(result.ok);
    events.push(...result.events);
    if (i < frame.length - 1) assert.is(decoder.bufferedBytes, i + 1);
  }
  assert.is(decoder.bufferedBytes, 0);
  assert.equal(events.map(normalize), [{ type: 'piece', index: 42, begin: 16384, block: toHex(block) }]);
});

test('constructor rejects a nonsensical geometry', () => {
  assert.throws(
    () => new WireDecoder({ pieceCount: -1, pieceLengthBytes: 1, totalLengthBytes: 1 }),
    RangeError,
  );
  assert.throws(
    () => new WireDecoder({ pieceCount: 1, pieceLengthBytes: 0, totalLengthBytes: 1 }),
    RangeError,
  );
  assert.throws(
    () => new WireDecoder({ pieceCount: 2 ** 21, pieceLengthBytes: 1, totalLengthBytes: 2 ** 21 }),
    RangeError,
  );
});

function u32(value: number): Uint8Array {
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}

// ---------------------------------------------------------------------------------------------
// Properties

const FC_OPTIONS = { seed: 0x5eed, numRuns: 150 } as const;

const geometryArb: fc.Arbitrary<Geometry> = fc
  .tuple(
    fc.oneof(
      { weight: 9, arbitrary: fc.integer({ min: 1, max: 300 }) },
      { weight: 1, arbitrary: fc.integer({ min: 131_000, max: 140_000 }) },
    ),
    fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 70_000 })),
  )
  .chain(([pieceCount, pieceLengthBytes]) =>
    fc.integer({ min: 1, max: pieceLengthBytes }).map((lastBytes) => ({
      pieceCount,
      pieceLengthBytes,
      totalLengthBytes: (pieceCount - 1) * pieceLengthBytes + lastBytes,
    })),
  );

function messageArb(geometry: Geometry): fc.Arbitrary<Message> {
  const index = fc.integer({ min: 0, max: geometry.pieceCount - 1 });
  const address = index.chain((i) => {
    const chunkBytes = chunkLength(geometry, i);
    return fc
      .integer({ min: 1, max: Math.min(chunkBytes, 16384) })
      .chain((length) =>
        fc.integer({ min: 0, max: chunkBytes - length }).map((begin) => ({ index: i, begin, length })),
      );
  });
  const bitfieldBytes = Math.ceil(geometry.pieceCount / 8);
  const spareBits = bitfieldBytes * 8 - geometry.pieceCount;
  const arbitraries: fc.Arbitrary<Message>[] = [
    fc.constantFrom<Message>(
      { type: 'keep-alive' },
      { type: 'choke' },
      { type: 'unchoke' },
      { type: 'interested' },
      { type: 'not-interested' },
      { type: 'have-all' },
      { type: 'have-none' },
    ),
    index.map((i): Message => ({ type: 'have', index: i })),
    index.map((i): Message => ({ type: 'suggest', index: i })),
    index.map((i): Message => ({ type: 'allowed-fast', index: i })),
    address.map((a): Message => ({ type: 'request', ...a })),
    address.map((a): Message => ({ type: 'cancel', ...a })),
    address.map((a): Message => ({ type: 'reject', ...a })),
    fc.tuple(address, fc.integer()).map(
      ([a, seed]): Message => ({
        type: 'piece',
        index: a.index,
        begin: a.begin,
        block: pattern(a.length, seed),
      }),
    ),
    fc.integer().map((seed): Message => {
      const bits = pattern(bitfieldBytes, seed);
      bits[bitfieldBytes - 1] = (bits[bitfieldBytes - 1] as number) & (0xff << spareBits);
      return { type: 'bitfield', bits };
    }),
    fc.integer({ min: 0, max: 0xffff }).map((port): Message => ({ type: 'port', port })),
    fc
      .tuple(
        fc.integer({ min: 0, max: 255 }),
        fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(pattern(MAX_EXTENDED_PAYLOAD_BYTES, 5))),
      )
      .map(([extendedId, payload]): Message => ({ type: 'extended', extendedId, payload })),
  ];
  return fc.oneof(...arbitraries);
}

const streamArb = geometryArb.chain((geometry) =>
  fc.record({
    geometry: fc.constant(geometry),
    withHandshake: fc.boolean(),
    messages: fc.array(messageArb(geometry), { maxLength: 25 }),
    cuts: fc.oneof(fc.array(fc.nat(), { maxLength: 30 }), fc.constant<number[]>([])),
  }),
);

function encodeStream(messages: readonly Message[], withHandshake: boolean): Uint8Array {
  const frames = messages.map(encodeMessage);
  if (withHandshake) frames.unshift(HANDSHAKE_BYTES);
  return concatBytes(frames);
}

test('property: valid streams split anywhere decode to the same messages', () => {
  fc.assert(
    fc.property(streamArb, ({ geometry, withHandshake, messages, cuts }) => {
      const bytes = encodeStream(messages, withHandshake);
      const decoder = new WireDecoder(geometry, { expectHandshake: withHandshake });
      const outcome = feed(decoder, split(bytes, cuts));
      assert.is(outcome.error, undefined);
      const expected = messages.map(normalize);
      if (withHandshake) {
        expected.unshift({
          type: 'handshake',
          reserved: toHex(RESERVED),
          infoHash: toHex(INFO_HASH),
          peerId: toHex(PEER_ID),
        });
      }
      assert.equal(outcome.events, expected);
      assert.is(decoder.bufferedBytes, 0);
    }),
    FC_OPTIONS,
  );
});

/** Whole vs split decoding must agree, end in a typed error or clean events, and stay bounded. */
function checkHostile(
  geometry: Geometry,
  bytes: Uint8Array,
  cuts: readonly number[],
  expectHandshake: boolean,
) {
  const whole = decodeChunks(geometry, [bytes], expectHandshake);
  const decoder = new WireDecoder(geometry, { expectHandshake });
  const chunks = split(bytes, cuts);
  let maxBufferedBytes = 0;
  const events: Record<string, unknown>[] = [];
  let error: WireError | undefined;
  for (const chunk of chunks) {
    const outcome = feed(decoder, [chunk]);
    if (error === undefined) {
      events.push(...outcome.events);
      error = outcome.error;
    } else {
      assert.equal(outcome.events, []);
    }
    maxBufferedBytes = Math.max(maxBufferedBytes, decoder.bufferedBytes);
  }
  assert.equal(events, whole.events);
  assert.is(error?.code, whole.error?.code);
  if (error !== undefined) assert.ok(DECODER_ERROR_CODES.includes(error.code), error.code);
  const bitfieldFrameBytes = 5 + Math.ceil(geometry.pieceCount / 8);
  assert.ok(
    maxBufferedBytes <= Math.max(MAX_FRAME_BYTES, 6 + MAX_EXTENDED_PAYLOAD_BYTES, bitfieldFrameBytes),
  );
}

test('property: arbitrary bytes never throw and split decoding matches whole decoding', () => {
  fc.assert(
    fc.property(
      geometryArb,
      fc.uint8Array({ maxLength: 300 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      fc.boolean(),
      (geometry, bytes, cuts, expectHandshake) => {
        checkHostile(geometry, bytes, cuts, expectHandshake);
        // Behind a valid handshake, so the random bytes reach the message decoder.
        checkHostile(geometry, concatBytes([HANDSHAKE_BYTES, bytes]), cuts, true);
      },
    ),
    FC_OPTIONS,
  );
});

test('property: mutated valid streams never throw and end in messages or a typed error', () => {
  const mutationArb = fc.record({
    positions: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    truncateTo: fc.option(fc.nat(), { nil: undefined }),
    cuts: fc.array(fc.nat(), { maxLength: 20 }),
  });
  fc.assert(
    fc.property(
      streamArb,
      mutationArb,
      ({ geometry, withHandshake, messages }, { positions, truncateTo, cuts }) => {
        const original = encodeStream(messages, withHandshake);
        if (original.length === 0) return;
        let bytes = original.slice();
        for (const [position, value] of positions) bytes[position % bytes.length] = value;
        if (truncateTo !== undefined) bytes = bytes.subarray(0, truncateTo % (bytes.length + 1));
        checkHostile(geometry, bytes, cuts, withHandshake);
      },
    ),
    FC_OPTIONS,
  );
});

test.run();
