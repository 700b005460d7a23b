/**
 * The announce query string (BEP 3): building one from bytes on the peers' side, and parsing one,
 * totally, on the tracker's side. Binary values (info_hash, peer_id) travel percent-encoded.
 */
import { latin1String } from '../engine/bencode.ts';

/** Longest request URL (path + query) we look at. */
export const MAX_TRACKER_URL_LENGTH = 4096;
export const DEFAULT_NUMWANT = 50;
export const MAX_NUMWANT = 200;

/** `empty` is a regular announce (no event, an empty one, or one we do not know such as `paused`). */
export type AnnounceEvent = 'started' | 'completed' | 'stopped' | 'empty';

/** A parsed announce request (the query string of `GET /announce`). */
export interface AnnounceQuery {
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly uploaded: number;
  readonly downloaded: number;
  /** Bytes still missing; absent counts as incomplete. */
  readonly left?: number;
  readonly event: AnnounceEvent;
  /** False only for `compact=0` (the BEP 3 dictionary model). */
  readonly compact: boolean;
  readonly noPeerId: boolean;
  readonly numwant: number;
  /** The `ip` parameter as sent; honoured only when it and the socket address are loopback. */
  readonly ip?: string;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Percent-encodes bytes for a query string (info_hash, peer_id): everything but RFC 3986 unreserved. */
export function encodeBinaryParam(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    const char = String.fromCharCode(byte);
    out += UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

type RawParams = Map<string, Uint8Array>;

/** Percent-decodes one query component into bytes ('+' is a space, as in forms); undefined if malformed. */
function percentDecode(text: string): Uint8Array | undefined {
  const out = new Uint8Array(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x25) {
      const high = hexValue(text.charCodeAt(i + 1));
      const low = hexValue(text.charCodeAt(i + 2));
      if (high < 0 || low < 0) return undefined;
      out[length++] = (high << 4) | low;
      i += 2;
    } else if (code === 0x2b) {
      out[length++] = 0x20;
    } else if (code > 0x7e || code < 0x21) {
      // Raw non-ASCII or control characters are not valid in a URL query.
      return undefined;
    } else {
      out[length++] = code;
    }
  }
  return out.slice(0, length);
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1; // also NaN past the end
}

/** The parameters an announce may carry; any other is skipped. */
export const ANNOUNCE_PARAMS = [
  'info_hash',
  'peer_id',
  'port',
  'uploaded',
  'downloaded',
  'left',
  'event',
  'compact',
  'no_peer_id',
  'numwant',
  'ip',
] as const;

const KNOWN_PARAMS: ReadonlySet<string> = new Set(ANNOUNCE_PARAMS);

/** Splits a raw query string into known parameters; unknown ones are skipped, duplicates refused. */
function splitQuery(query: string): { ok: true; params: RawParams } | { ok: false; failure: string } {
  const params: RawParams = new Map();
  if (query.length === 0) return { ok: true, params };
  for (const part of query.split('&')) {
    if (part.length === 0) continue;
    const equals = part.indexOf('=');
    const rawKey = equals < 0 ? part : part.slice(0, equals);
    const rawValue = equals < 0 ? '' : part.slice(equals + 1);
    const keyBytes = percentDecode(rawKey);
    if (keyBytes === undefined)
      return { ok: false, failure: 'malformed percent-encoding in a parameter name' };
    const key = latin1String(keyBytes);
    if (!KNOWN_PARAMS.has(key)) continue;
    const value = percentDecode(rawValue);
    if (value === undefined) return { ok: false, failure: `malformed percent-encoding in ${key}` };
    if (params.has(key)) return { ok: false, failure: `${key} is given more than once` };
    params.set(key, value);
  }
  return { ok: true, params };
}

/** A decimal integer, negative values clamped to 0 and huge ones to the safe range; undefined if not one. */
function parseCount(bytes: Uint8Array): number | undefined {
  const text = latin1String(bytes);
  if (!/^-?[0-9]{1,24}$/.test(text)) return undefined;
  if (text.startsWith('-')) return 0;
  return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
}

export type ParsedAnnounceQuery =
  | { readonly ok: true; readonly query: AnnounceQuery }
  | { readonly ok: false; readonly failure: string };

/**
 * Parses the query string of an announce (the part after '?', binary values percent-encoded).
 * Total: never throws, refuses with a failure reason.
 */
export function parseAnnounceQuery(query: string): ParsedAnnounceQuery {
  if (query.length > MAX_TRACKER_URL_LENGTH) return { ok: false, failure: 'request URL is too long' };
  const split = splitQuery(query);
  if (!split.ok) return split;
  const params = split.params;

  const infoHash = params.get('info_hash');
  if (infoHash === undefined) return { ok: false, failure: 'missing info_hash' };
  if (infoHash.length !== 20)
    return { ok: false, failure: `info_hash must be 20 bytes, got ${infoHash.length}` };
  const peerId = params.get('peer_id');
  if (peerId === undefined) return { ok: false, failure: 'missing peer_id' };
  if (peerId.length !== 20) return { ok: false, failure: `peer_id must be 20 bytes, got ${peerId.length}` };

  const portBytes = params.get('port');
  if (portBytes === undefined) return { ok: false, failure: 'missing port' };
  const portText = latin1String(portBytes);
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : 0;
  if (port < 1 || port > 65535) return { ok: false, failure: 'port must be an integer from 1 to 65535' };

  const counts: Record<'uploaded' | 'downloaded' | 'left', number | undefined> = {
    uploaded: 0,
    downloaded: 0,
    left: undefined,
  };
  for (const name of ['uploaded', 'downloaded', 'left'] as const) {
    const raw = params.get(name);
    if (raw === undefined) continue;
    const value = parseCount(raw);
    if (value === undefined) return { ok: false, failure: `${name} must be a decimal integer` };
    counts[name] = value;
  }

  let numwant = DEFAULT_NUMWANT;
  const numwantBytes = params.get('numwant');
  if (numwantBytes !== undefined && numwantBytes.length > 0) {
    const text = latin1String(numwantBytes);
    if (!/^-?[0-9]{1,24}$/.test(text)) return { ok: false, failure: 'numwant must be a decimal integer' };
    // Some clients send -1 for "the default".
    numwant = text.startsWith('-') ? DEFAULT_NUMWANT : Math.min(Number(text), MAX_NUMWANT);
  }

  const eventText = latin1String(params.get('event') ?? new Uint8Array(0));
  const event: AnnounceEvent =
    eventText === 'started' || eventText === 'completed' || eventText === 'stopped' ? eventText : 'empty';
  const compactText = latin1String(params.get('compact') ?? new Uint8Array(0));
  const noPeerIdText = latin1String(params.get('no_peer_id') ?? new Uint8Array(0));
  const ipBytes = params.get('ip');

  return {
    ok: true,
    query: {
      infoHash,
      peerId,
      port,
      uploaded: counts.uploaded ?? 0,
      downloaded: counts.downloaded ?? 0,
      ...(counts.left === undefined ? {} : { left: counts.left }),
      event,
      compact: compactText !== '0',
      noPeerId: noPeerIdText === '1',
      numwant,
      ...(ipBytes === undefined ? {} : { ip: latin1String(ipBytes) }),
    },
  };
}

/** Every value of one parameter (scrape may repeat info_hash); undefined when malformed. */
export function queryValues(query: string, wanted: string): Uint8Array[] | undefined {
  if (query.length > MAX_TRACKER_URL_LENGTH) return undefined;
  const out: Uint8Array[] = [];
  for (const part of query.split('&')) {
    const equals = part.indexOf('=');
    if (equals < 0) continue;
    const key = percentDecode(part.slice(0, equals));
    if (key === undefined || latin1String(key) !== wanted) continue;
    const value = percentDecode(part.slice(equals + 1));
    if (value === undefined) return undefined;
    out.push(value);
  }
  return out;
}
