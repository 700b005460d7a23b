/**
 * Single-file .torrent metainfo (BEP 3) and magnet links (BEP 9).
 *
 * `parseTorrent` treats its input as hostile: it never throws, refuses anything we could not serve
 * safely (a name that is not a plain file name, multi-file torrents, absurd lengths), and takes the
 * info hash over the exact original bytes of the `info` value, so foreign torrents keep their swarm.
 */

import {
  type BencodeDictionary,
  type BencodeValue,
  decodeBencodeWithSpans,
  encodeBencode,
} from './bencode.ts';
import { type Geometry, MAXIMUM_CHUNK_COUNT, MAXIMUM_CHUNK_SIZE_BYTES } from './chunking.ts';
import { UsageError } from './errors.ts';
import { type Sha1, toHex } from './hash.ts';

export const PIECE_HASH_LENGTH_BYTES = 20;
/** Larger files are refused as absurd (1 PiB). */
export const MAXIMUM_TORRENT_LENGTH_BYTES = 2 ** 50;
/** Default cap on the size of a .torrent file we parse. */
export const DEFAULT_MAXIMUM_TORRENT_FILE_BYTES = 16 * 1024 * 1024;
/** Longest file name, in UTF-8 bytes, that common file systems accept. */
export const MAXIMUM_NAME_BYTES = 255;

export interface Metainfo {
  /** The file name (UTF-8), checked to be a single safe path component. */
  readonly name: string;
  readonly totalLengthBytes: number;
  readonly pieceLengthBytes: number;
  /** One 20-byte SHA-1 per piece. */
  readonly pieceHashes: Uint8Array[];
  /** SHA-1 of the bencoded `info` dictionary: 20 bytes. */
  readonly infoHash: Uint8Array;
  readonly announce?: string;
  readonly geometry: Geometry;
}

export interface CreateTorrentOptions {
  readonly name: string;
  readonly totalLengthBytes: number;
  readonly pieceLengthBytes: number;
  readonly pieceHashes: readonly Uint8Array[];
  readonly announce?: string | undefined;
}

export type MetainfoErrorCode =
  | 'bad-bencode'
  | 'missing-field'
  | 'bad-field'
  | 'unsafe-name'
  | 'bad-length'
  | 'bad-piece-length'
  | 'bad-pieces'
  | 'unsupported';

export interface MetainfoError {
  readonly code: MetainfoErrorCode;
  readonly message: string;
  /** The offending field, dotted from the top: `info.piece length`. */
  readonly field?: string;
}

export type ParseTorrentResult =
  | { readonly ok: true; readonly metainfo: Metainfo }
  | { readonly ok: false; readonly error: MetainfoError };

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Builds a standard single-file .torrent: `{announce?, info: {length, name, 'piece length', pieces}}`.
 * Unlike `planChunks`, any piece count from one up is allowed. Throws `UsageError` for options that
 * `parseTorrent` would refuse.
 */
export function createTorrent(
  options: CreateTorrentOptions,
  sha1: Sha1,
): { bytes: Uint8Array; metainfo: Metainfo } {
  const { name, totalLengthBytes, pieceLengthBytes, pieceHashes, announce } = options;
  if (!isWellFormed(name)) throw new UsageError('torrent name is not well-formed Unicode');
  if (announce !== undefined && !isWellFormed(announce))
    throw new UsageError('announce URL is not well-formed Unicode');
  const nameBytes = utf8Encoder.encode(name);
  const problem =
    checkName(name, nameBytes.length) ??
    checkLengths(totalLengthBytes, pieceLengthBytes) ??
    checkPieceCount(pieceHashes.length * PIECE_HASH_LENGTH_BYTES, totalLengthBytes, pieceLengthBytes);
  if (problem !== undefined) throw new UsageError(`cannot create torrent: ${problem.message}`);
  const pieces = new Uint8Array(pieceHashes.length * PIECE_HASH_LENGTH_BYTES);
  pieceHashes.forEach((hash, index) => {
    if (hash.length !== PIECE_HASH_LENGTH_BYTES) {
      throw new UsageError(
        `cannot create torrent: piece hash ${index} is ${hash.length} bytes, not ${PIECE_HASH_LENGTH_BYTES}`,
      );
    }
    pieces.set(hash, index * PIECE_HASH_LENGTH_BYTES);
  });

  const info: BencodeDictionary = new Map<string, BencodeValue>([
    ['length', totalLengthBytes],
    ['name', nameBytes],
    ['piece length', pieceLengthBytes],
    ['pieces', pieces],
  ]);
  const top: BencodeDictionary = new Map<string, BencodeValue>([['info', info]]);
  if (announce !== undefined && announce !== '') top.set('announce', utf8Encoder.encode(announce));
  const bytes = encodeBencode(top);
  const infoHash = sha1(encodeBencode(info));

  const metainfo: Metainfo = {
    name,
    totalLengthBytes,
    pieceLengthBytes,
    pieceHashes: splitPieces(pieces),
    infoHash,
    ...(announce !== undefined && announce !== '' ? { announce } : {}),
    geometry: { pieceCount: pieceHashes.length, pieceLengthBytes, totalLengthBytes },
  };
  return { bytes, metainfo };
}

