import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type BencodeErrorCode,
  type BencodeValue,
  decodeBencode,
  decodeBencodePrefix,
  decodeBencodeWithSpans,
  encodeBencode,
  findDictionaryValueSpan,
  latin1Bytes,
  latin1String,
} from '../src/engine/bencode.ts';
import { UsageError } from '../src/engine/errors.ts';

const ascii = (text: string): Uint8Array => latin1Bytes(text);
const text = (bytes: Uint8Array): string => latin1String(bytes);

function decodeOk(input: string | Uint8Array): BencodeValue {
  const result = decodeBencode(typeof input === 'string' ? ascii(input) : input);
  if (!result.ok) throw new Error(`expected ${String(input)} to decode: ${result.error.message}`);
  return result.value;
}

function decodeFails(input: string | Uint8Array, code: BencodeErrorCode, offset?: number): void {
  const result = decodeBencode(typeof input === 'string' ? ascii(input) : input);
  assert.is(result.ok, false, `expected ${typeof input === 'string' ? input : 'input'} to be refused`);
  if (result.ok) return;
  assert.is(result.error.code, code, result.error.message);
  assert.type(result.error.message, 'string');
  if (offset !== undefined) assert.is(result.error.offset, offset);
}

const isUsageError = (error: unknown): boolean => error instanceof UsageError;

const VALID_CODES = new Set<string>([
  'bad-bencode',
  'too-deep',
  'too-large',
  'integer-out-of-range',
  'trailing-bytes',
]);

// --- BEP 3 vectors -----------------------------------------------------------------------------------

test('decodes the BEP 3 string, integer, list and dictionary examples', () => {
  assert.equal(decodeOk('4:spam'), ascii('spam'));
  assert.equal(decodeOk('0:'), new Uint8Array(0));
  assert.is(decodeOk('i3e'), 3);
  assert.is(decodeOk('i-3e'), -3);
  assert.is(decodeOk('i0e'), 0);
  assert.equal(decodeOk('l4:spam4:eggse'), [ascii('spam'), ascii('eggs')]);
  assert.equal(decodeOk('le'), []);
  assert.equal(
    decodeOk('d3:cow3:moo4:spam4:eggse'),
    new Map([
      ['cow', ascii('moo')],
      ['spam', ascii('eggs')],
    ]),
  );
  assert.equal(decodeOk('d4:spaml1:a1:bee'), new Map([['spam', [ascii('a'), ascii('b')]]]));
  assert.equal(decodeOk('de'), new Map());
});

test('encodes the BEP 3 examples to their canonical bytes', () => {
  assert.is(text(encodeBencode(ascii('spam'))), '4:spam');
  assert.is(text(encodeBencode(3)), 'i3e');
  assert.is(text(encodeBencode(-3)), 'i-3e');
  assert.is(text(encodeBencode(0)), 'i0e');
  assert.is(text(encodeBencode(-0)), 'i0e');
  assert.is(text(encodeBencode([ascii('spam'), ascii('eggs')])), 'l4:spam4:eggse');
  assert.is(text(encodeBencode(Number.MAX_SAFE_INTEGER)), 'i9007199254740991e');
  assert.is(text(encodeBencode(Number.MIN_SAFE_INTEGER)), 'i-9007199254740991e');
});

test('encodes dictionary keys sorted by raw bytes whatever the insertion order', () => {
  const dict = new Map<string, BencodeValue>([
    ['spam', ascii('eggs')],
    ['cow', ascii('moo')],
    ['\xff', 1],
    ['Z', 2],
    ['', 3],
    ['a\x00', 4],
    ['a', 5],
  ]);
  assert.is(text(encodeBencode(dict)), 'd0:i3e1:Zi2e1:ai5e2:a\x00i4e3:cow3:moo4:spam4:eggs1:\xffi1ee');
  assert.equal(decodeOk(encodeBencode(dict)), dict);
});

test('keys with arbitrary bytes round-trip as latin1 strings', () => {
  const input = new Uint8Array([0x64, 0x32, 0x3a, 0x00, 0xff, 0x69, 0x37, 0x65, 0x65]); // d2:\0\xffi7ee
  const value = decodeOk(input);
  assert.ok(value instanceof Map);
  assert.equal([...(value as Map<string, BencodeValue>).keys()], ['\x00\xff']);
  assert.equal(encodeBencode(value), input);
});

