/**
 * The parsers that take bytes from strangers, each against at least 100,000 generated inputs:
 * arbitrary bytes and mutations of valid input. Every case must end in values or a typed error,
 * never an exception. The hostile `ut_pex` shapes of issue #19 (oversized, truncated, self-address,
 * 10,000 entries) are generated too, each of which must end in its own typed error.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeBencode, encodeBencode } from '../src/engine/bencode.ts';
import { planChunks } from '../src/engine/chunking.ts';
import { DECODER_ERROR_CODES, encodeHandshake, encodeMessage, WireDecoder } from '../src/engine/codec.ts';
import { MAX_PEX_PAYLOAD_BYTES, MAX_PEX_RECEIVED_ENTRIES } from '../src/engine/limits.ts';
import { createTorrent, parseTorrent } from '../src/engine/metainfo.ts';
import {
  canonicalAddress,
  encodePexMessage,
  type PexEntry,
  type PexMessage,
  parsePexMessage,
  screenPexAdded,
} from '../src/engine/pex.ts';
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

const HOSTILE_RUNS = 2_000;
const ipv4 = fc
  .tuple(
    fc.integer({ min: 1, max: 223 }),
    fc.nat(255),
    fc.nat(255),
    fc.nat(255),
    fc.integer({ min: 1, max: 65535 }),
  )
  .map(([a, b, c, d, port]) => `${a}.${b}.${c}.${d}:${port}`);
const ipv6 = fc
  .tuple(fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }), fc.integer({ min: 1, max: 65535 }))
  .map(
    ([groups, port]) =>
      `${[0x2001, ...groups.slice(1)].map((group) => group.toString(16)).join(':')}:${port}`,
  );
const entries = fc.array(fc.record({ address: fc.oneof(ipv4, ipv6), flags: fc.nat(255) }), { maxLength: 50 });
const message = fc.record({ added: entries, dropped: fc.array(fc.oneof(ipv4, ipv6), { maxLength: 50 }) });
const codeOf = (bytes: Uint8Array): string | undefined => {
  const result = parsePexMessage(bytes);
  return result.ok ? undefined : result.error.code;
};

// The hostile ut_pex shapes of issue #19, generated, each ending in its own typed error.

test('hostile ut_pex, truncated: any proper prefix of any honest message is bad-pex-message', () => {
  fc.assert(
    fc.property(message, fc.nat(), (value, cut) => {
      const bytes = encodePexMessage(value);
      return codeOf(bytes.subarray(0, cut % bytes.length)) === 'bad-pex-message';
    }),
    { numRuns: HOSTILE_RUNS, seed: 107 },
  );
});

test('hostile ut_pex, 10,000 entries (any count over the limit, any list): pex-too-many-entries', () => {
  const overLimit = fc.integer({ min: MAX_PEX_RECEIVED_ENTRIES + 1, max: 10_000 });
  const list = fc.constantFrom(['added', 6], ['dropped', 6], ['added6', 18], ['dropped6', 18]);
  fc.assert(
    fc.property(overLimit, list, fc.nat(255), (count, [key, size], fill) => {
      const payload = encodeBencode(
        new Map([[key as string, new Uint8Array(count * (size as number)).fill(fill | 1)]]),
      );
      return codeOf(payload) === 'pex-too-many-entries';
    }),
    { numRuns: HOSTILE_RUNS / 10, seed: 108 },
  );
});

test('hostile ut_pex, oversized: an honest message padded past the limit is pex-oversized', () => {
  const padded = (value: PexMessage, extra: number, key: string): Uint8Array => {
    const decoded = decodeBencode(encodePexMessage(value));
    if (!decoded.ok || !(decoded.value instanceof Map)) throw new Error('our own encoding does not decode');
    decoded.value.set(`x-${key}`, new Uint8Array(MAX_PEX_PAYLOAD_BYTES + extra));
    return encodeBencode(decoded.value);
  };
  fc.assert(
    fc.property(
      message,
      fc.integer({ min: 1, max: 50_000 }),
      fc.string({ maxLength: 8 }),
      (value, extra, key) => codeOf(padded(value, extra, key)) === 'pex-oversized',
    ),
    { numRuns: HOSTILE_RUNS / 4, seed: 109 },
  );
});

test('hostile ut_pex, self-address: our address anywhere is refused (pex-self-address), the rest kept', () => {
  fc.assert(
    fc.property(entries, fc.oneof(ipv4, ipv6), fc.nat(), (others, ownText, at) => {
      const own = canonicalAddress(ownText) as string;
      const added: PexEntry[] = others.filter((entry) => canonicalAddress(entry.address) !== own);
      added.splice(at % (added.length + 1), 0, { address: own, flags: 0 });
      const parsed = parsePexMessage(encodePexMessage({ added, dropped: [] }));
      if (!parsed.ok) return false;
      const screened = screenPexAdded(parsed.value, new Set([own]), new Set());
      return (
        screened.refused.length === 1 &&
        screened.refused[0]?.code === 'pex-self-address' &&
        !screened.fresh.includes(own) &&
        screened.fresh.length === parsed.value.added.length - 1
      );
    }),
    { numRuns: HOSTILE_RUNS, seed: 110 },
  );
});

test.run();
