/**
 * IP addresses as text and bytes: canonical text for comparing a socket's address with an
 * announced one, and the 4- or 16-byte forms the compact peer format carries.
 */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * A socket or `ip` address in canonical text form: IPv4 dotted quad (IPv4-mapped IPv6 unwrapped),
 * IPv6 compressed lower case without a zone; undefined when it is not an IP address.
 */
export function normaliseAddress(address: string): string | undefined {
  const zoneless = address.split('%')[0] ?? '';
  if (isIPv4(zoneless)) return zoneless;
  const bytes = ipv6Bytes(zoneless);
  if (bytes === undefined) return undefined;
  const mapped = bytes.subarray(0, 12).every((byte, i) => byte === (i >= 10 ? 0xff : 0));
  if (mapped) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  return formatIpv6(bytes);
}

/** The 4 bytes of a dotted-quad IPv4 address; undefined when it is not one. */
export function ipv4Bytes(text: string): Uint8Array | undefined {
  if (!isIPv4(text)) return undefined;
  return Uint8Array.from(text.split('.').map(Number));
}

/** The 16 bytes of an IPv6 address (an embedded dotted quad too); undefined when it is not one. */
export function ipv6Bytes(text: string): Uint8Array | undefined {
  if (!isIPv6(text)) return undefined;
  let body = text;
  const lastColon = body.lastIndexOf(':');
  const tail = body.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4Bytes(tail);
    if (v4 === undefined) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = v4;
    body = `${body.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string | undefined): string[] =>
    part === undefined || part === '' ? [] : part.split(':');
  const head = groupsOf(halves[0]);
  const rest = groupsOf(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...new Array<string>(fill).fill('0'), ...rest];
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const value = Number.parseInt(groups[i] ?? '', 16);
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) return undefined;
    out[i * 2] = value >> 8;
    out[i * 2 + 1] = value & 0xff;
  }
  return out;
}

/** RFC 5952 text: lower case, the longest run (of two or more) of zero groups compressed. */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((group) => group.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** True for `::1` and 127.0.0.0/8, given a normalised address. */
export function isLoopback(normalised: string): boolean {
  return normalised === '::1' || (isIPv4(normalised) && normalised.startsWith('127.'));
}