// --- Refusals ----------------------------------------------------------------------------------------

test('refuses malformed integers', () => {
  decodeFails('i-0e', 'bad-bencode');
  decodeFails('i03e', 'bad-bencode', 1);
  decodeFails('i-03e', 'bad-bencode');
  decodeFails('i00e', 'bad-bencode');
  decodeFails('ie', 'bad-bencode');
  decodeFails('i-e', 'bad-bencode');
  decodeFails('i+3e', 'bad-bencode');
  decodeFails('i3', 'bad-bencode');
  decodeFails('i3.5e', 'bad-bencode');
  decodeFails('i 3e', 'bad-bencode');
});

test('refuses integers outside the safe range, accepts its edges', () => {
  assert.is(decodeOk('i9007199254740991e'), Number.MAX_SAFE_INTEGER);
  assert.is(decodeOk('i-9007199254740991e'), -Number.MAX_SAFE_INTEGER);
  decodeFails('i9007199254740992e', 'integer-out-of-range', 0);
  decodeFails('i-9007199254740992e', 'integer-out-of-range');
  decodeFails(`i${'9'.repeat(400)}e`, 'integer-out-of-range');
  // Syntax errors still win over range.
  decodeFails(`i${'9'.repeat(400)}`, 'bad-bencode');
});

test('refuses malformed and truncated strings', () => {
  decodeFails('5:spam', 'bad-bencode', 0);
  decodeFails('4spam', 'bad-bencode');
  decodeFails('04:spam', 'bad-bencode');
  decodeFails('00:', 'bad-bencode');
  decodeFails('4', 'bad-bencode');
  decodeFails('-1:a', 'bad-bencode');
});

test('a claimed string length far beyond the input is refused without allocating', () => {
  const started = performance.now();
  decodeFails('99999999999999999999999999999999:abc', 'bad-bencode', 0);
  decodeFails('4294967296:abc', 'bad-bencode', 0);
  decodeFails(`l${'9'.repeat(100000)}:e`, 'bad-bencode');
  assert.ok(performance.now() - started < 1000);
});

test('refuses unsorted, duplicate and non-string dictionary keys', () => {
  decodeFails('d1:bi1e1:ai2ee', 'bad-bencode', 7);
  decodeFails('d1:ai1e1:ai2ee', 'bad-bencode', 7);
  decodeFails('di1ei2ee', 'bad-bencode', 1);
  decodeFails('dle1:ae', 'bad-bencode', 1);
  decodeFails('d1:ae', 'bad-bencode'); // key without a value
  // Raw byte order: 'Z' (0x5a) sorts before 'a' (0x61), 'a' before 'aa'.
  decodeFails('d1:ai1e1:Zi2ee', 'bad-bencode');
  decodeFails('d2:aai1e1:ai2ee', 'bad-bencode');
  assert.ok(decodeOk('d1:Zi1e1:ai2e2:aai3ee') instanceof Map);
});

test('refuses empty input, stray bytes, unterminated containers and trailing bytes', () => {
  decodeFails('', 'bad-bencode', 0);
  decodeFails('x', 'bad-bencode', 0);
  decodeFails('e', 'bad-bencode', 0);
  decodeFails('l', 'bad-bencode', 1);
  decodeFails('li1e', 'bad-bencode', 4);
  decodeFails('d', 'bad-bencode');
  decodeFails('d1:a', 'bad-bencode');
  decodeFails('i1ei2e', 'trailing-bytes', 3);
  decodeFails('lee', 'trailing-bytes', 2);
  decodeFails('4:spam ', 'trailing-bytes', 6);
});

