/**
 * What a run report is drawn from: a `RunRecord` (plain data) and the `RunRecorder` that both the
 * simulator and `npm start` feed with activity events. Memory stays bounded for big runs: one
 * first-arrival time and source per (peer, chunk), rates in a fixed number of time buckets and
 * bytes per link, never the events themselves.
 */
import type { ActivityEvent } from '../engine/activity.ts';

/** Where a peer got a chunk from, as one character per (peer, chunk) in `RunRecord.sources`. */
export const SOURCE = { missing: '0', owner: '1', neighbour: '2' } as const;

export interface RunRecord {
  readonly title: string;
  /** What ran: the simulator (virtual time) or real processes (wall-clock time). */
  readonly origin: 'simulator' | 'processes';
  readonly owner: string;
  /** Peer ids in natural order ("p2" before "p10"); every per-peer array below follows it. */
  readonly peers: readonly string[];
  readonly chunkCount: number;
  readonly fileBytes: number;
  readonly durationMs: number;
  /** The fastest any run could be, when it can be computed honestly; `null` otherwise. */
  readonly lowerBoundMs: number | null;
  /** How the lower bound was found, or why there is none. */
  readonly lowerBoundNote: string;
  readonly completedAtMs: readonly (number | null)[];
  /** Peer-major, `peers.length * chunkCount` entries: when the chunk first arrived, or -1. */
  readonly arrivalsMs: readonly number[];
  /** Peer-major, one `SOURCE` character per (peer, chunk). */
  readonly sources: string;
  /** Bytes of whole chunks per time bucket, counted when each chunk completes. */
  readonly rates: {
    readonly bucketMs: number;
    readonly ownerUp: readonly number[];
    readonly peersUp: readonly number[];
    readonly peersDown: readonly number[];
  };
  /** Every link seen (a connection or traffic), with the bytes its sender delivered to its receiver. */
  readonly links: readonly { readonly from: string; readonly to: string; readonly bytes: number }[];
}

/** The run's facts the events do not carry, given when the run is over. */
export interface RunFacts {
  readonly title: string;
  readonly origin: RunRecord['origin'];
  readonly fileBytes: number;
  readonly durationMs: number;
  readonly lowerBoundMs: number | null;
  readonly lowerBoundNote: string;
}

/** Buckets kept per rate series; past this, neighbouring buckets merge and the width doubles. */
const MAX_BUCKETS = 200;
const FIRST_BUCKET_MS = 10;

interface PeerState {
  readonly arrivals: Float64Array;
  readonly sources: Uint8Array;
  completedAtMs: number | null;
}

/** A series of byte counts in time buckets whose width doubles as the run goes on. */
class Buckets {
  readonly counts: number[] = [];

  add(atMs: number, bytes: number, widthMs: number): void {
    const index = Math.floor(Math.max(0, atMs) / widthMs);
    while (this.counts.length <= index) this.counts.push(0);
    this.counts[index] = (this.counts[index] as number) + bytes;
  }

  /** Halves the number of buckets: each pair becomes one of twice the width. */
  merge(): void {
    const merged: number[] = [];
    for (let i = 0; i < this.counts.length; i += 2)
      merged.push((this.counts[i] as number) + (this.counts[i + 1] ?? 0));
    this.counts.length = 0;
    this.counts.push(...merged);
  }
}

export class RunRecorder {
  private readonly peerStates = new Map<string, PeerState>();
  private readonly linkBytes = new Map<string, number>();
  private bucketMs = FIRST_BUCKET_MS;
  private readonly ownerUp = new Buckets();
  private readonly peersUp = new Buckets();
  private readonly peersDown = new Buckets();

  constructor(
    readonly owner: string,
    readonly chunkCount: number,
  ) {}

  /** Makes sure a node is known: a peer that never did anything still gets its row. */
  node(id: string): void {
    if (id === this.owner || this.peerStates.has(id)) return;
    this.peerStates.set(id, {
      arrivals: new Float64Array(this.chunkCount).fill(-1),
      sources: new Uint8Array(this.chunkCount),
      completedAtMs: null,
    });
  }

  activity(atMs: number, node: string, event: ActivityEvent): void {
    this.node(node);
    switch (event.kind) {
      case 'chunk-received': {
        const peer = this.peerStates.get(node);
        if (peer !== undefined && event.chunk >= 0 && event.chunk < this.chunkCount) {
          if (peer.arrivals[event.chunk] === -1) {
            peer.arrivals[event.chunk] = atMs;
            peer.sources[event.chunk] = event.fromOwner ? 1 : 2;
          }
          this.bucket(this.peersDown, atMs, event.bytes);
        }
        break;
      }
      case 'chunk-sent': {
        // Every chunk sent has its line, a part of one included: uploads and links are exact.
        this.bucket(node === this.owner ? this.ownerUp : this.peersUp, atMs, event.bytes);
        this.link(node, event.to, event.bytes);
        break;
      }
      case 'connected':
        this.link(node, event.peer, 0);
        break;
      case 'complete': {
        // The first completion counts: a restarted peer may announce it again.
        const peer = this.peerStates.get(node);
        if (peer !== undefined && peer.completedAtMs === null) peer.completedAtMs = atMs;
        break;
      }
      default:
        break;
    }
  }

  /** A completion time known better than from the events (the run's own summary): it replaces theirs. */
  complete(node: string, atMs: number): void {
    this.node(node);
    const peer = this.peerStates.get(node);
    if (peer !== undefined) peer.completedAtMs = atMs;
  }

  finish(facts: RunFacts): RunRecord {
    const peers = [...this.peerStates.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const arrivalsMs: number[] = [];
    let sources = '';
    for (const id of peers) {
      const state = this.peerStates.get(id) as PeerState;
      arrivalsMs.push(...state.arrivals);
      sources += state.sources.join('');
    }
    const length = Math.max(
      this.ownerUp.counts.length,
      this.peersUp.counts.length,
      this.peersDown.counts.length,
    );
    const pad = (counts: number[]): number[] => [
      ...counts,
      ...new Array<number>(length - counts.length).fill(0),
    ];
    return {
      ...facts,
      owner: this.owner,
      peers,
      chunkCount: this.chunkCount,
      completedAtMs: peers.map((id) => (this.peerStates.get(id) as PeerState).completedAtMs),
      arrivalsMs,
      sources,
      rates: {
        bucketMs: this.bucketMs,
        ownerUp: pad(this.ownerUp.counts),
        peersUp: pad(this.peersUp.counts),
        peersDown: pad(this.peersDown.counts),
      },
      links: [...this.linkBytes].map(([key, bytes]) => {
        const [from, to] = key.split('\n') as [string, string];
        return { from, to, bytes };
      }),
    };
  }

  private link(from: string, to: string, bytes: number): void {
    const key = `${from}\n${to}`;
    this.linkBytes.set(key, (this.linkBytes.get(key) ?? 0) + bytes);
  }

  private bucket(series: Buckets, atMs: number, bytes: number): void {
    while (Math.floor(Math.max(0, atMs) / this.bucketMs) >= MAX_BUCKETS) {
      this.bucketMs *= 2;
      for (const each of [this.ownerUp, this.peersUp, this.peersDown]) each.merge();
    }
    series.add(atMs, bytes, this.bucketMs);
  }
}
