/**
 * Magnet links (BEP 9): `magnet:?xt=urn:btih:<info hash>&dn=<name>&tr=<tracker>&x.pe=<host:port>`.
 *
 * A magnet link comes from anywhere (a web page, a chat), so `parseMagnet` treats it as hostile: it
 * never throws, bounds the link's length and every list in it, and refuses anything it cannot read
 * exactly. Parameters we do not use (`ws`, `xs`, `as`, `kt`, `so`, ...) are ignored, as BEP 9 allows.
 */

import { bytesEqual } from './hash.ts';
import {
  MAX_MAGNET_HOST_LENGTH,
  MAX_MAGNET_LENGTH,
  MAX_MAGNET_NAME_LENGTH,
  MAX_MAGNET_PARAMETERS,
  MAX_MAGNET_PEERS,
  MAX_MAGNET_TRACKER_URL_LENGTH,
  MAX_MAGNET_TRACKERS,
} from './limits.ts';

const INFO_HASH_BYTES = 20;
const BTIH_PREFIX = 'urn:btih:';

export interface MagnetPeer {
  /** An IPv4 address, an IPv6 address (without brackets) or a host name. */
  readonly host: string;
  readonly port: number;
}

export interface Magnet {
  /** The v1 info hash: SHA-1 of the bencoded info dictionary, 20 bytes. */
  readonly infoHash: Uint8Array;
  /** `dn`: a display name only; the file name comes from the metadata. */
  readonly displayName?: string;
  /** `tr`: tracker URLs (http, https or udp), in the link's order, without duplicates. */
  readonly trackers: readonly string[];
  /** `x.pe`: peers to dial directly, in the link's order, without duplicates. */
  readonly peers: readonly MagnetPeer[];
}

export type MagnetErrorCode =
  | 'not-magnet'
  | 'too-long'
  | 'too-many-parameters'
  | 'bad-encoding'
  | 'missing-info-hash'
  | 'bad-info-hash'
  | 'conflicting-info-hash'
  | 'bad-tracker'
  | 'bad-peer'
  | 'bad-display-name';

export interface MagnetError {
  readonly code: MagnetErrorCode;
  readonly message: string;
}

export type ParseMagnetResult =
  | { readonly ok: true; readonly magnet: Magnet }
  | { readonly ok: false; readonly error: MagnetError };

const refuse = (code: MagnetErrorCode, message: string): ParseMagnetResult => ({
  ok: false,
  error: { code, message },
});

/** Parses a magnet link. Never throws. */
export function parseMagnet(link: string): ParseMagnetResult {
  if (link.length > MAX_MAGNET_LENGTH)
    return refuse('too-long', `the magnet link is ${link.length} characters, more than ${MAX_MAGNET_LENGTH}`);
  if (!/^magnet:\?/i.test(link)) return refuse('not-magnet', 'a magnet link starts with "magnet:?"');
  const query = link.slice('magnet:?'.length);
  const pairs = query === '' ? [] : query.split('&');
  if (pairs.length > MAX_MAGNET_PARAMETERS)
    return refuse('too-many-parameters', `more than ${MAX_MAGNET_PARAMETERS} parameters`);
  let infoHash: Uint8Array | undefined;
  let displayName: string | undefined;
  const trackers: string[] = [];
  const peers: MagnetPeer[] = [];
  const peerKeys = new Set<string>();
  for (const pair of pairs) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const key = equals === -1 ? pair : pair.slice(0, equals);
    const value = percentDecode(equals === -1 ? '' : pair.slice(equals + 1), key === 'dn');
    if (value === undefined)
      return refuse('bad-encoding', `parameter ${quote(key)} is not valid percent-encoded UTF-8`);
    if (key === 'xt') {
      const hash = readExactTopic(value);
      if (hash === 'other') continue; // another kind of topic (btmh, ed2k, ...): not ours
      if (!(hash instanceof Uint8Array)) return refuse('bad-info-hash', hash);
      if (infoHash !== undefined && !bytesEqual(infoHash, hash))
        return refuse('conflicting-info-hash', 'two different urn:btih info hashes');
      infoHash = hash;
    } else if (key === 'dn') {
      if (value.length > MAX_MAGNET_NAME_LENGTH)
        return refuse('bad-display-name', `dn is longer than ${MAX_MAGNET_NAME_LENGTH} characters`);
      displayName ??= value;
    } else if (key === 'tr') {
      const problem = trackerProblem(value);
      if (problem !== undefined) return refuse('bad-tracker', problem);
      if (trackers.length < MAX_MAGNET_TRACKERS && !trackers.includes(value)) trackers.push(value);
    } else if (key === 'x.pe') {
      const peer = readPeer(value);
      if (typeof peer === 'string') return refuse('bad-peer', peer);
      const peerKey = `${peer.host}|${peer.port}`;
      if (peers.length < MAX_MAGNET_PEERS && !peerKeys.has(peerKey)) {
        peerKeys.add(peerKey);
        peers.push(peer);
      }
    }
  }
  if (infoHash === undefined) return refuse('missing-info-hash', 'no xt=urn:btih:<info hash> parameter');
  return {
    ok: true,
    magnet: { infoHash, ...(displayName === undefined ? {} : { displayName }), trackers, peers },
  };
}