test('nesting deeper than maxDepth is refused; the default is 64', () => {
  const nested = (depth: number) => `${'l'.repeat(depth)}${'e'.repeat(depth)}`;
  assert.ok(Array.isArray(decodeOk(nested(64))));
  decodeFails(nested(65), 'too-deep', 64);
  const result = decodeBencode(ascii(nested(3)), { maxDepth: 2 });
  assert.is(result.ok ? 'ok' : result.error.code, 'too-deep');
  assert.ok(decodeBencode(ascii(nested(2)), { maxDepth: 2 }).ok);
  assert.ok(decodeBencode(ascii('i1e'), { maxDepth: 0 }).ok);
  assert.not.ok(decodeBencode(ascii('le'), { maxDepth: 0 }).ok);
  // Mixed dictionaries and lists count alike.
  assert.not.ok(decodeBencode(ascii('d1:ald1:aleeee'), { maxDepth: 3 }).ok);
  assert.ok(decodeBencode(ascii('d1:ald1:aleeee'), { maxDepth: 4 }).ok);
});

test('very deep nesting with no depth limit does not overflow the stack', () => {
  const depth = 200_000;
  const input = ascii(`${'l'.repeat(depth)}${'e'.repeat(depth)}`);
  const result = decodeBencode(input, {
    maxDepth: Number.POSITIVE_INFINITY,
    maxItems: Number.POSITIVE_INFINITY,
  });
  assert.ok(result.ok);
  // An unterminated one is refused, also without recursion.
  const open = decodeBencode(ascii('l'.repeat(depth)), {
    maxDepth: Number.POSITIVE_INFINITY,
    maxItems: depth,
  });
  assert.is(open.ok ? 'ok' : open.error.code, 'bad-bencode');
});

test('more values than maxItems is refused', () => {
  const input = ascii('li1ei2ei3ee'); // four values: the list and three integers
  assert.ok(decodeBencode(input, { maxItems: 4 }).ok);
  const result = decodeBencode(input, { maxItems: 3 });
  assert.is(result.ok ? 'ok' : result.error.code, 'too-large');
  assert.is(result.ok ? -1 : result.error.offset, 7);
  // The default bounds a flood of tiny containers.
  const flood = ascii(`l${'le'.repeat(200_000)}e`);
  const flooded = decodeBencode(flood);
  assert.is(flooded.ok ? 'ok' : flooded.error.code, 'too-large');
});

// --- Prefix decoding and spans -----------------------------------------------------------------------

test('decodeBencodePrefix allows trailing data and reports where the value ended', () => {
  const input = ascii('d8:msg_typei1e5:piecei0eeRAWDATA');
  const result = decodeBencodePrefix(input);
  assert.ok(result.ok);
  if (!result.ok) return;
  assert.is(result.end, 25);
  assert.is(text(input.subarray(result.end)), 'RAWDATA');
  assert.equal(
    result.value,
    new Map([
      ['msg_type', 1],
      ['piece', 0],
    ]),
  );
  const at = decodeBencodePrefix(ascii('xxi42eyy'), 2);
  assert.equal(at.ok ? [at.value, at.end] : at.error, [42, 6]);
  assert.not.ok(decodeBencodePrefix(ascii('i1e'), 4).ok);
  assert.not.ok(decodeBencodePrefix(ascii('i1e'), -1).ok);
  assert.not.ok(decodeBencodePrefix(ascii('d1:a'), 0).ok);
  const deep = decodeBencodePrefix(ascii('llleee'), 0, { maxDepth: 2 });
  assert.is(deep.ok ? 'ok' : deep.error.code, 'too-deep');
});

test('spans give the exact raw bytes of each top-level dictionary value', () => {
  const input = ascii('d8:announce3:url4:infod6:lengthi5e4:name1:xe5:otherli1eee');
  const result = decodeBencodeWithSpans(input);
  assert.ok(result.ok);
  if (!result.ok) return;
  const slice = (key: string) => {
    const span = result.spans.get(key);
    return span === undefined ? undefined : text(input.subarray(span.start, span.end));
  };
  assert.is(slice('announce'), '3:url');
  assert.is(slice('info'), 'd6:lengthi5e4:name1:xe');
  assert.is(slice('other'), 'li1ee');
  assert.is(result.spans.size, 3);
  // Nested keys are not top-level.
  assert.is(slice('length'), undefined);

  assert.equal(findDictionaryValueSpan(input, 'info'), { start: 22, end: 44 });
  assert.is(findDictionaryValueSpan(input, 'missing'), undefined);
  assert.is(findDictionaryValueSpan(ascii('li1ee'), 'info'), undefined);
  assert.is(findDictionaryValueSpan(ascii('d4:infodee'), 'info')?.start, 7);
  assert.is(findDictionaryValueSpan(ascii('d4:infodeeX'), 'info'), undefined);
  const list = decodeBencodeWithSpans(ascii('li1ee'));
  assert.is(list.ok ? list.spans.size : -1, 0);
});

