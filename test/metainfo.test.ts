import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type BencodeValue, encodeBencode, latin1Bytes } from '../src/engine/bencode.ts';
import { concatBytes } from '../src/engine/bytes.ts';
import { MAXIMUM_CHUNK_COUNT, MAXIMUM_CHUNK_SIZE_BYTES } from '../src/engine/chunking.ts';
import { UsageError } from '../src/engine/errors.ts';
import { toHex } from '../src/engine/hash.ts';
import {
  createTorrent,
  type Metainfo,
  type MetainfoErrorCode,
  magnetLink,
  parseTorrent,
} from '../src/engine/metainfo.ts';
import { sha1 } from '../src/platform/sha1.ts';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const isUsageError = (error: unknown): boolean => error instanceof UsageError;

/** A plain-JS description of a bencoded value: strings become UTF-8 byte strings, objects dictionaries. */
type Plain = number | string | Uint8Array | Plain[] | { [key: string]: Plain };

function toBencode(value: Plain): BencodeValue {
  if (typeof value === 'number' || value instanceof Uint8Array) return value;
  if (typeof value === 'string') return utf8(value);
  if (Array.isArray(value)) return value.map(toBencode);
  return new Map(Object.entries(value).map(([key, item]) => [key, toBencode(item)]));
}

const bencode = (value: Plain): Uint8Array => encodeBencode(toBencode(value));

function hashes(count: number, seed = 0): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => sha1(utf8(`piece ${seed} ${i}`)));
}

/** A valid single-file info dictionary, overridable field by field. */
function info(overrides: { [key: string]: Plain | undefined } = {}): { [key: string]: Plain } {
  const base: { [key: string]: Plain | undefined } = {
    length: 1000,
    name: 'file.bin',
    'piece length': 300,
    pieces: concatBytes(hashes(4)),
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(base).filter((entry): entry is [string, Plain] => entry[1] !== undefined),
  );
}

function parseFails(
  bytes: Uint8Array,
  code: MetainfoErrorCode,
  field?: string,
  limits?: { maxBytes?: number },
): void {
  const result = parseTorrent(bytes, sha1, limits);
  assert.is(result.ok, false, `expected ${code}`);
  if (result.ok) return;
  assert.is(result.error.code, code, result.error.message);
  assert.ok(result.error.message.length > 0);
  if (field !== undefined) assert.is(result.error.field, field);
}

function parseOk(bytes: Uint8Array): Metainfo {
  const result = parseTorrent(bytes, sha1);
  if (!result.ok) throw new Error(`expected to parse: ${result.error.code}: ${result.error.message}`);
  return result.metainfo;
}

// --- Round trips -------------------------------------------------------------------------------------

test('createTorrent builds the standard single-file layout and parseTorrent reads it back', () => {
  const pieceHashes = hashes(5);
  const { bytes, metainfo } = createTorrent(
    {
      name: 'report.pdf',
      totalLengthBytes: 500_000,
      pieceLengthBytes: 102_400,
      pieceHashes,
      announce: 'http://tracker.example/announce',
    },
    sha1,
  );
  // The info dictionary, spelled out by hand: keys in byte order, pieces concatenated.
  const infoBytes = concatBytes([
    latin1Bytes('d6:lengthi500000e4:name10:report.pdf12:piece lengthi102400e6:pieces100:'),
    concatBytes(pieceHashes),
    latin1Bytes('e'),
  ]);
  const expected = concatBytes([
    latin1Bytes('d8:announce31:http://tracker.example/announce4:info'),
    infoBytes,
    latin1Bytes('e'),
  ]);
  assert.equal(bytes, expected);
  assert.equal(metainfo.infoHash, sha1(infoBytes));
  assert.is(metainfo.infoHash.length, 20);
  assert.equal(metainfo.geometry, { pieceCount: 5, pieceLengthBytes: 102_400, totalLengthBytes: 500_000 });

  const parsed = parseOk(bytes);
  assert.equal(parsed, metainfo);
  assert.is(parsed.name, 'report.pdf');
  assert.is(parsed.announce, 'http://tracker.example/announce');
  assert.equal(parsed.pieceHashes, pieceHashes);
  assert.equal(parsed.infoHash, sha1(infoBytes));
});

