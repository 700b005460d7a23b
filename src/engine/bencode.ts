/**
 * Bencoding (BEP 3): the serialisation of .torrent files and of BEP 9/10 extension messages.
 *
 * Decoding is strict and total: it accepts only the canonical form (integers without leading zeros
 * or `-0`, dictionary keys in strictly increasing raw-byte order, no duplicates), so a value that
 * decodes re-encodes to the same bytes. It never throws, never allocates on a claimed length before
 * checking the bytes are there, and works with an explicit stack, so deep nesting cannot overflow the
 * call stack; `maxDepth` and `maxItems` bound the work and memory a hostile input can cost.
 */

import { UsageError } from './errors.ts';

/** Integers are JS numbers (safe integers only); byte strings are `Uint8Array`s. */
export type BencodeValue = number | Uint8Array | BencodeValue[] | BencodeDictionary;
/**
 * Keys are latin1 ("binary") strings: one char per key byte, so arbitrary key bytes round-trip and
 * comparing keys as JS strings compares their raw bytes.
 */
export type BencodeDictionary = Map<string, BencodeValue>;

export type BencodeErrorCode =
  | 'bad-bencode'
  | 'too-deep'
  | 'too-large'
  | 'integer-out-of-range'
  | 'trailing-bytes';

export interface BencodeError {
  readonly code: BencodeErrorCode;
  readonly message: string;
  /** Byte offset in the input where the problem was found. */
  readonly offset: number;
}

export interface BencodeLimits {
  /** Most containers (lists, dictionaries) nested inside one another. Default 64. */
  readonly maxDepth?: number;
  /** Most values (integers, strings, lists, dictionaries; not counting keys) in one input. Default 100000. */
  readonly maxItems?: number;
}

/** A half-open byte range `[start, end)` of the input. */
export interface ByteSpan {
  readonly start: number;
  readonly end: number;
}

export const DEFAULT_BENCODE_MAX_DEPTH = 64;
export const DEFAULT_BENCODE_MAX_ITEMS = 100_000;

export type BencodeResult =
  | { readonly ok: true; readonly value: BencodeValue }
  | { readonly ok: false; readonly error: BencodeError };

export type BencodePrefixResult =
  | {
      readonly ok: true;
      readonly value: BencodeValue;
      /** Offset just past the value. */
      readonly end: number;
    }
  | { readonly ok: false; readonly error: BencodeError };

export type BencodeSpansResult =
  | {
      readonly ok: true;
      readonly value: BencodeValue;
      /** For a top-level dictionary, the raw byte span of each of its values; empty otherwise. */
      readonly spans: ReadonlyMap<string, ByteSpan>;
    }
  | { readonly ok: false; readonly error: BencodeError };

// ---------------------------------------------------------------------------------------------------
// Encoding

const CHAR_0 = 0x30;
const CHAR_9 = 0x39;
const CHAR_COLON = 0x3a;
const CHAR_MINUS = 0x2d;
const CHAR_D = 0x64;
const CHAR_E = 0x65;
const CHAR_I = 0x69;
const CHAR_L = 0x6c;

/**
 * Encodes `value` canonically: dictionary keys sorted by raw bytes. Throws `UsageError` for values
 * that have no bencoding (a number that is not a safe integer, a key with a char above U+00FF).
 */
export function encodeBencode(value: BencodeValue): Uint8Array {
  const writer = new Writer();
  encodeInto(writer, value);
  return writer.finish();
}

function encodeInto(writer: Writer, value: BencodeValue): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new UsageError(`cannot bencode ${value}: not a safe integer`);
    writer.ascii(`i${value}e`);
  } else if (value instanceof Uint8Array) {
    writer.ascii(`${value.length}:`);
    writer.bytes(value);
  } else if (Array.isArray(value)) {
    writer.byte(CHAR_L);
    for (const item of value) encodeInto(writer, item);
    writer.byte(CHAR_E);
  } else if (value instanceof Map) {
    writer.byte(CHAR_D);
    // Latin1 keys: UTF-16 code-unit order is raw-byte order.
    const keys = [...value.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) {
      writer.ascii(`${key.length}:`);
      writer.latin1(key);
      encodeInto(writer, value.get(key) as BencodeValue);
    }
    writer.byte(CHAR_E);
  } else {
    throw new UsageError(`cannot bencode a value of type ${typeof value}`);
  }
}

