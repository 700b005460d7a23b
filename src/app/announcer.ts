/**
 * A peer's announces to its tracker: `started`, then one every interval the tracker asks for, then
 * `completed` and `stopped`. What the tracker names becomes addresses for the engine: the ring's
 * download neighbour, or up to `degree` mesh neighbours. A tracker that fails is said once, and
 * again when it answers after all.
 */
import type { PeerAddress, Topology } from '../engine/engine.ts';
import type { Random } from '../engine/random.ts';
import { type AnnounceResponse, announce } from '../transport/tracker-client.ts';
import type { Reporter } from './output.ts';
import { formatAddress } from './startup.ts';

export interface AnnouncerOptions {
  readonly announceUrl: string;
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly port: number;
  readonly topology: Topology;
  readonly degree: number;
  /** True when the user named the ring's download neighbour: the tracker's is then ignored. */
  readonly downloadFromGiven: boolean;
  /** Addresses the peer dials already (the owner, --connect): never taken again as neighbours. */
  readonly known: readonly string[];
  readonly random: Random;
  readonly reporter: Reporter;
  readonly name: string;
  /** Transfer counters for the announce (bytes up, down, left). */
  readonly stats: () => { uploaded: number; downloaded: number; left: number };
  readonly addPeers: (peers: PeerAddress[]) => void;
  /** Told whether the last announce reached the tracker, with the error when it did not. */
  readonly onOutcome?: (error: string | undefined) => void;
}

const ANNOUNCE_TIMEOUT_MS = 3_000;
/** Seconds to the next try after a failed announce. */
const RETRY_AFTER_FAILURE_SECONDS = 5;
const MAX_INTERVAL_SECONDS = 300;
const NUMWANT = 50;

export class Announcer {
  private readonly chosen: Set<string>;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private failing = false;

  constructor(private readonly options: AnnouncerOptions) {
    this.chosen = new Set(options.known);
  }

  start(): void {
    void this.loop('started');
  }

  /** One announce; resolves with the seconds until the next. */
  async send(event?: 'started' | 'completed' | 'stopped'): Promise<number> {
    const { options } = this;
    const outcome = await announce(
      {
        announceUrl: options.announceUrl,
        infoHash: options.infoHash,
        peerId: options.peerId,
        port: options.port,
        ...options.stats(),
        ...(event === undefined ? {} : { event }),
        numwant: NUMWANT,
      },
      { timeoutMs: ANNOUNCE_TIMEOUT_MS },
    );
    if (event === 'stopped' || this.stopping) return RETRY_AFTER_FAILURE_SECONDS;
    this.noteOutcome(outcome.ok ? undefined : outcome.error);
    if (!outcome.ok) return RETRY_AFTER_FAILURE_SECONDS;
    const peers = this.neighboursFrom(outcome.response);
    if (peers.length > 0) options.addPeers(peers);
    return outcome.response.intervalSeconds;
  }

  /** An announce out of turn (our address changed): true when the tracker answered. */
  async announceNow(): Promise<boolean> {
    await this.send();
    return !this.failing;
  }

  /** Stops the loop and tells the tracker we left. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.send('stopped');
  }

  private async loop(event?: 'started'): Promise<void> {
    const intervalSeconds = await this.send(event);
    if (this.stopping) return;
    const seconds = Math.max(1, Math.min(intervalSeconds, MAX_INTERVAL_SECONDS));
    this.timer = setTimeout(() => void this.loop(), seconds * 1000);
  }

  private noteOutcome(error: string | undefined): void {
    const { reporter, name, announceUrl } = this.options;
    this.options.onOutcome?.(error);
    if (error !== undefined && !this.failing) {
      reporter.notice(
        `${name}: tracker ${announceUrl} failed (${error}); trading with known peers, retrying every ${RETRY_AFTER_FAILURE_SECONDS} s`,
      );
    } else if (error === undefined && this.failing) {
      reporter.notice(`${name}: tracker ${announceUrl} answers again`);
    }
    this.failing = error !== undefined;
  }

  private neighboursFrom(response: AnnounceResponse): PeerAddress[] {
    const { topology, degree, downloadFromGiven, random } = this.options;
    if (topology === 'ring') {
      if (downloadFromGiven || response.downloadFrom === undefined) return [];
      return [{ address: formatAddress(response.downloadFrom), role: 'download-neighbour' }];
    }
    if (topology === 'star') return [];
    const candidates = response.peers.map(formatAddress).filter((address) => !this.chosen.has(address));
    random.shuffle(candidates);
    const picked = this.chosen.size - this.options.known.length;
    const limit = topology === 'full' ? candidates.length : Math.max(0, degree - picked);
    const peers: PeerAddress[] = [];
    for (const address of candidates.slice(0, limit)) {
      this.chosen.add(address);
      peers.push({ address, role: 'neighbour' });
    }
    return peers;
  }
}