/** Parses a single-file .torrent. Never throws; refuses with a `MetainfoError` saying why. */
export function parseTorrent(
  bytes: Uint8Array,
  sha1: Sha1,
  limits?: { maxBytes?: number },
): ParseTorrentResult {
  const maxBytes = limits?.maxBytes ?? DEFAULT_MAXIMUM_TORRENT_FILE_BYTES;
  if (bytes.length > maxBytes) {
    return fail('unsupported', `the .torrent is ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  }
  const decoded = decodeBencodeWithSpans(bytes);
  if (!decoded.ok) {
    const { code, message, offset } = decoded.error;
    return fail('bad-bencode', `not valid bencode (${code} at byte ${offset}): ${message}`);
  }
  const top = decoded.value;
  if (!(top instanceof Map)) return fail('bad-field', 'a .torrent must be a bencoded dictionary');

  const info = top.get('info');
  const infoSpan = decoded.spans.get('info');
  if (info === undefined || infoSpan === undefined)
    return fail('missing-field', 'no info dictionary', 'info');
  if (!(info instanceof Map)) return fail('bad-field', 'info must be a dictionary', 'info');
  const announce = readAnnounce(top);
  if (!announce.ok) return announce;
  const unsupported = checkSupported(info);
  if (unsupported !== undefined) return { ok: false, error: unsupported };
  const name = readName(info);
  if (!name.ok) return name;
  const sizes = readSizes(info);
  if (!sizes.ok) return sizes;
  const { totalLengthBytes, pieceLengthBytes, pieceHashes } = sizes.value;
  const metainfo: Metainfo = {
    name: name.value,
    totalLengthBytes,
    pieceLengthBytes,
    pieceHashes,
    infoHash: sha1(bytes.subarray(infoSpan.start, infoSpan.end)),
    ...(announce.value !== undefined ? { announce: announce.value } : {}),
    geometry: { pieceCount: pieceHashes.length, pieceLengthBytes, totalLengthBytes },
  };
  return { ok: true, metainfo };
}

/** One field read from a .torrent, or why it was refused. */
type Field<T> = { readonly ok: true; readonly value: T } | Refusal;
type Refusal = { readonly ok: false; readonly error: MetainfoError };

/** The tracker's URL; an empty string counts as none. */
function readAnnounce(top: BencodeDictionary): Field<string | undefined> {
  const announceValue = top.get('announce');
  if (announceValue === undefined) return { ok: true, value: undefined };
  if (!(announceValue instanceof Uint8Array))
    return fail('bad-field', 'announce must be a string', 'announce');
  const text = decodeUtf8(announceValue);
  if (text === undefined) return fail('bad-field', 'announce is not valid UTF-8', 'announce');
  return { ok: true, value: text === '' ? undefined : text };
}

/** Multi-file and v2-only torrents are refused: we serve one file, hashed the v1 way. */
function checkSupported(info: BencodeDictionary): MetainfoError | undefined {
  if (info.has('files')) {
    return {
      code: 'unsupported',
      message: 'multi-file torrents are not supported (info has files)',
      field: 'info.files',
    };
  }
  if (!info.has('pieces') && (info.has('file tree') || info.has('meta version'))) {
    return {
      code: 'unsupported',
      message: 'BitTorrent v2-only torrents are not supported',
      field: 'info.meta version',
    };
  }
  return undefined;
}

function readName(info: BencodeDictionary): Field<string> {
  const nameValue = info.get('name');
  if (nameValue === undefined) return fail('missing-field', 'info has no name', 'info.name');
  if (!(nameValue instanceof Uint8Array)) return fail('bad-field', 'name must be a string', 'info.name');
  const name = decodeUtf8(nameValue);
  if (name === undefined) return fail('unsafe-name', 'name is not valid UTF-8', 'info.name');
  const nameProblem = checkName(name, nameValue.length);
  if (nameProblem !== undefined) return { ok: false, error: nameProblem };
  return { ok: true, value: name };
}

interface Sizes {
  readonly totalLengthBytes: number;
  readonly pieceLengthBytes: number;
  readonly pieceHashes: Uint8Array[];
}

/** `length`, `piece length` and `pieces`, checked against each other. */
function readSizes(info: BencodeDictionary): Field<Sizes> {
  const lengthValue = info.get('length');
  if (lengthValue === undefined) return fail('missing-field', 'info has no length', 'info.length');
  if (typeof lengthValue !== 'number') return fail('bad-field', 'length must be an integer', 'info.length');
  const pieceLengthValue = info.get('piece length');
  if (pieceLengthValue === undefined)
    return fail('missing-field', 'info has no piece length', 'info.piece length');
  if (typeof pieceLengthValue !== 'number') {
    return fail('bad-field', 'piece length must be an integer', 'info.piece length');
  }
  const lengthProblem = checkLengths(lengthValue, pieceLengthValue);
  if (lengthProblem !== undefined) return { ok: false, error: lengthProblem };
  const piecesValue = info.get('pieces');
  if (piecesValue === undefined) return fail('missing-field', 'info has no pieces', 'info.pieces');
  if (!(piecesValue instanceof Uint8Array))
    return fail('bad-field', 'pieces must be a string', 'info.pieces');
  const piecesProblem = checkPieceCount(piecesValue.length, lengthValue, pieceLengthValue);
  if (piecesProblem !== undefined) return { ok: false, error: piecesProblem };
  return {
    ok: true,
    value: {
      totalLengthBytes: lengthValue,
      pieceLengthBytes: pieceLengthValue,
      pieceHashes: splitPieces(piecesValue),
    },
  };
}

/** `magnet:?xt=urn:btih:<hex info hash>&dn=<name>[&tr=<announce>]` (BEP 9), percent-encoded as UTF-8. */
export function magnetLink(metainfo: Metainfo): string {
  let link = `magnet:?xt=urn:btih:${toHex(metainfo.infoHash)}&dn=${percentEncode(metainfo.name)}`;
  if (metainfo.announce !== undefined && metainfo.announce !== '')
    link += `&tr=${percentEncode(metainfo.announce)}`;
  return link;
}

// ---------------------------------------------------------------------------------------------------

/** Why `name` (with `byteLength` UTF-8 bytes) is not safe to create as a file, or undefined. */
function checkName(name: string, byteLength: number): MetainfoError | undefined {
  const field = 'info.name';
  const unsafe = (why: string): MetainfoError => ({
    code: 'unsafe-name',
    message: `name ${JSON.stringify(name)} ${why}`,
    field,
  });
  if (name === '') return { code: 'unsafe-name', message: 'name is empty', field };
  if (name === '.' || name === '..') return unsafe('is a relative directory reference');
  if (name.includes('/') || name.includes('\\')) return unsafe('contains a path separator');
  if (name.includes('\0')) return unsafe('contains a NUL byte');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we refuse
  if (/[\u0001-\u001f\u007f]/.test(name)) return unsafe('contains a control character');
  if (/^[A-Za-z]:/.test(name)) return unsafe('is an absolute or drive-relative Windows path');
  if (byteLength > MAXIMUM_NAME_BYTES) {
    return {
      code: 'unsafe-name',
      message: `name is ${byteLength} bytes, longer than ${MAXIMUM_NAME_BYTES}`,
      field,
    };
  }
  return undefined;
}

function checkLengths(totalLengthBytes: number, pieceLengthBytes: number): MetainfoError | undefined {
  return (
    checkRange(
      totalLengthBytes,
      MAXIMUM_TORRENT_LENGTH_BYTES,
      '2^50',
      'bad-length',
      'length',
      'info.length',
    ) ??
    checkRange(
      pieceLengthBytes,
      MAXIMUM_CHUNK_SIZE_BYTES,
      `${MAXIMUM_CHUNK_SIZE_BYTES}`,
      'bad-piece-length',
      'piece length',
      'info.piece length',
    )
  );
}

/** A byte count must be a safe integer from 1 to `maximum` (written `maximumText` in the message). */
function checkRange(
  value: number,
  maximum: number,
  maximumText: string,
  code: MetainfoErrorCode,
  name: string,
  field: string,
): MetainfoError | undefined {
  if (Number.isSafeInteger(value) && value >= 1 && value <= maximum) return undefined;
  return { code, message: `${name} must be an integer from 1 to ${maximumText} bytes (got ${value})`, field };
}

/** Checks a `pieces` string of `piecesBytes` bytes against lengths already known to be valid. */
function checkPieceCount(
  piecesBytes: number,
  totalLengthBytes: number,
  pieceLengthBytes: number,
): MetainfoError | undefined {
  const field = 'info.pieces';
  if (piecesBytes % PIECE_HASH_LENGTH_BYTES !== 0) {
    return { code: 'bad-pieces', message: `pieces is ${piecesBytes} bytes, not a multiple of 20`, field };
  }
  const expected = Math.ceil(totalLengthBytes / pieceLengthBytes);
  if (expected > MAXIMUM_CHUNK_COUNT) {
    return {
      code: 'bad-pieces',
      message: `${expected} pieces is more than the limit of ${MAXIMUM_CHUNK_COUNT}`,
      field,
    };
  }
  const count = piecesBytes / PIECE_HASH_LENGTH_BYTES;
  if (count !== expected) {
    return {
      code: 'bad-pieces',
      message: `pieces holds ${count} hashes but ${totalLengthBytes} bytes in ${pieceLengthBytes}-byte pieces make ${expected}`,
      field,
    };
  }
  return undefined;
}

/** 20-byte views onto `pieces`, which must be a private buffer (no caller holds it). */
function splitPieces(pieces: Uint8Array): Uint8Array[] {
  const count = pieces.length / PIECE_HASH_LENGTH_BYTES;
  const hashes = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) {
    hashes[i] = new Uint8Array(
      pieces.buffer,
      pieces.byteOffset + i * PIECE_HASH_LENGTH_BYTES,
      PIECE_HASH_LENGTH_BYTES,
    );
  }
  return hashes;
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** True when `text` has no lone surrogates, so it survives a UTF-8 round trip. */
function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      return false;
    }
  }
  return true;
}

const HEX_UPPER = '0123456789ABCDEF';

/** Percent-encodes the UTF-8 bytes of `text`, leaving only RFC 3986 unreserved characters. Never throws. */
function percentEncode(text: string): string {
  let out = '';
  for (const byte of utf8Encoder.encode(text)) {
    const unreserved =
      (byte >= 0x41 && byte <= 0x5a) || // A-Z
      (byte >= 0x61 && byte <= 0x7a) || // a-z
      (byte >= 0x30 && byte <= 0x39) || // 0-9
      byte === 0x2d || // -
      byte === 0x2e || // .
      byte === 0x5f || // _
      byte === 0x7e; // ~
    out += unreserved ? String.fromCharCode(byte) : `%${HEX_UPPER[byte >> 4]}${HEX_UPPER[byte & 15]}`;
  }
  return out;
}

function fail(code: MetainfoErrorCode, message: string, field?: string): Refusal {
  return { ok: false, error: field === undefined ? { code, message } : { code, message, field } };
}
