/**
 * Fetching a torrent's info dictionary from peers over TCP (BEP 9), for a magnet link.
 *
 * Peers are tried a few at a time (`concurrency`); each attempt has its own deadline and the whole
 * fetch another. A peer that could not be reached or went quiet is tried again later, up to
 * `attemptsPerPeer` times; a peer that broke the protocol or sent metadata that does not hash to the
 * info hash is dropped for good. The first verified info dictionary wins and every other connection
 * is closed. Never throws: the outcome is a result whose failure lists what each peer did wrong.
 */
import net from 'node:net';
import type { Sha1 } from '../engine/hash.ts';
import {
  MetadataExchange,
  type MetadataExchangeError,
  type MetadataExchangeErrorCode,
} from '../engine/metadata-exchange.ts';
import type { HostPort } from './tracker-client.ts';

/** Peers we keep from all sources together; the rest are ignored. */
export const MAX_METADATA_PEERS = 200;
export const DEFAULT_METADATA_CONCURRENCY = 4;
export const DEFAULT_PEER_TIMEOUT_MS = 10_000;
export const DEFAULT_ATTEMPTS_PER_PEER = 2;

/** Why one attempt on one peer failed. */
export type PeerFailureCode =
  | MetadataExchangeErrorCode
  /** TCP connect failed (refused, unreachable, DNS). */
  | 'connect-failed'
  /** No metadata within the per-peer deadline. */
  | 'peer-timeout'
  /** The peer closed the connection before the metadata was complete. */
  | 'connection-closed';

export interface PeerFailure {
  readonly code: PeerFailureCode;
  readonly peer: string;
  readonly message: string;
}

export type MetadataFetchErrorCode =
  /** No peer to ask. */
  | 'no-peers'
  /** Every peer failed or was dropped. */
  | 'all-peers-failed'
  /** The total deadline passed first. */
  | 'timed-out';

export interface MetadataFetchError {
  readonly code: MetadataFetchErrorCode;
  readonly message: string;
  /** Every failed attempt, in the order they failed. */
  readonly failures: readonly PeerFailure[];
}

export type MetadataFetchResult =
  | {
      readonly ok: true;
      readonly info: Uint8Array;
      readonly peer: string;
      readonly failures: readonly PeerFailure[];
    }
  | { readonly ok: false; readonly error: MetadataFetchError };

export interface MetadataFetchOptions {
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly peers: readonly HostPort[];
  readonly sha1: Sha1;
  /** Deadline for the whole fetch. */
  readonly totalTimeoutMs: number;
  readonly peerTimeoutMs?: number;
  /** Connections open at once. */
  readonly concurrency?: number;
  /** Tries of one peer that failed to connect, timed out or hung up. */
  readonly attemptsPerPeer?: number;
  /** Told of every failed attempt as it happens (for the terminal). */
  readonly onFailure?: (failure: PeerFailure) => void;
}

/** Failures after which a peer is worth another try: the network's fault, not the peer's lie. */
const RETRYABLE: ReadonlySet<PeerFailureCode> = new Set([
  'connect-failed',
  'peer-timeout',
  'connection-closed',
]);

export function formatPeer(peer: HostPort): string {
  return peer.host.includes(':') ? `[${peer.host}]:${peer.port}` : `${peer.host}:${peer.port}`;
}

/** Unique peers in the order given, at most `MAX_METADATA_PEERS`. */
export function uniquePeers(peers: readonly HostPort[]): HostPort[] {
  const seen = new Set<string>();
  const out: HostPort[] = [];
  for (const peer of peers) {
    const key = formatPeer(peer);
    if (seen.has(key) || out.length >= MAX_METADATA_PEERS) continue;
    seen.add(key);
    out.push(peer);
  }
  return out;
}

