/**
 * The owner's HTTP tracker (BEP 3 announce, BEP 23 compact peer lists, BEP 7 `peers6`, BEP 48
 * scrape), built as a `node:http` request handler: the owner's port carries BitTorrent and HTTP,
 * and the driver hands each HTTP connection to an `http.Server` whose handler calls `handle`.
 *
 * Ring extension: each announce answer carries `swarm download from`, one compact entry (6 bytes for
 * IPv4, 18 for IPv6) naming the peer the asker should download from. Peers are kept in join order;
 * peer k downloads from peer k+1 and the last from the first, so with one peer there is no entry.
 * Real clients ignore the key.
 *
 * Identity: a slot is keyed by the node NAME of our peer ids (`-SW0100-` + 8-char name slot with
 * '.' padding), so a restarted node (new random tail, maybe a new port or address) takes its slot
 * back and the others learn its new address. Foreign peer ids are keyed by the whole id. A name
 * keeps its join position after `stopped` or a timeout (remembered for up to `maxPeers` names), so
 * a node that leaves and comes back slots back in where it was; foreign ids are forgotten.
 *
 * Everything is bounded: URL length, tracked peers, remembered names, numwant. A bad request gets a
 * bencoded `failure reason` (HTTP 200, as clients expect), never an exception.
 */
import type http from 'node:http';
import {
  type BencodeDictionary,
  type BencodeValue,
  encodeBencode,
  latin1Bytes,
  latin1String,
} from '../engine/bencode.ts';
import { bytesEqual, toHex } from '../engine/hash.ts';
import { nodeNameOf } from '../engine/peer-id.ts';
import {
  type AnnounceQuery,
  MAX_NUMWANT,
  MAX_TRACKER_URL_LENGTH,
  parseAnnounceQuery,
  queryValues,
} from './announce-query.ts';
import {
  type AnnounceResult,
  encodeAnnounceResult,
  encodeFailure,
  type PeerEntry,
} from './announce-response.ts';
import { isLoopback, normaliseAddress } from './ip-address.ts';

export const DEFAULT_MAX_PEERS = 10_000;

export interface TrackerOptions {
  readonly infoHash: Uint8Array;
  readonly torrentBytes: Uint8Array;
  /** Re-announce interval handed to peers (whole seconds, at least 1). */
  readonly intervalSeconds: number;
  /** Forget peers not heard from in this long; default 3 × interval. */
  readonly peerTimeoutMs?: number;
  /** Most peers tracked at once (default 10 000); a new peer beyond it gets a failure reason. */
  readonly maxPeers?: number;
  /** Clock in ms; default `performance.now()` (monotonic). Must never go backwards. */
  readonly now?: () => number;
  /** Uniform in [0, 1), for numwant sampling; default `Math.random`. */
  readonly random?: () => number;
  /**
   * The seeder this tracker runs beside (the swarm's owner): named to every asker, first, so a
   * `.torrent` alone is enough to join. It is not in the ring and never a ring neighbour.
   */
  readonly seed?: PeerEntry;
}

/** A tracked peer, for diagnostics. */
export interface TrackedPeer {
  /** `name:<node name>` for our ids, `id:<hex>` for foreign ones. */
  readonly key: string;
  /** Our node name, when the id is one of ours. */
  readonly name?: string;
  readonly peerId: Uint8Array;
  readonly host: string;
  readonly port: number;
  readonly uploaded: number;
  readonly downloaded: number;
  readonly left?: number;
  /** Position in join order (smaller joined earlier); ring order. */
  readonly joinOrder: number;
  readonly lastSeenMs: number;
}

interface PeerRecord {
  readonly key: string;
  readonly name: string | undefined;
  peerId: Uint8Array;
  host: string;
  port: number;
  uploaded: number;
  downloaded: number;
  left: number | undefined;
  readonly joinOrder: number;
  lastSeenMs: number;
}

// ---------------------------------------------------------------------------------------------------
// Identity

function slotKey(peerId: Uint8Array): { key: string; name: string | undefined } {
  const name = nodeNameOf(peerId);
  return name === undefined ? { key: `id:${toHex(peerId)}`, name } : { key: `name:${name}`, name };
}

// ---------------------------------------------------------------------------------------------------
// The tracker

