/**
 * The peers' side of the tracker: HTTP announces (BEP 3, compact BEP 23 and BEP 7 `peers6`, the
 * dictionary model too) and fetching the `.torrent` from the owner. Plain `node:http` GETs to
 * exactly the address given: no redirects followed, no keep-alive, bounded response size, a
 * deadline on the whole exchange. Nothing here throws; every failure is `{ ok: false, error }`.
 */
import http from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { type BencodeDictionary, decodeBencode } from '../engine/bencode.ts';
import { encodeBinaryParam } from './announce-query.ts';
import { DOWNLOAD_FROM_KEY } from './announce-response.ts';
import {
  decodeCompactEntry,
  decodeCompactPeers,
  IPV4_ENTRY_BYTES,
  IPV6_ENTRY_BYTES,
} from './compact-peers.ts';

export interface AnnounceRequest {
  readonly announceUrl: string;
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly uploaded: number;
  readonly downloaded: number;
  readonly left: number;
  readonly event?: 'started' | 'completed' | 'stopped';
  readonly numwant?: number;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface AnnounceResponse {
  /** As sent by the tracker, raised to at least 1. */
  intervalSeconds: number;
  minIntervalSeconds?: number;
  /** IPv4 and IPv6 peers; entries with port 0 or a host name instead of an IP are skipped. */
  peers: HostPort[];
  /** The ring neighbour to download from (`swarm download from`), when the tracker names one. */
  downloadFrom?: HostPort;
  complete?: number;
  incomplete?: number;
  warning?: string;
}

export type AnnounceOutcome = { ok: true; response: AnnounceResponse } | { ok: false; error: string };

export interface AnnounceOptions {
  /** Deadline for the whole exchange; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Largest response body accepted; default 1 MiB. */
  readonly maxResponseBytes?: number;
}

export interface FetchTorrentOptions {
  /** Deadline for the whole exchange; default 10000 ms. */
  readonly timeoutMs?: number;
  /** Largest torrent accepted; default 16 MiB. */
  readonly maxBytes?: number;
}

const DEFAULT_ANNOUNCE_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1 << 20;
const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_TORRENT_BYTES = 16 << 20;
const FAILURE_PREFIX = 'tracker: ';

/** One announce. Never throws. */
export async function announce(
  request: AnnounceRequest,
  options: AnnounceOptions = {},
): Promise<AnnounceOutcome> {
  const url = buildAnnounceUrl(request);
  if (!url.ok) return url;
  const fetched = await httpGet(
    url.url,
    options.timeoutMs ?? DEFAULT_ANNOUNCE_TIMEOUT_MS,
    options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
  );
  if (!fetched.ok) return fetched;
  const parsed = parseAnnounceResponse(fetched.body);
  // Trackers put failure reasons in bodies of any status; otherwise only a 200 counts.
  if (fetched.status === 200 || (!parsed.ok && parsed.error.startsWith(FAILURE_PREFIX))) return parsed;
  return { ok: false, error: `tracker answered HTTP ${fetched.status}` };
}

/** GET http://host:port/torrent from the owner. Never throws. */
export async function fetchTorrent(
  ownerHostPort: string,
  options: FetchTorrentOptions = {},
): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; error: string }> {
  const owner = parseHostPort(ownerHostPort);
  if (owner === undefined)
    return { ok: false, error: `not a HOST:PORT address: ${JSON.stringify(ownerHostPort)}` };
  const host = isIPv6(owner.host) ? `[${owner.host}]` : owner.host;
  const fetched = await httpGet(
    `http://${host}:${owner.port}/torrent`,
    options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
    options.maxBytes ?? DEFAULT_MAX_TORRENT_BYTES,
  );
  if (!fetched.ok) return fetched;
  if (fetched.status !== 200)
    return { ok: false, error: `owner answered HTTP ${fetched.status} for /torrent` };
  if (fetched.body.length === 0) return { ok: false, error: 'owner sent an empty torrent' };
  return { ok: true, bytes: fetched.body };
}

