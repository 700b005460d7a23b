/**
 * The peer process: gets the torrent (from the owner or a file), keeps chunks in its folder, trades
 * over sockets, announces for neighbours, and writes the verified file. Every wait is visible and,
 * with `--exit-when-done`, bounded.
 */
import { randomInt } from 'node:crypto';
import type { ActivityEvent } from '../engine/activity.ts';
import { DEFAULT_LIMITS, Engine, type PeerAddress, type PhaseMode, type Topology } from '../engine/engine.ts';
import { toHex } from '../engine/hash.ts';
import type { Metainfo } from '../engine/metainfo.ts';
import { makePeerId } from '../engine/peer-id.ts';
import type { PickerKind } from '../engine/picker.ts';
import { Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import { SocketDriver } from '../transport/driver.ts';
import { readPeersFile, writePeersFile } from '../transport/peers-file.ts';
import { ChunkStore, type OpenResult } from '../transport/store.ts';
import type { HostPort } from '../transport/tracker-client.ts';
import { hostAddresses, watchAddresses } from './address-watch.ts';
import { Announcer } from './announcer.ts';
import { deliverFile } from './deliver.ts';
import { type OutputMode, Reporter } from './output.ts';
import { formatPeerStatus, STATUS_REDRAW_MS, TransferMeters } from './progress.ts';
import { StallWatch } from './stall-watch.ts';
import { formatAddress, infoDictionary, Start, untilSignal } from './startup.ts';
import { fetchTorrentWithRetry, type LoadedTorrent, readTorrentFile } from './torrent-source.ts';

/** Where a peer gets its torrent and first contacts. */
export type PeerSource =
  /** A swarm owner: the torrent from its `/torrent`, ring neighbours from its tracker. */
  | { readonly kind: 'owner'; readonly owner: HostPort }
  /** Any BitTorrent swarm: the torrent from a file; seeders given by address and by its tracker. */
  | { readonly kind: 'torrent'; readonly path: string; readonly connect: readonly HostPort[] };

export interface PeerOptions {
  readonly source: PeerSource;
  readonly host: string;
  readonly port: number;
  readonly downloadFrom: HostPort | undefined;
  readonly id: string;
  readonly dir: string;
  readonly topology: Topology;
  readonly degree: number;
  readonly picker: PickerKind;
  readonly phases: PhaseMode;
  readonly exitWhenDone: boolean;
  /** With `exitWhenDone`: give up (exit 1) after this long without a new chunk. */
  readonly giveUpAfterMs: number;
  readonly retries: number;
  readonly output: OutputMode;
  /** `npm start`'s clock origin (epoch ms), so every process prints times on one clock. */
  readonly clockOriginMs: number | undefined;
  /** Dial and announce only after SIGUSR2: peers started one by one begin together. */
  readonly startOnSignal?: boolean;
  /** On a terminal too, every activity line instead of the status line. */
  readonly log?: boolean;
  /** `swarm get`: where the verified file goes (never over an existing file). */
  readonly deliverTo?: string;
  /** Peer exchange (BEP 11, `ut_pex`); on unless `--no-pex`. */
  readonly peerExchange?: boolean;
}

/** A quiet spell this long gets a status line saying what the peer waits for. */
const STATUS_EVERY_MS = 10_000;
/** The engine's longest pause between redials of an address (`reconnectMaxMs`), for the user. */
const REDIAL_MAX_S = DEFAULT_LIMITS.reconnectMaxMs / 1000;

function peerName(id: string): string {
  const name = `peer${id}`;
  return name.length <= 8 ? name : `p${id}`.slice(0, 8);
}

export async function runPeer(options: PeerOptions): Promise<number> {
  const name = peerName(options.id);
  const reporter = new Reporter(options.output, name, options.clockOriginMs, options.log === true);
  const { source } = options;
  const torrent =
    source.kind === 'owner'
      ? await fetchTorrentWithRetry(source.owner, options.retries, reporter, name)
      : await readTorrentFile(source.path);
  const start = await Start.inFolder(options.dir, '--dir');
  const store = new ChunkStore({
    dir: options.dir,
    geometry: torrent.metainfo.geometry,
    pieceHashes: torrent.metainfo.pieceHashes,
    sha1,
    fileName: torrent.metainfo.name,
    infoHashHex: toHex(torrent.metainfo.infoHash),
    label: name,
    // Every chunk is re-verified on start, so a torn write after a power cut is caught and discarded;
    // a kill -9 cannot tear a rename. Syncing each chunk would cost far more than it protects.
    sync: false,
  });
  const opened = await start.step(() => store.open(), { store });
  if (opened.discarded.length > 0) {
    reporter.info(`${name}: discarded ${opened.discarded.length} chunk files that failed verification`);
  }
  const peer = new PeerProcess(options, name, reporter, torrent, store, opened);
  await peer.listen(start);
  return peer.run();
}

class PeerProcess {
  private readonly random = new Random(randomInt(0, 2 ** 32));
  private readonly peerId: Uint8Array;
  private readonly engine: Engine;
  private readonly driver: SocketDriver;
  private readonly watch: StallWatch;
  private readonly metainfo: Metainfo;
  private readonly wait = untilSignal();
  /**
   * `--start-on-signal`: resolves at SIGUSR2. The handler is set before the process says it is
   * listening, so a go sent on that line never meets SIGUSR2's default (ending the process).
   */
  private readonly go: Promise<void>;
  private announcer: Announcer | undefined;
  private held: number;
  private port = 0;
  private readyAtMs = 0;
  private finished: { sha256: string; path: string } | undefined;
  private finishing: Promise<void> | undefined;
  private stopStatusLine: () => void = () => undefined;
  private stopAddressWatch: () => void = () => undefined;
  private failure: string | undefined;
  /** Addresses from `peers.txt`, dialled on start; and those reached since, most recent last. */
  private saved: string[] = [];
  private readonly reached: string[] = [];
  private savingPeers: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: PeerOptions,
    private readonly name: string,
    private readonly reporter: Reporter,
    torrent: LoadedTorrent,
    private readonly store: ChunkStore,
    opened: OpenResult,
  ) {
    this.metainfo = torrent.metainfo;
    this.go =
      options.startOnSignal === true
        ? new Promise((resolve) => process.once('SIGUSR2', () => resolve()))
        : Promise.resolve();
    this.held = opened.have.count;
    this.peerId = makePeerId(name, this.random);
    this.engine = new Engine({
      role: 'peer',
      name,
      peerId: this.peerId,
      infoHash: this.metainfo.infoHash,
      pieceHashes: this.metainfo.pieceHashes,
      geometry: this.metainfo.geometry,
      sha1,
      random: this.random,
      have: opened.have,
      fromOwner: opened.fromOwner,
      topology: options.topology,
      picker: options.picker,
      phases: options.phases,
      peerExchange: options.peerExchange !== false,
      ...infoDictionary(torrent.bytes),
    });
    this.driver = new SocketDriver({
      engine: this.engine,
      storage: store,
      host: options.host,
      port: options.port,
      onActivity: (event, elapsedMs) => this.onActivity(event, elapsedMs),
      onComplete: () => void this.finish(),
      // The store's message already names the chunk ("cannot store chunk 5: disk full ...").
      onStorageError: (_index, error) => reporter.error(`${name}: ${error.message}`),
      onDialFailed: (address, reason) => this.dialFailed(address, reason),
      onDialed: (address) => {
        this.watch.connected(address);
        this.remember(address);
      },
    });
    reporter.startClock();
    this.watch = new StallWatch({
      statusEveryMs: STATUS_EVERY_MS,
      giveUpAfterMs: options.exitWhenDone ? options.giveUpAfterMs : undefined,
      now: () => this.driver.now(),
      state: () => ({
        held: this.held,
        total: this.metainfo.geometry.pieceCount,
        connected: this.engine.openConnectionCount(),
        complete: this.finished !== undefined || this.engine.isComplete,
      }),
      onStatus: (text) => reporter.notice(`${name}: ${text}`),
      onGiveUp: (text) => {
        this.failure = text;
        this.wait.stop('gave up');
      },
    });
  }

  /** Listens; a port in use removes the folder this start made and ends with one line. */
  async listen(start: Start): Promise<void> {
    this.port = await start.listen(this.driver, this.options.host, this.options.port, { store: this.store });
    this.readyAtMs = this.driver.now();
    const { options, reporter, name } = this;
    this.engine.handleListening(this.readyAtMs, this.port, ownAddresses(options.host, this.port));
    // A ring's neighbours are the owner's to assign; mesh and full trade with anyone they reach.
    if (options.topology === 'mesh' || options.topology === 'full')
      this.saved = await readPeersFile(options.dir);
    const total = this.metainfo.geometry.pieceCount;
    reporter.event({
      event: 'listening',
      role: 'peer',
      id: options.id,
      host: options.host,
      port: this.port,
      dir: options.dir,
      have: this.held,
    });
    reporter.info(
      `${name}: listening on ${formatAddress({ host: options.host, port: this.port })}, ${this.held}/${total} chunks verified in ${options.dir}`,
    );
    this.startStatusLine();
  }

  async run(): Promise<number> {
    if (this.engine.isComplete) {
      // Everything was on disk already: nothing to wait for.
      await this.finish();
    }
    if ((this.finished === undefined || !this.options.exitWhenDone) && (await this.startTime())) {
      this.driver.addPeers(this.initialPeers());
      this.startAnnouncing();
      this.watch.start();
      this.stopAddressWatch = watchAddresses((addresses) => void this.addressesChanged(addresses));
    }
    const reason = await this.wait.signalled;
    this.stopAddressWatch();
    this.watch.stop();
    this.stopStatusLine();
    if (reason !== 'done' && reason !== 'gave up') {
      const total = this.metainfo.geometry.pieceCount;
      this.reporter.info(
        `${this.name}: ${reason}, stopping with ${this.held}/${total} chunks in ${this.options.dir}`,
      );
    }
    return this.shutDown();
  }

  /**
   * The host's addresses changed (it moved): the engine learns what it is now called, so it never
   * dials itself, and the tracker hears the new address at once (its source address), so others
   * that ask it find us again. Connections on the old address are left to fail on their own.
   */
  private async addressesChanged(addresses: string[]): Promise<void> {
    this.engine.handleListening(this.driver.now(), this.port, ownAddresses(this.options.host, this.port));
    this.reporter.info(`${this.name}: this host's addresses are now ${addresses.join(', ') || 'none'}`);
    const announced = addresses.length > 0 && (await this.announcer?.announceNow()) === true;
    this.reporter.event({ event: 'address-changed', addresses, announced });
  }

  /** Waits for the go (`--start-on-signal`); false when the process was stopped meanwhile. */
  private startTime(): Promise<boolean> {
    return Promise.race([this.go.then(() => true), this.wait.signalled.then(() => false)]);
  }

  /** On a terminal: one line with chunks, rates, ETA and peers, redrawn until the process stops. */
  private startStatusLine(): void {
    if (!this.reporter.live) return;
    const meters = new TransferMeters();
    const draw = (final: boolean): void => {
      const { geometry } = this.metainfo;
      const rates = meters.sample(this.engine.getStats(), this.driver.now());
      const left = this.engine.isComplete
        ? 0
        : geometry.totalLengthBytes - this.held * geometry.pieceLengthBytes;
      const line = formatPeerStatus({
        node: this.name,
        held: this.held,
        total: geometry.pieceCount,
        ...rates,
        bytesLeft: Math.max(0, left),
        peers: this.engine.openConnectionCount(),
      });
      this.reporter.status(line, final);
    };
    const timer = setInterval(() => draw(false), STATUS_REDRAW_MS);
    timer.unref();
    this.stopStatusLine = () => {
      clearInterval(timer);
      draw(true);
    };
    draw(false);
  }

  private onActivity(event: ActivityEvent, elapsedMs: number): void {
    this.reporter.activity(event, elapsedMs);
    if (event.kind !== 'chunk-received') return;
    this.held++;
    this.watch.progress();
  }

  /** Said once per address until it answers again; the engine redials with backoff meanwhile. */
  private dialFailed(address: string, reason: string): void {
    if (!this.watch.dialFailed(address, reason)) return;
    const { source, downloadFrom } = this.options;
    const role =
      source.kind === 'owner' && formatAddress(source.owner) === address
        ? 'the owner '
        : downloadFrom !== undefined && formatAddress(downloadFrom) === address
          ? 'download neighbour '
          : '';
    this.reporter.notice(
      `${this.name}: cannot reach ${role}${address} (${reason}); redialling with backoff (at most ${REDIAL_MAX_S} s apart)`,
    );
  }

  /** A reached address goes to the end of `peers.txt` (rewritten when the list changes). */
  private remember(address: string): void {
    const at = this.reached.indexOf(address);
    if (at === this.reached.length - 1 && at >= 0) return;
    if (at >= 0) this.reached.splice(at, 1);
    this.reached.push(address);
    const addresses = [...this.saved.filter((saved) => !this.reached.includes(saved)), ...this.reached];
    this.savingPeers = this.savingPeers
      .then(() => writePeersFile(this.options.dir, addresses))
      .catch((error: Error) => this.reporter.notice(`${this.name}: cannot save peers.txt: ${error.message}`));
  }

  /** `peers.txt`'s addresses first (as neighbours), then the owner, --connect and --download-from. */
  private initialPeers(): PeerAddress[] {
    const { source, downloadFrom } = this.options;
    const initial: PeerAddress[] = this.saved.map((address) => ({ address, role: 'neighbour' }));
    if (source.kind === 'owner') initial.push({ address: formatAddress(source.owner), role: 'owner' });
    else
      for (const address of source.connect)
        initial.push({ address: formatAddress(address), role: 'neighbour' });
    if (downloadFrom !== undefined)
      initial.push({ address: formatAddress(downloadFrom), role: 'download-neighbour' });
    return initial;
  }

  /** With --torrent the tracker is whatever the torrent names (maybe none, maybe unreachable). */
  private startAnnouncing(): void {
    const { source } = this.options;
    const announceUrl =
      this.metainfo.announce ??
      (source.kind === 'owner' ? `http://${formatAddress(source.owner)}/announce` : undefined);
    if (announceUrl === undefined) return;
    const { geometry } = this.metainfo;
    this.announcer = new Announcer({
      announceUrl,
      infoHash: this.metainfo.infoHash,
      peerId: this.peerId,
      port: this.port,
      topology: this.options.topology,
      degree: this.options.degree,
      downloadFromGiven: this.options.downloadFrom !== undefined,
      known: this.initialPeers().map((peer) => peer.address),
      random: this.random,
      reporter: this.reporter,
      name: this.name,
      stats: () => {
        const stats = this.engine.getStats();
        const left = this.engine.isComplete
          ? 0
          : geometry.totalLengthBytes - this.held * geometry.pieceLengthBytes;
        return { uploaded: stats.bytesUp, downloaded: stats.bytesDown, left: Math.max(0, left) };
      },
      addPeers: (peers) => this.driver.addPeers(peers),
      onOutcome: (error) => this.watch.tracker(error),
    });
    this.announcer.start();
  }

  /** Combines and re-verifies the file, reports it, and (with --exit-when-done) ends the wait. */
  private finish(): Promise<void> {
    this.finishing ??= this.combineAndReport();
    return this.finishing;
  }

  private async combineAndReport(): Promise<void> {
    let combined: { sha256: string; path: string };
    try {
      // The summary names every chunk by the time we say we are complete (it may lag by 100 ms).
      [combined] = await Promise.all([
        this.store.combine(),
        this.store.flushSummary().catch(() => undefined),
      ]);
      if (this.options.deliverTo !== undefined) {
        await deliverFile(combined.path, this.options.deliverTo);
        combined = { ...combined, path: this.options.deliverTo };
      }
    } catch (error) {
      this.failure = `could not combine the file: ${(error as Error).message}`;
      this.wait.stop('done');
      return;
    }
    this.finished = combined;
    const stats = this.engine.getStats();
    const fromOwner = this.store.fromOwnerField().count;
    const nowMs = this.driver.now();
    this.reporter.event({
      event: 'complete',
      fileSha256: combined.sha256,
      path: combined.path,
      completedAtMs: this.reporter.printedMs(nowMs),
      readyToDoneMs: nowMs - this.readyAtMs,
      chunksFromOwner: fromOwner,
      chunksFromPeers: this.metainfo.geometry.pieceCount - fromOwner,
      bytesUp: stats.bytesUp,
      bytesDown: stats.bytesDown,
    });
    this.reporter.info(
      `${this.name}: complete, verified, written to ${combined.path} (sha256 ${combined.sha256})`,
    );
    void this.announcer?.send('completed');
    if (this.options.exitWhenDone) this.wait.stop('done');
  }

  private async shutDown(): Promise<number> {
    const stats = this.engine.getStats();
    this.reporter.event({
      event: 'stopped',
      complete: this.finished !== undefined,
      bytesUp: stats.bytesUp,
      bytesDown: stats.bytesDown,
    });
    await this.announcer?.stop();
    await this.driver.stop();
    await this.savingPeers;
    await this.store.close();
    if (this.failure !== undefined) {
      this.reporter.error(`${this.name}: ${this.failure}`);
      return 1;
    }
    return this.finished !== undefined ? 0 : 1;
  }
}

/** Where this process can be reached on `port`: the listen host and every interface address. */
function ownAddresses(host: string, port: number): string[] {
  const hosts = new Set([host, '127.0.0.1', '::1', ...hostAddresses()]);
  return [...hosts].map((one) => `${one}:${port}`);
}