class Writer {
  private buffer = new Uint8Array(256);
  private length = 0;

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  /** Writes a string whose chars are all below U+0080. */
  ascii(text: string): void {
    this.latin1(text);
  }

  latin1(text: string): void {
    this.reserve(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0xff) {
        throw new UsageError(
          `cannot bencode key ${JSON.stringify(text)}: keys are latin1 strings (one char per byte)`,
        );
      }
      this.buffer[this.length++] = code;
    }
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/** Turns a latin1 key string into its bytes. Throws `UsageError` for chars above U+00FF. */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw new UsageError(`${JSON.stringify(text)} is not a latin1 string`);
    out[i] = code;
  }
  return out;
}

/** Turns bytes into a latin1 string, one char per byte (the form of dictionary keys). */
export function latin1String(bytes: Uint8Array): string {
  let out = '';
  const CHUNK = 4096;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

/** Decodes exactly one value filling all of `bytes`. Never throws. */
export function decodeBencode(bytes: Uint8Array, limits?: BencodeLimits): BencodeResult {
  const result = decodeAt(bytes, 0, limits, undefined);
  if (!result.ok) return result;
  if (result.end !== bytes.length) {
    return fail('trailing-bytes', `${bytes.length - result.end} bytes follow the bencoded value`, result.end);
  }
  return { ok: true, value: result.value };
}

/**
 * Decodes one value starting at `offset` and reports where it ended, allowing bytes after it (BEP 9
 * `ut_metadata` data messages carry the piece after the dictionary). Never throws.
 */
export function decodeBencodePrefix(
  bytes: Uint8Array,
  offset = 0,
  limits?: BencodeLimits,
): BencodePrefixResult {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > bytes.length) {
    return fail('bad-bencode', `offset ${offset} is outside the input of ${bytes.length} bytes`, 0);
  }
  return decodeAt(bytes, offset, limits, undefined);
}

/**
 * Like `decodeBencode`, and also reports the raw byte span of each value of a top-level dictionary,
 * so a caller can hash the exact original bytes of, say, `info` (the info hash). Never throws.
 */
export function decodeBencodeWithSpans(bytes: Uint8Array, limits?: BencodeLimits): BencodeSpansResult {
  const spans = new Map<string, ByteSpan>();
  const result = decodeAt(bytes, 0, limits, spans);
  if (!result.ok) return result;
  if (result.end !== bytes.length) {
    return fail('trailing-bytes', `${bytes.length - result.end} bytes follow the bencoded value`, result.end);
  }
  return { ok: true, value: result.value, spans };
}

/**
 * The raw byte span of the value under `key` (a latin1 string) in the top-level dictionary that
 * `bytes` holds, or undefined when `bytes` is not a valid bencoded dictionary or lacks the key.
 */
export function findDictionaryValueSpan(
  bytes: Uint8Array,
  key: string,
  limits?: BencodeLimits,
): ByteSpan | undefined {
  const result = decodeBencodeWithSpans(bytes, limits);
  return result.ok ? result.spans.get(key) : undefined;
}

type Frame =
  | { readonly kind: 'list'; readonly items: BencodeValue[] }
  | {
      readonly kind: 'dict';
      readonly map: BencodeDictionary;
      /** The key whose value comes next, once read. */
      key: string | undefined;
      previousKey: string | undefined;
      valueStart: number;
    };

type DecodeAtResult =
  | { readonly ok: true; readonly value: BencodeValue; readonly end: number }
  | { readonly ok: false; readonly error: BencodeError };