export class Tracker {
  private readonly infoHash: Uint8Array;
  private readonly torrentBytes: Uint8Array;
  private readonly intervalSeconds: number;
  private readonly peerTimeoutMs: number;
  private readonly maxPeers: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly seed: PeerEntry | undefined;

  /** Live peers by slot key, in least-recently-announced-first order (re-inserted on every announce). */
  private readonly byKey = new Map<string, PeerRecord>();
  /** Live peers sorted by join order: the ring. */
  private readonly ring: PeerRecord[] = [];
  /** `host|port` → slot key, to evict a stale record when a new id shows up at its address. */
  private readonly byAddress = new Map<string, string>();
  /** Join positions of named slots, kept after they leave (bounded, oldest forgotten first). */
  private readonly joinOrders = new Map<string, number>();
  private nextJoinOrder = 0;
  private seeders = 0;
  /** `completed` events seen (scrape's `downloaded`). */
  private completedCount = 0;
  private lastNow = Number.NEGATIVE_INFINITY;

  constructor(options: TrackerOptions) {
    if (options.infoHash.length !== 20) throw new Error('Tracker: infoHash must be 20 bytes');
    if (!Number.isSafeInteger(options.intervalSeconds) || options.intervalSeconds < 1) {
      throw new Error(`Tracker: intervalSeconds must be a positive integer, got ${options.intervalSeconds}`);
    }
    this.infoHash = options.infoHash.slice();
    this.torrentBytes = options.torrentBytes;
    this.intervalSeconds = options.intervalSeconds;
    this.peerTimeoutMs = options.peerTimeoutMs ?? 3 * options.intervalSeconds * 1000;
    if (!(this.peerTimeoutMs > 0)) throw new Error('Tracker: peerTimeoutMs must be positive');
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    if (!Number.isSafeInteger(this.maxPeers) || this.maxPeers < 1) {
      throw new Error('Tracker: maxPeers must be a positive integer');
    }
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.seed = options.seed;
  }

