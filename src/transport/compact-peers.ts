/**
 * The compact peer format (BEP 23 `peers`, BEP 7 `peers6`): each peer is its address (4 bytes for
 * IPv4, 16 for IPv6) followed by its port, big-endian. The tracker writes it and the client reads
 * it, so both sides share this one module.
 */
import { concatBytes } from '../engine/bytes.ts';
import { formatIpv6, ipv4Bytes, ipv6Bytes } from './ip-address.ts';

/** One IPv4 entry: 4 address bytes and 2 port bytes. */
export const IPV4_ENTRY_BYTES = 6;
/** One IPv6 entry: 16 address bytes and 2 port bytes. */
export const IPV6_ENTRY_BYTES = 18;

export interface CompactPeer {
  readonly host: string;
  readonly port: number;
}

/** A compact peer entry: 4-byte IPv4 or 16-byte IPv6 address, then the port, big-endian. */
export function encodeCompactEntry(host: string, port: number): Uint8Array | undefined {
  const address = ipv4Bytes(host) ?? ipv6Bytes(host);
  if (address === undefined) return undefined;
  const out = new Uint8Array(address.length + 2);
  out.set(address);
  out[address.length] = (port >> 8) & 0xff;
  out[address.length + 1] = port & 0xff;
  return out;
}

/** A 6-byte (IPv4) or 18-byte (IPv6) compact entry; undefined for port 0 or any other length. */
export function decodeCompactEntry(entry: Uint8Array): CompactPeer | undefined {
  if (entry.length !== IPV4_ENTRY_BYTES && entry.length !== IPV6_ENTRY_BYTES) return undefined;
  const addressLength = entry.length - 2;
  const port = ((entry[addressLength] ?? 0) << 8) | (entry[addressLength + 1] ?? 0);
  if (port === 0) return undefined;
  const address = entry.subarray(0, addressLength);
  const host = addressLength === 4 ? address.join('.') : formatIpv6(address);
  return { host, port };
}

/** The `peers` (IPv4) and `peers6` (IPv6) strings for a list; a host that is not an IP is skipped. */
export function encodeCompactPeers(peers: readonly CompactPeer[]): { peers: Uint8Array; peers6: Uint8Array } {
  const v4: Uint8Array[] = [];
  const v6: Uint8Array[] = [];
  for (const peer of peers) {
    const entry = encodeCompactEntry(peer.host, peer.port);
    if (entry === undefined) continue;
    (entry.length === IPV4_ENTRY_BYTES ? v4 : v6).push(entry);
  }
  return { peers: concatBytes(v4), peers6: concatBytes(v6) };
}

/**
 * The peers of a `peers` (6-byte entries) or `peers6` (18-byte entries) string, in order; entries
 * with port 0 are skipped. A length that is not a whole number of entries is refused.
 */
export function decodeCompactPeers(
  bytes: Uint8Array,
  entryBytes: typeof IPV4_ENTRY_BYTES | typeof IPV6_ENTRY_BYTES,
): { ok: true; peers: CompactPeer[] } | { ok: false; error: string } {
  if (bytes.length % entryBytes !== 0) {
    const key = entryBytes === IPV4_ENTRY_BYTES ? 'peers' : 'peers6';
    return { ok: false, error: `compact ${key} of ${bytes.length} bytes, not ${entryBytes} each` };
  }
  const peers: CompactPeer[] = [];
  for (let at = 0; at < bytes.length; at += entryBytes) {
    const peer = decodeCompactEntry(bytes.subarray(at, at + entryBytes));
    if (peer !== undefined) peers.push(peer);
  }
  return { ok: true, peers };
}