function limitOrDefault(value: number | undefined, fallback: number): number {
  if (value === undefined || Number.isNaN(value)) return fallback;
  return Math.max(0, Math.floor(value));
}

function decodeAt(
  bytes: Uint8Array,
  start: number,
  limits: BencodeLimits | undefined,
  topSpans: Map<string, ByteSpan> | undefined,
): DecodeAtResult {
  const maxDepth = limitOrDefault(limits?.maxDepth, DEFAULT_BENCODE_MAX_DEPTH);
  const maxItems = limitOrDefault(limits?.maxItems, DEFAULT_BENCODE_MAX_ITEMS);
  const length = bytes.length;
  const stack: Frame[] = [];
  let items = 0;
  let pos = start;

  for (;;) {
    const frame = stack[stack.length - 1];
    if (pos >= length) {
      return fail(
        'bad-bencode',
        frame === undefined ? 'no value: input is empty' : 'input ends inside a list or dictionary',
        pos,
      );
    }
    const byte = bytes[pos] as number;
    let value: BencodeValue;

    if (frame !== undefined && byte === CHAR_E && (frame.kind === 'list' || frame.key === undefined)) {
      stack.pop();
      pos++;
      value = frame.kind === 'list' ? frame.items : frame.map;
    } else if (frame?.kind === 'dict' && frame.key === undefined) {
      const read = readKey(bytes, pos, frame);
      if (!read.ok) return read;
      pos = read.value;
      continue;
    } else {
      items++;
      if (items > maxItems) return fail('too-large', `more than ${maxItems} values`, pos);
      if (byte === CHAR_I) {
        const parsed = parseInteger(bytes, pos);
        if (!parsed.ok) return parsed;
        value = parsed.value;
        pos = parsed.end;
      } else if (byte >= CHAR_0 && byte <= CHAR_9) {
        const parsed = parseString(bytes, pos);
        if (!parsed.ok) return parsed;
        value = parsed.value.slice();
        pos = parsed.end;
      } else if (byte === CHAR_L || byte === CHAR_D) {
        if (stack.length >= maxDepth) {
          return fail('too-deep', `lists and dictionaries nest more than ${maxDepth} deep`, pos);
        }
        stack.push(
          byte === CHAR_L
            ? { kind: 'list', items: [] }
            : { kind: 'dict', map: new Map(), key: undefined, previousKey: undefined, valueStart: 0 },
        );
        pos++;
        continue;
      } else {
        return fail('bad-bencode', `unexpected ${describeByte(byte)} where a value should start`, pos);
      }
    }

    // `value` is complete and ends at `pos`: attach it to its parent, or finish.
    if (stack.length === 0) return { ok: true, value, end: pos };
    attach(stack, value, pos, topSpans);
  }
}

type DictFrame = Extract<Frame, { kind: 'dict' }>;

/** Reads a dictionary key at `pos` into `frame`, checking the raw-byte order; returns where it ends. */
function readKey(bytes: Uint8Array, pos: number, frame: DictFrame): Parsed<number> {
  const byte = bytes[pos] as number;
  if (byte < CHAR_0 || byte > CHAR_9) {
    return fail('bad-bencode', `dictionary key must be a byte string, found ${describeByte(byte)}`, pos);
  }
  const parsed = parseString(bytes, pos);
  if (!parsed.ok) return parsed;
  const key = latin1String(parsed.value);
  if (frame.previousKey !== undefined && key <= frame.previousKey) {
    return fail(
      'bad-bencode',
      key === frame.previousKey
        ? `duplicate dictionary key ${JSON.stringify(key)}`
        : `dictionary key ${JSON.stringify(key)} is out of order (keys must be sorted by raw bytes)`,
      pos,
    );
  }
  frame.key = key;
  frame.previousKey = key;
  frame.valueStart = parsed.end;
  return { ok: true, value: parsed.end, end: parsed.end };
}