  /** `node:http` request handler. Never throws. */
  handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    try {
      this.route(request, response);
    } catch {
      // A bug in here must not take the owner down with it.
      if (!response.headersSent) {
        response
          .writeHead(500, { 'content-type': 'text/plain', connection: 'close' })
          .end('internal error\n');
      } else {
        response.destroy();
      }
    }
  }

  private route(request: http.IncomingMessage, response: http.ServerResponse): void {
    // GETs carry no body; drain anything sent anyway so the connection is not left stalled.
    request.resume();
    const url = request.url ?? '';
    const question = url.indexOf('?');
    const path = question < 0 ? url : url.slice(0, question);
    const query = question < 0 ? '' : url.slice(question + 1);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, 'text/plain', latin1Bytes('method not allowed\n'), { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/announce') {
      const remote = request.socket.remoteAddress ?? '';
      send(response, 200, 'text/plain', this.respondToAnnounce(url, remote));
    } else if (url.length > MAX_TRACKER_URL_LENGTH) {
      send(response, 414, 'text/plain', latin1Bytes('URI too long\n'));
    } else if (path === '/torrent') {
      send(response, 200, 'application/x-bittorrent', this.torrentBytes);
    } else if (path === '/scrape') {
      send(response, 200, 'text/plain', this.scrape(query));
    } else {
      send(response, 404, 'text/plain', latin1Bytes('not found\n'));
    }
  }

  /**
   * The bencoded answer to a whole announce URL (`/announce?…`) from `remoteAddress`, failures
   * included. Total: never throws.
   */
  respondToAnnounce(url: string, remoteAddress: string): Uint8Array {
    if (url.length > MAX_TRACKER_URL_LENGTH) return encodeFailure('request URL is too long');
    const question = url.indexOf('?');
    const parsed = parseAnnounceQuery(question < 0 ? '' : url.slice(question + 1));
    if (!parsed.ok) return encodeFailure(parsed.failure);
    return encodeAnnounceResult(this.announce(parsed.query, remoteAddress), parsed.query);
  }

  /** The pure core of an announce: validates, updates the swarm, picks peers and the ring neighbour. */
  announce(query: AnnounceQuery, remoteAddress: string): AnnounceResult {
    if (!bytesEqual(query.infoHash, this.infoHash)) {
      return { ok: false, failure: 'unknown info_hash: this tracker serves one torrent only' };
    }
    if (query.peerId.length !== 20) return { ok: false, failure: 'peer_id must be 20 bytes' };
    if (!Number.isInteger(query.port) || query.port < 1 || query.port > 65535) {
      return { ok: false, failure: 'port must be an integer from 1 to 65535' };
    }
    const remote = normaliseAddress(remoteAddress);
    if (remote === undefined) return { ok: false, failure: 'cannot tell your address' };
    const claimed = query.ip === undefined ? undefined : normaliseAddress(query.ip);
    const host = claimed !== undefined && isLoopback(claimed) && isLoopback(remote) ? claimed : remote;

    const now = this.clock();
    this.expire(now);
    const { key, name } = slotKey(query.peerId);
    const existing = this.byKey.get(key);

    if (query.event === 'stopped') {
      // A stale process of the same name stopping must not evict its successor.
      if (existing !== undefined && bytesEqual(existing.peerId, query.peerId)) this.remove(existing);
      return this.answer(undefined, 0);
    }

    let record: PeerRecord;
    if (existing !== undefined) {
      record = existing;
      this.setAddress(record, host, query.port);
      record.peerId = query.peerId.slice();
      this.byKey.delete(key); // re-inserted below: the map stays in last-seen order
    } else {
      if (this.byKey.size >= this.maxPeers) {
        // Room may come from a stale record at this very address.
        const squatter = this.byAddress.get(addressKey(host, query.port));
        if (squatter === undefined) return { ok: false, failure: 'tracker is full, try again later' };
      }
      record = {
        key,
        name,
        peerId: query.peerId.slice(),
        host: '',
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: undefined,
        joinOrder: this.joinOrderFor(key, name),
        lastSeenMs: now,
      };
      this.setAddress(record, host, query.port);
      this.insertIntoRing(record);
    }
    if (isSeeder(record)) this.seeders--;
    record.uploaded = query.uploaded;
    record.downloaded = query.downloaded;
    record.left = query.left;
    if (isSeeder(record)) this.seeders++;
    record.lastSeenMs = now;
    this.byKey.set(key, record);
    if (query.event === 'completed') this.completedCount++;

    return this.answer(record, Math.max(0, Math.min(MAX_NUMWANT, Math.floor(query.numwant))));
  }

  /** Live peers in join (ring) order, for diagnostics. */
  peers(): TrackedPeer[] {
    this.expire(this.clock());
    return this.ring.map((record) => ({
      key: record.key,
      ...(record.name === undefined ? {} : { name: record.name }),
      peerId: record.peerId.slice(),
      host: record.host,
      port: record.port,
      uploaded: record.uploaded,
      downloaded: record.downloaded,
      ...(record.left === undefined ? {} : { left: record.left }),
      joinOrder: record.joinOrder,
      lastSeenMs: record.lastSeenMs,
    }));
  }

  /** BEP 48 scrape: counts for our torrent (when asked for it, or for everything). */
  scrape(query: string): Uint8Array {
    this.expire(this.clock());
    const split = queryValues(query, 'info_hash');
    if (split === undefined) return encodeFailure('malformed scrape query');
    const files: BencodeDictionary = new Map();
    if (split.length === 0 || split.some((hash) => bytesEqual(hash, this.infoHash))) {
      files.set(
        latin1String(this.infoHash),
        new Map<string, BencodeValue>([
          ['complete', this.seeders],
          ['downloaded', this.completedCount],
          ['incomplete', this.byKey.size - this.seeders],
        ]),
      );
    }
    return encodeBencode(new Map([['files', files]]));
  }

  // -------------------------------------------------------------------------------------------------

  private clock(): number {
    const value = this.now();
    // Keep time monotonic so last-seen order stays sorted.
    if (Number.isFinite(value) && value > this.lastNow) this.lastNow = value;
    return this.lastNow === Number.NEGATIVE_INFINITY ? 0 : this.lastNow;
  }

  private answer(asker: PeerRecord | undefined, numwant: number): AnnounceResult {
    const base = {
      ok: true as const,
      intervalSeconds: this.intervalSeconds,
      minIntervalSeconds: Math.max(1, Math.floor(this.intervalSeconds / 2)),
      complete: this.seeders,
      incomplete: this.byKey.size - this.seeders,
    };
    if (asker === undefined) return { ...base, peers: [] };
    const index = this.ringIndexOf(asker);
    const size = this.ring.length;
    const target = size >= 2 ? this.ring[(index + 1) % size] : undefined;
    const { seed } = this;
    const withSeed =
      seed !== undefined && numwant > 0 && !(seed.host === asker.host && seed.port === asker.port);
    const peers = this.sample(index, withSeed ? numwant - 1 : numwant).filter(
      (peer) => !(peer.host === asker.host && peer.port === asker.port),
    );
    return {
      ...base,
      complete: base.complete + (seed === undefined ? 0 : 1),
      peers: [...(withSeed ? [seed] : []), ...peers.map(entryOf)],
      ...(target === undefined ? {} : { downloadFrom: entryOf(target) }),
    };
  }

  /** Up to `count` ring members other than index `skip`, uniformly at random (Floyd's algorithm). */
  private sample(skip: number, count: number): PeerRecord[] {
    const others = this.ring.length - 1;
    if (count >= others) return this.ring.filter((_, i) => i !== skip);
    const chosen = new Set<number>();
    for (let j = others - count; j < others; j++) {
      const draw = this.random();
      const t = Math.min(j, Math.floor((Number.isFinite(draw) ? Math.max(0, draw) : 0) * (j + 1)));
      chosen.add(chosen.has(t) ? j : t);
    }
    const out: PeerRecord[] = [];
    for (const slot of chosen) {
      const record = this.ring[slot >= skip ? slot + 1 : slot];
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  private joinOrderFor(key: string, name: string | undefined): number {
    if (name === undefined) return this.nextJoinOrder++;
    const remembered = this.joinOrders.get(key);
    if (remembered !== undefined) return remembered;
    const order = this.nextJoinOrder++;
    this.joinOrders.set(key, order);
    // Bound the memory of names: forget the earliest-remembered one that is not live.
    if (this.joinOrders.size > this.maxPeers) {
      for (const remembered of this.joinOrders.keys()) {
        if (!this.byKey.has(remembered)) {
          this.joinOrders.delete(remembered);
          break;
        }
      }
    }
    return order;
  }

  private setAddress(record: PeerRecord, host: string, port: number): void {
    if (record.host === host && record.port === port) return;
    const address = addressKey(host, port);
    const holder = this.byAddress.get(address);
    if (holder !== undefined && holder !== record.key) {
      // Two processes cannot listen on one address: the earlier record is stale.
      const stale = this.byKey.get(holder);
      if (stale !== undefined) this.remove(stale);
    }
    if (record.port !== 0) this.byAddress.delete(addressKey(record.host, record.port));
    record.host = host;
    record.port = port;
    this.byAddress.set(address, record.key);
  }

  private insertIntoRing(record: PeerRecord): void {
    let low = 0;
    let high = this.ring.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.ring[mid] as PeerRecord).joinOrder < record.joinOrder) low = mid + 1;
      else high = mid;
    }
    this.ring.splice(low, 0, record);
  }

  private ringIndexOf(record: PeerRecord): number {
    let low = 0;
    let high = this.ring.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const order = (this.ring[mid] as PeerRecord).joinOrder;
      if (order === record.joinOrder) return mid;
      if (order < record.joinOrder) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  private remove(record: PeerRecord): void {
    if (this.byKey.get(record.key) !== record) return;
    this.byKey.delete(record.key);
    const index = this.ringIndexOf(record);
    if (index >= 0) this.ring.splice(index, 1);
    const address = addressKey(record.host, record.port);
    if (this.byAddress.get(address) === record.key) this.byAddress.delete(address);
    if (isSeeder(record)) this.seeders--;
  }

  /** Drops peers not heard from within the timeout; `byKey` is in last-seen order, so stop at the first live one. */
  private expire(now: number): void {
    for (const record of this.byKey.values()) {
      if (now - record.lastSeenMs <= this.peerTimeoutMs) break;
      this.remove(record);
    }
  }
}

function isSeeder(record: PeerRecord): boolean {
  return record.left === 0;
}

function addressKey(host: string, port: number): string {
  return `${host}|${port}`;
}

function entryOf(record: PeerRecord): PeerEntry {
  return { peerId: record.peerId.slice(), host: record.host, port: record.port };
}

function send(
  response: http.ServerResponse,
  status: number,
  contentType: string,
  body: Uint8Array,
  extraHeaders: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': String(body.length),
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  response.end(body);
}