test('without an announce URL the key is left out', () => {
  const { bytes, metainfo } = createTorrent(
    { name: 'a', totalLengthBytes: 10, pieceLengthBytes: 2, pieceHashes: hashes(5) },
    sha1,
  );
  assert.not.ok('announce' in metainfo);
  assert.is(new TextDecoder().decode(bytes.subarray(0, 7)), 'd4:info');
  const parsed = parseOk(bytes);
  assert.not.ok('announce' in parsed);
  assert.equal(parsed, metainfo);
});

test('foreign torrents with fewer than five pieces, extra keys and UTF-8 names are accepted', () => {
  const infoBytes = bencode(
    info({
      length: 7,
      name: 'Ünïcödé 文件.txt',
      'piece length': 16384,
      pieces: hashes(1)[0] as Uint8Array,
      private: 1,
    }),
  );
  const bytes = concatBytes([
    latin1Bytes('d8:announce4:udp:7:comment2:hi13:creation datei1700000000e4:info'),
    infoBytes,
    latin1Bytes('e'),
  ]);
  const metainfo = parseOk(bytes);
  assert.is(metainfo.name, 'Ünïcödé 文件.txt');
  assert.is(metainfo.geometry.pieceCount, 1);
  assert.is(metainfo.announce, 'udp:');
  // The hash covers the info bytes exactly as given, unknown keys included.
  assert.equal(metainfo.infoHash, sha1(infoBytes));
});

test('the info hash is taken over the original bytes, not a re-encoding', () => {
  // `trailed` is a top-level key after info; info itself carries a key we do not model.
  const infoBytes = latin1Bytes(`d6:lengthi3e4:name1:x12:piece lengthi1e6:pieces60:${'x'.repeat(60)}1:zi0ee`);
  const bytes = concatBytes([latin1Bytes('d4:info'), infoBytes, latin1Bytes('7:trailedi1ee')]);
  const metainfo = parseOk(bytes);
  assert.is(toHex(metainfo.infoHash), createHash('sha1').update(infoBytes).digest('hex'));
  assert.is(metainfo.pieceHashes.length, 3);
});

test('property: createTorrent then parseTorrent returns the same metainfo', () => {
  const safeName = fc
    .string({
      // A custom unit: the built-in full-Unicode units take about a second to set up.
      unit: fc.oneof(
        fc.constantFrom('a', 'Z', '0', '.', '-', ' ', ':', '~', 'é', '文', '😀', '\u0000', '/', '\\', '\n'),
        fc
          .integer({ min: 0, max: 0x10ffff })
          .filter((code) => code < 0xd800 || code > 0xdfff)
          .map((code) => String.fromCodePoint(code)),
      ),
      minLength: 1,
      maxLength: 30,
    })
    .filter(
      (name) =>
        ![...name].some(
          (c) => c === '/' || c === '\\' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f,
        ) &&
        name !== '.' &&
        name !== '..' &&
        !/^[A-Za-z]:/.test(name),
    )
    .filter((name) => utf8(name).length <= 255);
  const options = fc
    .record({
      name: safeName,
      pieceLengthBytes: fc.integer({ min: 1, max: MAXIMUM_CHUNK_SIZE_BYTES }),
      pieceCount: fc.integer({ min: 1, max: 40 }),
      lastPieceShortBy: fc.nat(),
      announce: fc.option(
        fc.oneof(
          fc.constantFrom('http://tracker.example/announce', 'udp://t.example:6969', 'https://x/a?b=c&d=é'),
          fc.string({ maxLength: 20 }).map((path) => `http://tracker.example/${path}`),
        ),
        { nil: undefined },
      ),
    })
    .map(({ name, pieceLengthBytes, pieceCount, lastPieceShortBy, announce }) => ({
      name,
      pieceLengthBytes,
      totalLengthBytes: pieceCount * pieceLengthBytes - (lastPieceShortBy % pieceLengthBytes),
      pieceHashes: hashes(pieceCount, pieceLengthBytes),
      announce,
    }));
  fc.assert(
    fc.property(options, (opts) => {
      const { bytes, metainfo } = createTorrent(opts, sha1);
      const parsed = parseTorrent(bytes, sha1);
      if (!parsed.ok) return false;
      assert.equal(parsed.metainfo, metainfo);
      assert.is(metainfo.geometry.pieceCount, Math.ceil(opts.totalLengthBytes / opts.pieceLengthBytes));
      return true;
    }),
    { seed: 20240601, numRuns: 200 },
  );
});