/** Fetches and verifies the info dictionary. Never throws. */
export function fetchMetadata(options: MetadataFetchOptions): Promise<MetadataFetchResult> {
  const peers = uniquePeers(options.peers);
  if (peers.length === 0) {
    return Promise.resolve({
      ok: false,
      error: { code: 'no-peers', message: 'no peer to ask for the metadata', failures: [] },
    });
  }
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_METADATA_CONCURRENCY);
  const attemptsPerPeer = Math.max(1, options.attemptsPerPeer ?? DEFAULT_ATTEMPTS_PER_PEER);
  const peerTimeoutMs = options.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
  return new Promise((resolve) => {
    const failures: PeerFailure[] = [];
    const queue = peers.map((peer) => ({ peer, attempt: 1 }));
    const open = new Set<() => void>();
    let finished = false;
    const finish = (result: MetadataFetchResult): void => {
      if (finished) return;
      finished = true;
      clearTimeout(totalTimer);
      for (const close of open) close();
      open.clear();
      resolve(result);
    };
    const totalTimer = setTimeout(() => {
      finish({
        ok: false,
        error: {
          code: 'timed-out',
          message: `no peer gave the metadata within ${(options.totalTimeoutMs / 1000).toFixed(0)} s`,
          failures,
        },
      });
    }, options.totalTimeoutMs);
    const next = (): void => {
      while (!finished && open.size < concurrency && queue.length > 0) {
        const { peer, attempt } = queue.shift() as { peer: HostPort; attempt: number };
        let close = (): void => {};
        const done = (outcome: AttemptOutcome): void => {
          open.delete(close);
          if (finished) return;
          if (outcome.ok) {
            finish({ ok: true, info: outcome.info, peer: formatPeer(peer), failures });
            return;
          }
          failures.push(outcome.failure);
          options.onFailure?.(outcome.failure);
          if (RETRYABLE.has(outcome.failure.code) && attempt < attemptsPerPeer)
            queue.push({ peer, attempt: attempt + 1 });
          if (open.size === 0 && queue.length === 0) {
            finish({
              ok: false,
              error: {
                code: 'all-peers-failed',
                message: `none of ${peers.length} peer(s) gave the metadata`,
                failures,
              },
            });
            return;
          }
          next();
        };
        close = attemptPeer(peer, options, peerTimeoutMs, done);
        open.add(close);
      }
    };
    next();
  });
}

type AttemptOutcome = { ok: true; info: Uint8Array } | { ok: false; failure: PeerFailure };

/** One connection to one peer; calls `done` exactly once. Returns a function that aborts it. */
function attemptPeer(
  peer: HostPort,
  options: MetadataFetchOptions,
  timeoutMs: number,
  done: (outcome: AttemptOutcome) => void,
): () => void {
  const label = formatPeer(peer);
  const exchange = new MetadataExchange(options.infoHash, options.peerId, options.sha1);
  const socket = net.connect({ host: peer.host, port: peer.port });
  let connected = false;
  let over = false;
  const end = (outcome: AttemptOutcome): void => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    socket.destroy();
    done(outcome);
  };
  const failed = (code: PeerFailureCode, message: string): void =>
    end({ ok: false, failure: { code, peer: label, message } });
  const timer = setTimeout(
    () => failed('peer-timeout', `no metadata within ${(timeoutMs / 1000).toFixed(0)} s`),
    timeoutMs,
  );
  socket.setNoDelay(true);
  socket.on('connect', () => {
    connected = true;
    for (const bytes of exchange.opening()) socket.write(bytes);
  });
  socket.on('data', (data: Buffer) => {
    const step = exchange.receive(new Uint8Array(data.buffer, data.byteOffset, data.length));
    if (step.kind === 'continue') {
      for (const bytes of step.send) socket.write(bytes);
    } else if (step.kind === 'done') {
      end({ ok: true, info: step.info });
    } else {
      const error: MetadataExchangeError = step.error;
      failed(error.code, error.message);
    }
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    if (connected) failed('connection-closed', `connection failed (${error.code ?? error.message})`);
    else failed('connect-failed', `cannot connect (${error.code ?? error.message})`);
  });
  socket.on('close', () => failed('connection-closed', 'the peer closed the connection'));
  return () => {
    over = true;
    clearTimeout(timer);
    socket.destroy();
  };
}