// --- Encoding misuse ---------------------------------------------------------------------------------

test('encoding values with no bencoding throws UsageError', () => {
  assert.throws(() => encodeBencode(1.5), isUsageError);
  assert.throws(() => encodeBencode(Number.NaN), isUsageError);
  assert.throws(() => encodeBencode(2 ** 53), isUsageError);
  assert.throws(() => encodeBencode(new Map([['\u0100', 1]])), isUsageError);
  assert.throws(() => encodeBencode(['x' as unknown as BencodeValue]), isUsageError);
  assert.throws(() => latin1Bytes('\u20ac'), isUsageError);
});

// --- Properties --------------------------------------------------------------------------------------

const latin1Key = fc
  .uint8Array({ maxLength: 6 })
  .map((bytes) => latin1String(bytes))
  .chain((key) => fc.constantFrom(key, 'a', 'info', 'length'));

const { value: arbitraryValue } = fc.letrec<{ value: BencodeValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.maxSafeInteger(),
    fc.integer({ min: -1000, max: 1000 }),
    fc.uint8Array({ maxLength: 24 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .array(fc.tuple(latin1Key, tie('value')), { maxLength: 5 })
      .map((entries) => new Map(entries) as Map<string, BencodeValue>),
  ),
}));

test('property: decode(encode(v)) equals v and re-encodes to the same bytes', () => {
  fc.assert(
    fc.property(arbitraryValue, (value) => {
      const bytes = encodeBencode(value);
      const result = decodeBencode(bytes, { maxDepth: 1000, maxItems: 1_000_000 });
      if (!result.ok) return false;
      assert.equal(result.value, value);
      assert.equal(encodeBencode(result.value), bytes);
      const prefix = decodeBencodePrefix(new Uint8Array([...bytes, 0x78, 0x79]));
      return prefix.ok && prefix.end === bytes.length;
    }),
    { seed: 0x5eed, numRuns: 500 },
  );
});

/** Never throws; a refusal has a known code and an offset inside the input; acceptance is canonical. */
function checkTotal(bytes: Uint8Array): boolean {
  const result = decodeBencode(bytes);
  if (result.ok) {
    // Strict decoding accepts only canonical bytes.
    const again = encodeBencode(result.value);
    return again.length === bytes.length && again.every((byte, i) => byte === bytes[i]);
  }
  return (
    VALID_CODES.has(result.error.code) &&
    result.error.message.length > 0 &&
    Number.isInteger(result.error.offset) &&
    result.error.offset >= 0 &&
    result.error.offset <= bytes.length
  );
}

test('property: arbitrary bytes never throw; accepted inputs are canonical', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), checkTotal), { seed: 0xbe7c0de, numRuns: 2000 });
  // Bytes drawn from the bencode alphabet reach deeper into the grammar.
  const alphabet = fc.constantFrom(...'0123456789ilde:-'.split('').map((c) => c.charCodeAt(0)));
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 60 }), (codes) => checkTotal(new Uint8Array(codes))),
    { seed: 42, numRuns: 3000 },
  );
});

test('property: mutated encodings never throw; accepted ones are canonical', () => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      byte: fc.constantFrom(0x30, 0x39, 0x65, 0x69, 0x6c, 0x64, 0x3a),
    }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  );
  fc.assert(
    fc.property(arbitraryValue, fc.array(mutation, { minLength: 1, maxLength: 4 }), (value, mutations) => {
      let bytes = Array.from(encodeBencode(value));
      for (const m of mutations) {
        const at = bytes.length === 0 ? 0 : m.at % bytes.length;
        if (m.kind === 'flip') bytes[at] = m.byte;
        else if (m.kind === 'cut') bytes = bytes.slice(0, at);
        else if (m.kind === 'insert') bytes.splice(at, 0, m.byte);
        else bytes.splice(at, 1);
      }
      return checkTotal(new Uint8Array(bytes));
    }),
    { seed: 7, numRuns: 1500 },
  );
});

test.run();