// --- Refusals ----------------------------------------------------------------------------------------

test('bad bencode is refused', () => {
  parseFails(latin1Bytes('not bencode'), 'bad-bencode');
  parseFails(new Uint8Array(0), 'bad-bencode');
  const valid = bencode({ info: info() });
  parseFails(valid.subarray(0, valid.length - 1), 'bad-bencode');
  parseFails(concatBytes([valid, latin1Bytes('x')]), 'bad-bencode');
  parseFails(latin1Bytes('d4:infod6:lengthi99999999999999999999ee'), 'bad-bencode');
});

test('missing fields are refused with the field named', () => {
  parseFails(bencode({ announce: 'http://x' }), 'missing-field', 'info');
  parseFails(bencode({ info: info({ name: undefined }) }), 'missing-field', 'info.name');
  parseFails(bencode({ info: info({ length: undefined }) }), 'missing-field', 'info.length');
  parseFails(bencode({ info: info({ 'piece length': undefined }) }), 'missing-field', 'info.piece length');
  parseFails(bencode({ info: info({ pieces: undefined }) }), 'missing-field', 'info.pieces');
});

test('ill-typed fields are refused with the field named', () => {
  parseFails(bencode([{ info: info() }]), 'bad-field');
  parseFails(bencode('d4:info'), 'bad-field');
  parseFails(bencode({ info: 'x' }), 'bad-field', 'info');
  parseFails(bencode({ info: [info()] }), 'bad-field', 'info');
  parseFails(bencode({ info: info({ name: 5 }) }), 'bad-field', 'info.name');
  parseFails(bencode({ info: info({ length: '1000' }) }), 'bad-field', 'info.length');
  parseFails(bencode({ info: info({ 'piece length': ['300'] }) }), 'bad-field', 'info.piece length');
  parseFails(bencode({ info: info({ pieces: 80 }) }), 'bad-field', 'info.pieces');
  parseFails(bencode({ announce: 7, info: info() }), 'bad-field', 'announce');
  parseFails(bencode({ announce: new Uint8Array([0xc3, 0x28]), info: info() }), 'bad-field', 'announce');
});

test('unsafe names are refused', () => {
  const unsafe = [
    '',
    '.',
    '..',
    'a/b',
    '/etc/passwd',
    '../up',
    'a\\b',
    '\\\\server\\share',
    'nul\0byte',
    'C:',
    'c:evil',
    'line\nbreak',
    'esc\x1b[31m',
    'del\x7f',
    'x'.repeat(256),
    'é'.repeat(128),
  ];
  for (const name of unsafe) {
    parseFails(bencode({ info: info({ name }) }), 'unsafe-name', 'info.name');
    assert.throws(
      () =>
        createTorrent({ name, totalLengthBytes: 1000, pieceLengthBytes: 300, pieceHashes: hashes(4) }, sha1),
      isUsageError,
      `createTorrent accepted ${JSON.stringify(name)}`,
    );
  }
  parseFails(
    bencode({ info: info({ name: new Uint8Array([0x66, 0xff, 0x66]) }) }),
    'unsafe-name',
    'info.name',
  );
  // Names that merely look odd are fine.
  for (const name of ['...', '.hidden', 'a..b', 'x'.repeat(255), 'CON', 'ab:c', ' spaced ']) {
    assert.is(parseOk(bencode({ info: info({ name }) })).name, name);
  }
});

