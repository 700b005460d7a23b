/**
 * Peer exchange messages (BEP 11, `ut_pex` over the BEP 10 extension protocol): the addresses a
 * peer has connected to (`added`, with one flag byte each in `added.f`) and dropped since its last
 * message, as compact entries: 6 bytes for IPv4 (`added`, `dropped`), 18 for IPv6 (`added6`,
 * `dropped6`), each an address and a big-endian port.
 *
 * Pure and hostile-input safe: a message that lies about its own shape (truncated, lengths that are
 * not whole entries, more entries than a peer may send, port 0, over `MAX_PEX_PAYLOAD_BYTES`) is a
 * `WireError`; duplicates are dropped; an entry naming us is refused by `screenPexAdded`.
 * Addresses are our usual `host:port` text, IPv6 hosts unbracketed, as the drivers dial them.
 */
import { type BencodeDictionary, type BencodeValue, decodeBencode, encodeBencode } from './bencode.ts';
import { type WireError, type WireErrorCode, wireError } from './errors.ts';
import { MAX_PEX_PAYLOAD_BYTES, MAX_PEX_RECEIVED_ENTRIES } from './limits.ts';

/** The name of peer exchange in the extension handshake's `m` dictionary. */
export const UT_PEX = 'ut_pex';
/** Bytes of one compact IPv4 entry and one IPv6 entry. */
export const IPV4_ENTRY_BYTES = 6;
export const IPV6_ENTRY_BYTES = 18;

/** `added.f` bits (BEP 11): the peer only uploads (a seed); we reached it by dialling it. */
export const PEX_FLAG_SEED = 0x02;
export const PEX_FLAG_REACHABLE = 0x10;

export interface PexEntry {
  readonly address: string;
  readonly flags: number;
}

export interface PexMessage {
  readonly added: readonly PexEntry[];
  readonly dropped: readonly string[];
}

export type PexParse =
  | { readonly ok: true; readonly value: PexMessage }
  | { readonly ok: false; readonly error: WireError };

const BENCODE_LIMITS = { maxDepth: 2, maxItems: 16 } as const;

const fail = (code: WireErrorCode, message: string): PexParse => ({
  ok: false,
  error: wireError(code, message),
});

// ---- addresses ----------------------------------------------------------------------------------

/** Splits `host:port` (IPv6 hosts unbracketed or bracketed); undefined for anything else. */
export function splitAddress(address: string): { host: string; port: number } | undefined {
  const at = address.lastIndexOf(':');
  if (at <= 0) return undefined;
  let host = address.slice(0, at);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const portText = address.slice(at + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}

function parseIpv4(host: string): Uint8Array | undefined {
  const parts = host.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^[0-9]{1,3}$/.test(part) || Number(part) > 255) return undefined;
    out[i] = Number(part);
  }
  return out;
}