/** `host:port` or `[v6]:port`; undefined unless the port is 1..65535 and the host non-empty. */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^\[([^\]]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([^:[\]\s/?#@]+):([0-9]{1,5})$/.exec(text);
  if (match === null) return undefined;
  const host = match[1] ?? '';
  const port = Number(match[2]);
  if (host.length === 0 || port < 1 || port > 65535) return undefined;
  return { host, port };
}

function buildAnnounceUrl(
  request: AnnounceRequest,
): { ok: true; url: string } | { ok: false; error: string } {
  if (request.infoHash.length !== 20) return { ok: false, error: 'info hash must be 20 bytes' };
  if (request.peerId.length !== 20) return { ok: false, error: 'peer id must be 20 bytes' };
  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) {
    return { ok: false, error: `port ${request.port} is not 1..65535` };
  }
  let base: URL;
  try {
    base = new URL(request.announceUrl);
  } catch {
    return { ok: false, error: `not a URL: ${JSON.stringify(request.announceUrl)}` };
  }
  if (base.protocol !== 'http:')
    return { ok: false, error: `only http:// trackers are supported, not ${base.protocol}` };
  const count = (value: number): string =>
    String(Number.isFinite(value) ? Math.max(0, Math.min(Math.floor(value), Number.MAX_SAFE_INTEGER)) : 0);
  const params = [
    `info_hash=${encodeBinaryParam(request.infoHash)}`,
    `peer_id=${encodeBinaryParam(request.peerId)}`,
    `port=${request.port}`,
    `uploaded=${count(request.uploaded)}`,
    `downloaded=${count(request.downloaded)}`,
    `left=${count(request.left)}`,
    'compact=1',
  ];
  if (request.event !== undefined) params.push(`event=${request.event}`);
  if (request.numwant !== undefined) params.push(`numwant=${count(request.numwant)}`);
  const separator = base.search.length > 1 ? '&' : base.search === '?' ? '' : '?';
  const withoutHash = base.href.slice(0, base.href.length - base.hash.length);
  return { ok: true, url: `${withoutHash}${separator}${params.join('&')}` };
}

// ---------------------------------------------------------------------------------------------------
// Response parsing

function text(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

function asCount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** Parses a bencoded announce answer. A `failure reason` becomes an error starting with "tracker: ". */
export function parseAnnounceResponse(body: Uint8Array): AnnounceOutcome {
  const decoded = decodeBencode(body, { maxDepth: 8 });
  if (!decoded.ok) return { ok: false, error: `tracker answer is not bencoded: ${decoded.error.message}` };
  const dict = decoded.value;
  if (!(dict instanceof Map)) return { ok: false, error: 'tracker answer is not a dictionary' };
  const failure = dict.get('failure reason');
  if (failure instanceof Uint8Array) return { ok: false, error: `${FAILURE_PREFIX}${text(failure)}` };
  const interval = asCount(dict.get('interval'));
  if (interval === undefined) return { ok: false, error: 'tracker answer has no valid interval' };

  const peers: HostPort[] = [];
  const compact = dict.get('peers');
  if (compact instanceof Uint8Array) {
    const decoded = decodeCompactPeers(compact, IPV4_ENTRY_BYTES);
    if (!decoded.ok) return decoded;
    peers.push(...decoded.peers);
  } else if (Array.isArray(compact)) {
    for (const item of compact) {
      if (!(item instanceof Map)) continue;
      pushPeer(peers, dictionaryPeer(item));
    }
  } else if (compact !== undefined) {
    return { ok: false, error: 'tracker answer has peers of the wrong type' };
  }
  const peers6 = dict.get('peers6');
  if (peers6 instanceof Uint8Array) {
    const decoded = decodeCompactPeers(peers6, IPV6_ENTRY_BYTES);
    if (!decoded.ok) return decoded;
    peers.push(...decoded.peers);
  }

  const response: AnnounceResponse = { intervalSeconds: Math.max(1, interval), peers };
  const minInterval = asCount(dict.get('min interval'));
  if (minInterval !== undefined) response.minIntervalSeconds = minInterval;
  const complete = asCount(dict.get('complete'));
  if (complete !== undefined) response.complete = complete;
  const incomplete = asCount(dict.get('incomplete'));
  if (incomplete !== undefined) response.incomplete = incomplete;
  const warning = dict.get('warning message');
  if (warning instanceof Uint8Array) response.warning = text(warning);
  const ring = dict.get(DOWNLOAD_FROM_KEY);
  if (ring instanceof Uint8Array) {
    const target = decodeCompactEntry(ring);
    if (target !== undefined) response.downloadFrom = target;
  }
  return { ok: true, response };
}

function pushPeer(peers: HostPort[], peer: HostPort | undefined): void {
  if (peer !== undefined) peers.push(peer);
}

function dictionaryPeer(item: BencodeDictionary): HostPort | undefined {
  const ip = item.get('ip');
  const port = item.get('port');
  if (!(ip instanceof Uint8Array) || ip.length > 64 || typeof port !== 'number') return undefined;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const host = text(ip);
  if (isIPv4(host)) return { host, port };
  if (isIPv6(host)) return { host: host.toLowerCase(), port };
  return undefined; // host names are not followed
}

// ---------------------------------------------------------------------------------------------------
// HTTP

type GetResult = { ok: true; status: number; body: Uint8Array } | { ok: false; error: string };

/** One bounded GET. Never rejects. */
function httpGet(url: string, timeoutMs: number, maxBytes: number): Promise<GetResult> {
  return new Promise((resolve) => {
    let settled = false;
    let request: http.ClientRequest | undefined;
    const finish = (result: GetResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request?.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, error: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    try {
      request = http.get(url, {
        agent: false,
        headers: { 'user-agent': 'swarm/0.1', 'accept-encoding': 'identity', connection: 'close' },
      });
    } catch (error) {
      finish({ ok: false, error: `bad request: ${(error as Error).message}` });
      return;
    }
    request.on('error', (error) => finish({ ok: false, error: error.message }));
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        finish({ ok: false, error: `answer of ${declared} bytes is over the ${maxBytes}-byte limit` });
        return;
      }
      const parts: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > maxBytes) {
          finish({ ok: false, error: `answer is over the ${maxBytes}-byte limit` });
          return;
        }
        parts.push(chunk);
      });
      response.on('end', () => {
        finish({ ok: true, status, body: new Uint8Array(Buffer.concat(parts)) });
      });
      response.on('error', (error) => finish({ ok: false, error: error.message }));
      response.on('close', () => {
        if (!response.complete) finish({ ok: false, error: 'answer cut short' });
      });
    });
  });
}