test('multi-file and v2-only torrents are unsupported', () => {
  const files = [{ length: 1000, path: ['a', 'b.txt'] }];
  parseFails(bencode({ info: info({ files, length: undefined }) }), 'unsupported', 'info.files');
  parseFails(bencode({ info: info({ files }) }), 'unsupported');
  parseFails(
    bencode({
      info: {
        'file tree': { a: { '': { length: 1 } } },
        'meta version': 2,
        name: 'a',
        'piece length': 16384,
      },
    }),
    'unsupported',
  );
});

test('a .torrent larger than maxBytes is refused', () => {
  const bytes = bencode({ info: info() });
  parseFails(bytes, 'unsupported', undefined, { maxBytes: bytes.length - 1 });
  assert.ok(parseTorrent(bytes, sha1, { maxBytes: bytes.length }).ok);
  parseFails(new Uint8Array(16 * 1024 * 1024 + 1), 'unsupported');
});

test('bad lengths are refused', () => {
  for (const length of [0, -1, -1000, 2 ** 50 + 1, Number.MAX_SAFE_INTEGER]) {
    parseFails(bencode({ info: info({ length }) }), 'bad-length', 'info.length');
  }
});

test('bad piece lengths are refused', () => {
  for (const pieceLength of [0, -300, MAXIMUM_CHUNK_SIZE_BYTES + 1]) {
    parseFails(
      bencode({ info: info({ 'piece length': pieceLength }) }),
      'bad-piece-length',
      'info.piece length',
    );
  }
  const max = bencode({
    info: info({ length: 5, 'piece length': MAXIMUM_CHUNK_SIZE_BYTES, pieces: hashes(1)[0] }),
  });
  assert.is(parseOk(max).pieceLengthBytes, MAXIMUM_CHUNK_SIZE_BYTES);
});

test('bad pieces are refused', () => {
  parseFails(bencode({ info: info({ pieces: new Uint8Array(79) }) }), 'bad-pieces', 'info.pieces');
  parseFails(bencode({ info: info({ pieces: new Uint8Array(81) }) }), 'bad-pieces', 'info.pieces');
  parseFails(bencode({ info: info({ pieces: concatBytes(hashes(3)) }) }), 'bad-pieces', 'info.pieces');
  parseFails(bencode({ info: info({ pieces: concatBytes(hashes(5)) }) }), 'bad-pieces', 'info.pieces');
  parseFails(bencode({ info: info({ pieces: new Uint8Array(0) }) }), 'bad-pieces', 'info.pieces');
  // Over the piece-count limit: refused before the pieces string is even compared.
  const over = MAXIMUM_CHUNK_COUNT + 1;
  parseFails(bencode({ info: info({ length: over, 'piece length': 1 }) }), 'bad-pieces', 'info.pieces');
  const overResult = parseTorrent(bencode({ info: info({ length: over, 'piece length': 1 }) }), sha1);
  assert.match(overResult.ok ? '' : overResult.error.message, /limit/);
  parseFails(
    bencode({ info: info({ length: 2 ** 50, 'piece length': MAXIMUM_CHUNK_SIZE_BYTES }) }),
    'bad-pieces',
    'info.pieces',
  );
  // Exactly at the limit is accepted (20 MiB of hashes, so past the default maxBytes).
  const count = MAXIMUM_CHUNK_COUNT;
  const atLimit = concatBytes([
    latin1Bytes(`d4:infod6:lengthi${count}e4:name1:x12:piece lengthi1e6:pieces${count * 20}:`),
    new Uint8Array(count * 20),
    latin1Bytes('ee'),
  ]);
  parseFails(atLimit, 'unsupported');
  const result = parseTorrent(atLimit, sha1, { maxBytes: 32 * 1024 * 1024 });
  assert.is(result.ok ? result.metainfo.geometry.pieceCount : result.error.code, count);
});