function parseIpv6(host: string): Uint8Array | undefined {
  if (host.length > 45 || !/^[0-9a-fA-F:.]+$/.test(host)) return undefined;
  const halves = host.split('::');
  if (halves.length > 2) return undefined;
  const groups = (text: string): number[] | undefined => {
    if (text === '') return [];
    const out: number[] = [];
    for (const [i, part] of text.split(':').entries()) {
      const last = i === text.split(':').length - 1;
      const v4 = last && part.includes('.') ? parseIpv4(part) : undefined;
      if (v4 !== undefined)
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      else if (/^[0-9a-fA-F]{1,4}$/.test(part)) out.push(Number.parseInt(part, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (const [i, group] of all.entries()) {
    out[2 * i] = group >> 8;
    out[2 * i + 1] = group & 0xff;
  }
  return out;
}

const IPV4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** The compact entry for `host:port`: 6 bytes for IPv4 (and IPv4-mapped IPv6), 18 for IPv6. */
export function compactAddress(address: string): Uint8Array | undefined {
  const split = splitAddress(address);
  if (split === undefined) return undefined;
  let ip = parseIpv4(split.host) ?? parseIpv6(split.host);
  if (ip === undefined) return undefined;
  if (ip.length === 16 && IPV4_MAPPED_PREFIX.every((byte, i) => ip?.[i] === byte)) ip = ip.subarray(12);
  const out = new Uint8Array(ip.length + 2);
  out.set(ip);
  out[ip.length] = split.port >> 8;
  out[ip.length + 1] = split.port & 0xff;
  return out;
}

function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // The longest run of two or more zero groups is written `::` (RFC 5952).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (list: number[]): string => list.map((group) => group.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** `host:port` of one compact entry (6 or 18 bytes), or undefined for port 0. */
export function entryAddress(entry: Uint8Array): string | undefined {
  const at = entry.length - 2;
  const port = ((entry[at] as number) << 8) | (entry[at + 1] as number);
  if (port === 0) return undefined;
  const host = at === 4 ? Array.from(entry.subarray(0, 4)).join('.') : formatIpv6(entry.subarray(0, 16));
  return `${host}:${port}`;
}

/** The canonical text of an address (so `::ffff:1.2.3.4:80` and `1.2.3.4:80` are one); undefined if not an IP. */
export function canonicalAddress(address: string): string | undefined {
  const compact = compactAddress(address);
  return compact === undefined ? undefined : entryAddress(compact);
}

// ---- encoding -----------------------------------------------------------------------------------

/** The payload of a `ut_pex` message; addresses that are not IP addresses are left out. */
export function encodePexMessage(message: PexMessage): Uint8Array {
  const lists = {
    added: [] as Uint8Array[],
    addedFlags: [] as number[],
    added6: [] as Uint8Array[],
    added6Flags: [] as number[],
    dropped: [] as Uint8Array[],
    dropped6: [] as Uint8Array[],
  };
  for (const entry of message.added) {
    const compact = compactAddress(entry.address);
    if (compact === undefined) continue;
    const v4 = compact.length === IPV4_ENTRY_BYTES;
    (v4 ? lists.added : lists.added6).push(compact);
    (v4 ? lists.addedFlags : lists.added6Flags).push(entry.flags & 0xff);
  }
  for (const address of message.dropped) {
    const compact = compactAddress(address);
    if (compact !== undefined)
      (compact.length === IPV4_ENTRY_BYTES ? lists.dropped : lists.dropped6).push(compact);
  }
  const concat = (parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  };
  const dict: BencodeDictionary = new Map<string, BencodeValue>([
    ['added', concat(lists.added)],
    ['added.f', Uint8Array.from(lists.addedFlags)],
    ['added6', concat(lists.added6)],
    ['added6.f', Uint8Array.from(lists.added6Flags)],
    ['dropped', concat(lists.dropped)],
    ['dropped6', concat(lists.dropped6)],
  ]);
  return encodeBencode(dict);
}

// ---- parsing ------------------------------------------------------------------------------------

/** The entries of one compact list, checked: whole entries, not too many, no port 0. */
function readEntries(dict: BencodeDictionary, key: string, entryBytes: number): Uint8Array[] | PexParse {
  const value = dict.get(key);
  if (value === undefined) return [];
  if (!(value instanceof Uint8Array)) return fail('bad-pex-message', `ut_pex ${key} is not a byte string`);
  if (value.length % entryBytes !== 0)
    return fail(
      'bad-pex-length',
      `ut_pex ${key} of ${value.length} bytes is not whole ${entryBytes}-byte entries`,
    );
  const count = value.length / entryBytes;
  if (count > MAX_PEX_RECEIVED_ENTRIES)
    return fail(
      'pex-too-many-entries',
      `ut_pex ${key} with ${count} entries (at most ${MAX_PEX_RECEIVED_ENTRIES})`,
    );
  const entries: Uint8Array[] = [];
  for (let at = 0; at < value.length; at += entryBytes) {
    const entry = value.subarray(at, at + entryBytes);
    if (entry[entryBytes - 2] === 0 && entry[entryBytes - 1] === 0)
      return fail('pex-bad-address', `ut_pex ${key} entry ${at / entryBytes} has port 0`);
    entries.push(entry);
  }
  return entries;
}

/** Flags for `count` entries: the `.f` string when it has one byte per entry, else none (0). */
function readFlags(dict: BencodeDictionary, key: string, count: number): Uint8Array {
  const value = dict.get(key);
  return value instanceof Uint8Array && value.length === count ? value : new Uint8Array(count);
}

/** Parses a `ut_pex` payload; duplicates within it are dropped, first one kept. */
export function parsePexMessage(payload: Uint8Array): PexParse {
  const decoded = decodeBencode(payload, BENCODE_LIMITS);
  if (!decoded.ok) return fail('bad-pex-message', `ut_pex message is not bencoded: ${decoded.error.message}`);
  const dict = decoded.value;
  if (!(dict instanceof Map)) return fail('bad-pex-message', 'ut_pex message is not a dictionary');
  const lists: Uint8Array[][] = [];
  for (const [key, bytes] of [
    ['added', IPV4_ENTRY_BYTES],
    ['added6', IPV6_ENTRY_BYTES],
    ['dropped', IPV4_ENTRY_BYTES],
    ['dropped6', IPV6_ENTRY_BYTES],
  ] as const) {
    const entries = readEntries(dict, key, bytes);
    if (!Array.isArray(entries)) return entries;
    lists.push(entries);
  }
  // After the lists, so that one too long is named for what it is; anything else this big is junk.
  if (payload.length > MAX_PEX_PAYLOAD_BYTES)
    return fail(
      'pex-oversized',
      `ut_pex message of ${payload.length} bytes (at most ${MAX_PEX_PAYLOAD_BYTES})`,
    );
  const [added4, added6, dropped4, dropped6] = lists as [
    Uint8Array[],
    Uint8Array[],
    Uint8Array[],
    Uint8Array[],
  ];
  const flags4 = readFlags(dict, 'added.f', added4.length);
  const flags6 = readFlags(dict, 'added6.f', added6.length);
  const added = new Map<string, number>();
  const addAll = (entries: Uint8Array[], flags: Uint8Array): void => {
    for (const [i, entry] of entries.entries()) {
      const address = entryAddress(entry) as string;
      if (!added.has(address)) added.set(address, flags[i] as number);
    }
  };
  addAll(added4, flags4);
  addAll(added6, flags6);
  const dropped = new Set([...dropped4, ...dropped6].map((entry) => entryAddress(entry) as string));
  return {
    ok: true,
    value: { added: [...added].map(([address, flags]) => ({ address, flags })), dropped: [...dropped] },
  };
}

/** A parsed message's added addresses, split into those to learn and those refused. */
export interface ScreenedPex {
  readonly fresh: readonly string[];
  readonly refused: readonly WireError[];
}

/**
 * The added addresses of `message` worth learning: each naming us (`own`) is refused with a typed
 * `pex-self-address`, and those in `known` (peers we are connected to) are left out silently.
 */
export function screenPexAdded(
  message: PexMessage,
  own: ReadonlySet<string>,
  known: ReadonlySet<string>,
): ScreenedPex {
  const fresh: string[] = [];
  const refused: WireError[] = [];
  for (const { address } of message.added) {
    if (own.has(address))
      refused.push(wireError('pex-self-address', `ut_pex names our own address ${address}`));
    else if (!known.has(address)) fresh.push(address);
  }
  return { fresh, refused };
}
