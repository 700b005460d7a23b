/**
 * `peers.txt` in a peer's folder, next to `summary.txt`: the addresses it reached last time, one
 * `host:port` a line, so a restart dials them before (or without) a tracker. Written atomically
 * (temp + rename); read as hostile input: a bounded size and count, each line parsed strictly,
 * anything else skipped.
 */
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalAddress } from '../engine/pex.ts';
import { placeFile } from './file-io.ts';

export const PEERS_FILE_NAME = 'peers.txt';
/** Addresses kept at most (the most recent ones). */
export const MAX_SAVED_PEERS = 64;
/** Bytes of `peers.txt` read at most: 64 addresses of the longest IPv6 form fit easily. */
export const MAX_PEERS_FILE_BYTES = 8192;

/** The addresses in a `peers.txt` text: IP `host:port` lines, canonical, without repeats, bounded. */
export function parsePeersFile(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.slice(0, MAX_PEERS_FILE_BYTES).split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const address = canonicalAddress(trimmed);
    if (address !== undefined) out.add(address);
    if (out.size >= MAX_SAVED_PEERS) break;
  }
  return [...out];
}

/** Reads the folder's `peers.txt`; none, unreadable or oversized is treated as what can be read of it. */
export async function readPeersFile(dir: string): Promise<string[]> {
  let handle: nodeFs.FileHandle | undefined;
  try {
    handle = await nodeFs.open(join(dir, PEERS_FILE_NAME), 'r');
    const buffer = new Uint8Array(MAX_PEERS_FILE_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return parsePeersFile(new TextDecoder('utf-8', { fatal: false }).decode(buffer.subarray(0, bytesRead)));
  } catch {
    return [];
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Replaces the folder's `peers.txt` with the last `MAX_SAVED_PEERS` of `addresses`. */
export async function writePeersFile(dir: string, addresses: readonly string[]): Promise<void> {
  const kept = parsePeersFile(addresses.slice(-MAX_SAVED_PEERS).join('\n'));
  const text = `# addresses this peer reached, dialled again on restart\n${kept.map((a) => `${a}\n`).join('')}`;
  await placeFile(nodeFs, dir, PEERS_FILE_NAME, new TextEncoder().encode(text), false);
}