test('createTorrent refuses options parseTorrent would refuse', () => {
  const base = { name: 'f', totalLengthBytes: 1000, pieceLengthBytes: 300, pieceHashes: hashes(4) };
  assert.not.throws(() => createTorrent(base, sha1));
  const bad = [
    { totalLengthBytes: 0 },
    { totalLengthBytes: 1.5 },
    { pieceLengthBytes: 0 },
    { pieceLengthBytes: MAXIMUM_CHUNK_SIZE_BYTES + 1 },
    { pieceHashes: hashes(3) },
    { pieceHashes: [...hashes(3), new Uint8Array(19)] },
    { name: 'bad\ud800surrogate' },
    { announce: '\udc00' },
  ];
  for (const override of bad) {
    assert.throws(
      () => createTorrent({ ...base, ...override }, sha1),
      isUsageError,
      JSON.stringify(override),
    );
  }
});

test('property: arbitrary bytes never make parseTorrent throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const result = parseTorrent(bytes, sha1);
      return result.ok || result.error.message.length > 0;
    }),
    { seed: 99, numRuns: 1000 },
  );
});

test('property: mutated valid torrents never throw; anything accepted is consistent', () => {
  const { bytes: valid } = createTorrent(
    {
      name: 'mutant.bin',
      totalLengthBytes: 1000,
      pieceLengthBytes: 300,
      pieceHashes: hashes(4),
      announce: 'http://t/a',
    },
    sha1,
  );
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      byte: fc.constantFrom(0x30, 0x31, 0x2f, 0x65, 0x69, 0x6c, 0x64, 0x3a),
    }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  );
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
      const bytes = Array.from(valid);
      for (const m of mutations) {
        const at = bytes.length === 0 ? 0 : m.at % bytes.length;
        if (m.kind === 'flip') bytes[at] = m.byte;
        else if (m.kind === 'cut') bytes.length = at;
        else if (m.kind === 'insert') bytes.splice(at, 0, m.byte);
        else bytes.splice(at, 1);
      }
      const result = parseTorrent(new Uint8Array(bytes), sha1);
      if (!result.ok) return result.error.message.length > 0;
      accepted++;
      const { metainfo } = result;
      return (
        metainfo.pieceHashes.length === Math.ceil(metainfo.totalLengthBytes / metainfo.pieceLengthBytes) &&
        metainfo.pieceHashes.every((hash) => hash.length === 20) &&
        metainfo.infoHash.length === 20 &&
        !/[/\\\0]/.test(metainfo.name) &&
        metainfo.name !== '.' &&
        metainfo.name !== '..'
      );
    }),
    { seed: 1234, numRuns: 2000 },
  );
  // Some mutations (a flipped name or hash byte) leave a valid torrent: the check above was exercised.
  assert.ok(accepted > 0);
});

// --- Magnet links ------------------------------------------------------------------------------------

test('magnet links carry the hex info hash, the encoded name and the tracker', () => {
  const { metainfo } = createTorrent(
    {
      name: 'my file ü&=?.txt',
      totalLengthBytes: 1000,
      pieceLengthBytes: 300,
      pieceHashes: hashes(4),
      announce: 'http://tracker.example:6969/announce?key=a&b',
    },
    sha1,
  );
  const hex = toHex(metainfo.infoHash);
  assert.match(hex, /^[0-9a-f]{40}$/);
  const link = magnetLink(metainfo);
  assert.is(
    link,
    `magnet:?xt=urn:btih:${hex}&dn=my%20file%20%C3%BC%26%3D%3F.txt&tr=http%3A%2F%2Ftracker.example%3A6969%2Fannounce%3Fkey%3Da%26b`,
  );
  const params = new URLSearchParams(link.slice('magnet:?'.length));
  assert.equal([...params.keys()], ['xt', 'dn', 'tr']);
  assert.is(params.get('dn'), metainfo.name);
  assert.is(params.get('tr'), metainfo.announce);
});

test('magnet links leave out tr without an announce URL', () => {
  const { metainfo } = createTorrent(
    { name: 'plain-name_1.0~x', totalLengthBytes: 10, pieceLengthBytes: 10, pieceHashes: hashes(1) },
    sha1,
  );
  assert.is(magnetLink(metainfo), `magnet:?xt=urn:btih:${toHex(metainfo.infoHash)}&dn=plain-name_1.0~x`);
  // Never throws, even on a hand-made metainfo with a lone surrogate.
  assert.type(magnetLink({ ...metainfo, name: 'x\ud800' }), 'string');
});

test.run();