/** A v1 `urn:btih:` topic's 20 bytes, 'other' for a topic of another kind, or why it is bad. */
function readExactTopic(value: string): Uint8Array | 'other' | string {
  if (value.slice(0, BTIH_PREFIX.length).toLowerCase() !== BTIH_PREFIX) return 'other';
  const hash = value.slice(BTIH_PREFIX.length);
  if (/^[0-9a-fA-F]{40}$/.test(hash)) return fromHex(hash);
  if (/^[A-Za-z2-7]{32}$/.test(hash)) return fromBase32(hash.toUpperCase());
  return `urn:btih: needs 40 hex digits or 32 base32 characters (got ${Math.min(hash.length, 64)} characters)`;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(INFO_HASH_BYTES);
  for (let i = 0; i < INFO_HASH_BYTES; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding; 32 characters are exactly 160 bits. */
function fromBase32(text: string): Uint8Array {
  const out = new Uint8Array(INFO_HASH_BYTES);
  let bits = 0;
  let value = 0;
  let index = 0;
  for (const char of text) {
    value = (value << 5) | BASE32_ALPHABET.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[index++] = (value >> bits) & 0xff;
    }
  }
  return out;
}

/** Why `url` is not a tracker URL we accept, or undefined. */
function trackerProblem(url: string): string | undefined {
  if (url.length > MAX_MAGNET_TRACKER_URL_LENGTH)
    return `a tracker URL is longer than ${MAX_MAGNET_TRACKER_URL_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u0020\u007f]/.test(url)) return 'a tracker URL contains a space or control character';
  if (!/^(https?|udp):\/\/[^/?#@]+(?:[/?#].*)?$/i.test(url))
    return `tracker ${quote(url)} is not an http://, https:// or udp:// URL`;
  return undefined;
}

/** An `x.pe` value: `host:port`, `[ipv6]:port`; a `MagnetPeer` or why it is bad. */
function readPeer(value: string): MagnetPeer | string {
  const match = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65535)
    return `x.pe ${quote(value)} is not host:port with a port from 1 to 65535`;
  const host = match[1] ?? (match[2] as string);
  if (host.length > MAX_MAGNET_HOST_LENGTH)
    return `x.pe host is longer than ${MAX_MAGNET_HOST_LENGTH} characters`;
  if (match[2] !== undefined && (host.startsWith('.') || host.startsWith('-') || host.includes('..')))
    return `x.pe host ${quote(host)} is not a host name`;
  return { host, port };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict percent-decoding as UTF-8 (`+` is a space in `dn` only); undefined for bad input. */
function percentDecode(text: string, plusIsSpace: boolean): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char === '%') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (char === '+' && plusIsSpace) {
      bytes.push(0x20);
    } else {
      const code = char.charCodeAt(0);
      // Outside the escapes a link is ASCII; raw non-ASCII text would be decoded ambiguously.
      if (code > 0x7e) return undefined;
      bytes.push(code);
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
