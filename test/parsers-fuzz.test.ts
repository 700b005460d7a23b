/**
 * The parsers that take bytes from strangers, each against at least 100,000 generated inputs:
 * arbitrary bytes and mutations of valid input. Every case must end in values or a typed error,
 * never an exception.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planChunks } from '../src/engine/chunking.ts';
import { DECODER_ERROR_CODES, encodeHandshake, encodeMessage, WireDecoder } from '../src/engine/codec.ts';
import { createTorrent, parseTorrent } from '../src/engine/metainfo.ts';
import { encodePexMessage, parsePexMessage } from '../src/engine/pex.ts';
import { sha1 } from '../src/platform/sha1.ts';

const RUNS = 100_000;

const plan = planChunks(1_000_000);
if (!plan.ok) throw new Error(plan.error.message);
const geometry = plan.geometry;

const validStream = new Uint8Array(
  Buffer.concat([
    encodeHandshake({
      reserved: new Uint8Array(8),
      infoHash: new Uint8Array(20).fill(1),
      peerId: new Uint8Array(20).fill(2),
    }),
    encodeMessage({ type: 'bitfield', bits: new Uint8Array(Math.ceil(geometry.pieceCount / 8)) }),
    encodeMessage({ type: 'interested' }),
    encodeMessage({ type: 'request', index: 3, begin: 16384, length: 16384 }),
    encodeMessage({ type: 'piece', index: 1, begin: 0, block: new Uint8Array(300).fill(7) }),
    encodeMessage({ type: 'have', index: 9 }),
    encodeMessage({ type: 'extended', extendedId: 0, payload: new Uint8Array([100, 101]) }),
  ]),
);

function decodeEnds(bytes: Uint8Array, splitAt: number): boolean {
  const decoder = new WireDecoder(geometry);
  const first = decoder.push(bytes.subarray(0, splitAt));
  const second = first.ok ? decoder.push(bytes.subarray(splitAt)) : first;
  return second.ok || DECODER_ERROR_CODES.includes(second.error.code);
}

const mutation = fc.record({
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
  cut: fc.nat(),
  mode: fc.integer({ min: 0, max: 2 }),
});

function mutate(
  valid: Uint8Array,
  { at, value, cut, mode }: { at: number; value: number; cut: number; mode: number },
): Uint8Array {
  const copy = valid.slice();
  if (mode === 0) copy[at % copy.length] = value;
  if (mode === 1) return copy.subarray(0, cut % (copy.length + 1));
  if (mode === 2) copy[at % copy.length] = ((copy[at % copy.length] as number) + 1) & 0xff;
  return copy;
}

test(`the wire decoder survives ${RUNS} arbitrary and mutated streams`, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(), (bytes, split) =>
      decodeEnds(bytes, split % (bytes.length + 1)),
    ),
    { numRuns: RUNS / 2, seed: 101 },
  );
  fc.assert(
    fc.property(mutation, fc.nat(), (change, split) => {
      const bytes = mutate(validStream, change);
      return decodeEnds(bytes, split % (bytes.length + 1));
    }),
    { numRuns: RUNS / 2, seed: 102 },
  );
});

const torrent = createTorrent(
  {
    name: 'data.bin',
    totalLengthBytes: 1_000_000,
    pieceLengthBytes: 102400,
    pieceHashes: Array.from({ length: 10 }, (_, i) => sha1(new Uint8Array([i]))),
    announce: 'http://127.0.0.1:6881/announce',
  },
  sha1,
).bytes;

test(`the .torrent parser survives ${RUNS} arbitrary and mutated files`, () => {
  let refused = 0;
  const parses = (bytes: Uint8Array): boolean => {
    const result = parseTorrent(bytes, sha1);
    if (!result.ok) refused++;
    return result.ok
      ? result.metainfo.pieceHashes.length === result.metainfo.geometry.pieceCount
      : result.error.message.length > 0;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), parses), { numRuns: RUNS / 2, seed: 103 });
  fc.assert(
    fc.property(mutation, (change) => parses(mutate(torrent, change))),
    { numRuns: RUNS / 2, seed: 104 },
  );
  assert.ok(refused > RUNS / 2, 'most of them were refused with a message');
});

const validPex = encodePexMessage({
  added: [
    { address: '10.0.0.2:6881', flags: 0x10 },
    { address: '2001:db8::7:51413', flags: 0x02 },
  ],
  dropped: ['10.0.0.3:80'],
});

test(`the ut_pex parser survives ${RUNS} arbitrary and mutated messages`, () => {
  const parses = (bytes: Uint8Array): boolean => {
    const result = parsePexMessage(bytes);
    return result.ok
      ? result.value.added.every((entry) => entry.address.length > 0 && !entry.address.endsWith(':0'))
      : result.error.message.length > 0;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), parses), { numRuns: RUNS / 2, seed: 105 });
  fc.assert(
    fc.property(mutation, (change) => parses(mutate(validPex, change))),
    { numRuns: RUNS / 2, seed: 106 },
  );
});

test.run();
