/** Where a peer gets its torrent: from the owner over HTTP (retried, visibly), or from a file. */
import { readFile } from 'node:fs/promises';
import { type Metainfo, parseTorrent } from '../engine/metainfo.ts';
import { sha1 } from '../platform/sha1.ts';
import type { HostPort } from '../transport/tracker-client.ts';
import { fetchTorrent } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import { RunFailure } from './command.ts';
import type { Reporter } from './output.ts';
import { formatAddress } from './startup.ts';

export interface LoadedTorrent {
  readonly metainfo: Metainfo;
  readonly bytes: Uint8Array;
}

const FIRST_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 4_000;
const FETCH_TIMEOUT_MS = 5_000;

/** The delays between attempts: doubling from 250 ms, at most 4 s each. */
export function retryDelaysMs(retries: number): number[] {
  return Array.from({ length: retries }, (_, i) =>
    Math.min(FIRST_RETRY_DELAY_MS * 2 ** i, MAX_RETRY_DELAY_MS),
  );
}

/**
 * Fetches the torrent from the owner. Every failed attempt is reported at once with what failed and
 * how long we will keep trying, so an unreachable owner is never a silent wait.
 */
export async function fetchTorrentWithRetry(
  owner: HostPort,
  retries: number,
  reporter: Reporter,
  name: string,
): Promise<LoadedTorrent> {
  const delays = retryDelaysMs(retries);
  let lastError = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    const result = await fetchTorrent(formatAddress(owner), { timeoutMs: FETCH_TIMEOUT_MS });
    if (result.ok) {
      const parsed = parseTorrent(result.bytes, sha1);
      if (!parsed.ok) throw new RunFailure(`the owner sent a bad torrent: ${parsed.error.message}`);
      return { metainfo: parsed.metainfo, bytes: result.bytes };
    }
    lastError = result.error;
    const delayMs = delays[attempt];
    if (delayMs === undefined) break;
    const leftS = (delays.slice(attempt).reduce((sum, ms) => sum + ms, 0) / 1000).toFixed(1);
    reporter.event({ event: 'retry', attempt: attempt + 1, delayMs, error: lastError });
    reporter.notice(
      `${name}: owner ${formatAddress(owner)} not reachable (${lastError}); attempt ${attempt + 2} of ${retries + 1} in ${(delayMs / 1000).toFixed(2)} s, giving up in about ${leftS} s`,
    );
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  throw new RunFailure(
    `owner ${formatAddress(owner)} unreachable after ${retries + 1} attempts (${lastError}); is it running? (--retries sets how often to try)`,
  );
}

/** Reads and checks a .torrent file named on the command line. */
export async function readTorrentFile(path: string, what = '--torrent'): Promise<LoadedTorrent> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new UsageFailure(
      `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const parsed = parseTorrent(bytes, sha1);
  if (!parsed.ok) throw new UsageFailure(`${what} ${path}: ${parsed.error.message}`);
  return { metainfo: parsed.metainfo, bytes };
}