/** Attaches a complete value ending at `end` to the innermost list or dictionary on `stack`. */
function attach(
  stack: Frame[],
  value: BencodeValue,
  end: number,
  topSpans: Map<string, ByteSpan> | undefined,
): void {
  const parent = stack[stack.length - 1] as Frame;
  if (parent.kind === 'list') {
    parent.items.push(value);
    return;
  }
  const key = parent.key as string;
  parent.map.set(key, value);
  if (topSpans !== undefined && stack.length === 1) topSpans.set(key, { start: parent.valueStart, end });
  parent.key = undefined;
}

type Parsed<T> =
  | { readonly ok: true; readonly value: T; readonly end: number }
  | { readonly ok: false; readonly error: BencodeError };

/** Parses `i<digits>e` at `pos` (which holds the `i`). */
function parseInteger(bytes: Uint8Array, pos: number): Parsed<number> {
  let at = pos + 1;
  let negative = false;
  if (bytes[at] === CHAR_MINUS) {
    negative = true;
    at++;
  }
  const digitsStart = at;
  let value = 0;
  let outOfRange = false;
  while (at < bytes.length) {
    const byte = bytes[at] as number;
    if (byte < CHAR_0 || byte > CHAR_9) break;
    const digit = byte - CHAR_0;
    if (!outOfRange) {
      if (value > (Number.MAX_SAFE_INTEGER - digit) / 10) outOfRange = true;
      else value = value * 10 + digit;
    }
    at++;
  }
  if (at >= bytes.length) return fail('bad-bencode', 'input ends inside an integer', at);
  if (bytes[at] !== CHAR_E) {
    return fail('bad-bencode', `unexpected ${describeByte(bytes[at] as number)} inside an integer`, at);
  }
  const digitCount = at - digitsStart;
  if (digitCount === 0) return fail('bad-bencode', 'integer has no digits', at);
  if (bytes[digitsStart] === CHAR_0 && digitCount > 1)
    return fail('bad-bencode', 'integer has a leading zero', digitsStart);
  if (negative && value === 0 && !outOfRange) return fail('bad-bencode', 'integer is -0', pos);
  if (outOfRange)
    return fail('integer-out-of-range', 'integer is outside the safe integer range (±2^53-1)', pos);
  return { ok: true, value: negative ? -value : value, end: at + 1 };
}

/** Parses `<length>:<bytes>` at `pos` (which holds a digit). The result aliases `bytes`. */
function parseString(bytes: Uint8Array, pos: number): Parsed<Uint8Array> {
  let at = pos;
  let claimed = 0;
  while (at < bytes.length) {
    const byte = bytes[at] as number;
    if (byte < CHAR_0 || byte > CHAR_9) break;
    claimed = claimed * 10 + (byte - CHAR_0);
    at++;
    // Stop before the number loses precision: no input is this long anyway.
    if (claimed > bytes.length) {
      return fail('bad-bencode', `string length ${claimed}… is longer than the input`, pos);
    }
  }
  if (at >= bytes.length) return fail('bad-bencode', 'input ends inside a string length', at);
  if (bytes[at] !== CHAR_COLON) {
    return fail('bad-bencode', `unexpected ${describeByte(bytes[at] as number)} inside a string length`, at);
  }
  if (bytes[pos] === CHAR_0 && at - pos > 1)
    return fail('bad-bencode', 'string length has a leading zero', pos);
  const dataStart = at + 1;
  const remaining = bytes.length - dataStart;
  if (claimed > remaining) {
    return fail('bad-bencode', `string of ${claimed} bytes but only ${remaining} bytes remain`, pos);
  }
  return { ok: true, value: bytes.subarray(dataStart, dataStart + claimed), end: dataStart + claimed };
}

function describeByte(byte: number): string {
  return byte >= 0x20 && byte < 0x7f
    ? `'${String.fromCharCode(byte)}'`
    : `byte 0x${byte.toString(16).padStart(2, '0')}`;
}

function fail(
  code: BencodeErrorCode,
  message: string,
  offset: number,
): { readonly ok: false; readonly error: BencodeError } {
  return { ok: false, error: { code, message, offset } };
}
