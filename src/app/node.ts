/**
 * One swarm process: the owner (chunks on disk, tracker, engine on sockets) or a peer (torrent from
 * the owner or from a file, chunks in Peer<id>Dir, engine on sockets, announces for neighbours).
 */
import { randomInt } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { findDictionaryValueSpan } from '../engine/bencode.ts';
import { planChunks } from '../engine/chunking.ts';
import {
  Engine,
  type OwnerAdvertising,
  type PeerRole,
  type PhaseMode,
  type Topology,
} from '../engine/engine.ts';
import { toHex } from '../engine/hash.ts';
import { createTorrent, type Metainfo, magnetLink, parseTorrent } from '../engine/metainfo.ts';
import { makePeerId } from '../engine/peer-id.ts';
import type { PickerKind } from '../engine/picker.ts';
import { Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import { SocketDriver } from '../transport/driver.ts';
import { hashFileChunks } from '../transport/file-hashing.ts';
import { ChunkStore } from '../transport/store.ts';
import { Tracker } from '../transport/tracker.ts';
import { announce, fetchTorrent } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import { type OutputMode, Reporter } from './output.ts';

interface HostPort {
  readonly host: string;
  readonly port: number;
}

const formatAddress = (address: HostPort): string => `${address.host}:${address.port}`;

export interface OwnerOptions {
  readonly file: string;
  readonly host: string;
  readonly port: number;
  readonly torrentPath: string | undefined;
  readonly dir: string | undefined;
  readonly chunkSizeBytes: number | undefined;
  readonly expectedPeers: number;
  readonly advertising: OwnerAdvertising;
  readonly connect: readonly HostPort[];
  readonly announceIntervalSeconds: number;
  readonly output: OutputMode;
}

/** Resolves when the process is asked to stop (Ctrl-C or SIGTERM). */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const done = (signal: string): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

async function listenOrExplain(driver: SocketDriver, host: string, port: number): Promise<number> {
  try {
    return await driver.listen();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageFailure(`port ${port} on ${host} is already in use`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw new UsageFailure(`cannot listen on ${host}: ${code}`);
    if (code === 'EACCES') throw new UsageFailure(`no permission to listen on port ${port}`);
    throw error;
  }
}

export async function runOwner(options: OwnerOptions): Promise<number> {
  const reporter = new Reporter(options.output, 'owner');
  let size: number;
  try {
    const info = await stat(options.file);
    if (!info.isFile()) throw new UsageFailure(`--file ${options.file} is not a regular file`);
    size = info.size;
  } catch (error) {
    if (error instanceof UsageFailure) throw error;
    throw new UsageFailure(
      `cannot read --file ${options.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const plan = planChunks(size, options.chunkSizeBytes);
  if (!plan.ok) throw new UsageFailure(`${options.file}: ${plan.error.message}`);
  const { geometry } = plan;
  const hashed = await hashFileChunks(options.file, geometry.pieceLengthBytes, sha1);
  if (hashed.totalLengthBytes !== size) throw new Error(`${options.file} changed while it was being read`);
  const name = basename(options.file);
  const { metainfo, bytes: bareTorrent } = createTorrent(
    {
      name,
      totalLengthBytes: size,
      pieceLengthBytes: geometry.pieceLengthBytes,
      pieceHashes: hashed.pieceHashes,
    },
    sha1,
  );
  const store = new ChunkStore({
    dir: options.dir ?? `${options.file}.chunks`,
    geometry,
    pieceHashes: metainfo.pieceHashes,
    sha1,
    fileName: name,
    infoHashHex: toHex(metainfo.infoHash),
    label: 'owner',
  });
  await store.importFrom(options.file);

  let tracker: Tracker | undefined;
  const random = new Random(randomInt(0, 2 ** 32));
  const engine = new Engine({
    role: 'owner',
    name: 'owner',
    peerId: makePeerId('owner', random),
    infoHash: metainfo.infoHash,
    pieceHashes: metainfo.pieceHashes,
    geometry,
    sha1,
    random,
    ownerAdvertising: options.advertising,
    ownerShareChunks: Math.ceil(geometry.pieceCount / options.expectedPeers),
    ...infoDictionary(bareTorrent),
  });
  const driver = new SocketDriver({
    engine,
    storage: store,
    host: options.host,
    port: options.port,
    httpHandler: (request, response) => {
      if (tracker === undefined) {
        response.writeHead(503).end();
        return;
      }
      tracker.handle(request, response);
    },
    onActivity: (event, elapsedMs) => reporter.activity(event, elapsedMs),
  });
  const port = await listenOrExplain(driver, options.host, options.port);
  const announceUrl = `http://${options.host}:${port}/announce`;
  const torrent = createTorrent(
    {
      name,
      totalLengthBytes: size,
      pieceLengthBytes: geometry.pieceLengthBytes,
      pieceHashes: metainfo.pieceHashes,
      announce: announceUrl,
    },
    sha1,
  );
  const torrentPath = options.torrentPath ?? `${options.file}.torrent`;
  await writeFile(torrentPath, torrent.bytes);
  tracker = new Tracker({
    infoHash: torrent.metainfo.infoHash,
    torrentBytes: torrent.bytes,
    intervalSeconds: options.announceIntervalSeconds,
  });
  reporter.event({
    event: 'listening',
    role: 'owner',
    host: options.host,
    port,
    torrent: torrentPath,
    magnet: magnetLink(torrent.metainfo),
    chunks: geometry.pieceCount,
    chunkSizeBytes: geometry.pieceLengthBytes,
    infoHash: toHex(torrent.metainfo.infoHash),
  });
  reporter.info(
    `owner: serving ${name} (${size} bytes, ${geometry.pieceCount} chunks of ${geometry.pieceLengthBytes}) on ${options.host}:${port}`,
  );
  reporter.info(`owner: torrent ${torrentPath}`);
  reporter.info(`owner: ${magnetLink(torrent.metainfo)}`);
  if (options.connect.length > 0) {
    driver.addPeers(
      options.connect.map((address) => ({
        address: formatAddress(address),
        role: 'neighbour' as const,
        dialAlways: true,
      })),
    );
  }
  const signal = await untilSignal();
  reporter.info(`owner: ${signal}, shutting down`);
  await driver.stop();
  await store.close();
  return 0;
}

/** Where a peer gets its torrent and first contacts. */
export type PeerSource =
  /** A swarm owner: the torrent from its `/torrent`, ring neighbours from its tracker. */
  | { readonly kind: 'owner'; readonly owner: HostPort }
  /**
   * Any BitTorrent swarm: the torrent from a file, the seeders and peers to dial given by address
   * (and by the torrent's tracker, if any).
   */
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
  readonly retries: number;
  readonly output: OutputMode;
}

/** Fetches the torrent from the owner, retrying with exponential backoff. */
async function fetchTorrentWithRetry(
  owner: HostPort,
  retries: number,
  reporter: Reporter,
): Promise<{ metainfo: Metainfo; bytes: Uint8Array }> {
  let delayMs = 250;
  let lastError = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    const result = await fetchTorrent(formatAddress(owner), { timeoutMs: 5_000 });
    if (result.ok) {
      const parsed = parseTorrent(result.bytes, sha1);
      if (!parsed.ok) throw new OwnerFailure(`the owner sent a bad torrent: ${parsed.error.message}`);
      return { metainfo: parsed.metainfo, bytes: result.bytes };
    }
    lastError = result.error;
    if (attempt < retries) {
      reporter.event({ event: 'retry', attempt: attempt + 1, delayMs, error: lastError });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 4_000);
    }
  }
  throw new OwnerFailure(
    `owner ${formatAddress(owner)} unreachable after ${retries + 1} attempts (${lastError})`,
  );
}

/** Reads and checks a .torrent file named on the command line. */
async function readTorrentFile(path: string): Promise<{ metainfo: Metainfo; bytes: Uint8Array }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new UsageFailure(
      `cannot read --torrent ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const parsed = parseTorrent(bytes, sha1);
  if (!parsed.ok) throw new UsageFailure(`--torrent ${path}: ${parsed.error.message}`);
  return { metainfo: parsed.metainfo, bytes };
}

/** The exact bytes of a torrent's info dictionary, for the engine to serve over BEP 9 (ut_metadata). */
function infoDictionary(torrent: Uint8Array): { metadata?: Uint8Array } {
  const span = findDictionaryValueSpan(torrent, 'info');
  return span === undefined ? {} : { metadata: torrent.slice(span.start, span.end) };
}

/** The run failed for a reason outside our control: exit code 1, one clear line. */
export class OwnerFailure extends Error {
  override readonly name = 'OwnerFailure';
}

function peerName(id: string): string {
  const name = `peer${id}`;
  return name.length <= 8 ? name : `p${id}`.slice(0, 8);
}

export async function runPeer(options: PeerOptions): Promise<number> {
  const name = peerName(options.id);
  const reporter = new Reporter(options.output, name);
  try {
    return await peerMain(options, name, reporter);
  } catch (error) {
    if (error instanceof OwnerFailure) {
      reporter.error(error.message);
      return 1;
    }
    throw error;
  }
}

async function peerMain(options: PeerOptions, name: string, reporter: Reporter): Promise<number> {
  const { source } = options;
  const { metainfo, bytes: torrentBytes } =
    source.kind === 'owner'
      ? await fetchTorrentWithRetry(source.owner, options.retries, reporter)
      : await readTorrentFile(source.path);
  const { geometry } = metainfo;
  const store = new ChunkStore({
    dir: options.dir,
    geometry,
    pieceHashes: metainfo.pieceHashes,
    sha1,
    fileName: metainfo.name,
    infoHashHex: toHex(metainfo.infoHash),
    label: name,
    // Every chunk is re-verified on start, so a torn write after a power cut is caught and discarded;
    // a kill -9 cannot tear a rename. Syncing each chunk would cost far more than it protects.
    sync: false,
  });
  const opened = await store.open();
  if (opened.discarded.length > 0) {
    reporter.info(`${name}: discarded ${opened.discarded.length} chunk files that failed verification`);
  }
  const random = new Random(randomInt(0, 2 ** 32));
  const peerId = makePeerId(name, random);
  const engine = new Engine({
    role: 'peer',
    name,
    peerId,
    infoHash: metainfo.infoHash,
    pieceHashes: metainfo.pieceHashes,
    geometry,
    sha1,
    random,
    have: opened.have,
    fromOwner: opened.fromOwner,
    topology: options.topology,
    picker: options.picker,
    phases: options.phases,
    ...infoDictionary(torrentBytes),
  });
  const startedAt = Date.now();
  let held = opened.have.count;
  let finished: { sha256: string; path: string } | undefined;
  let resolveDone: (() => void) | undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  let failure: string | undefined;
  const driver = new SocketDriver({
    engine,
    storage: store,
    host: options.host,
    port: options.port,
    onActivity: (event, elapsedMs) => {
      reporter.activity(event, elapsedMs);
      if (event.kind === 'chunk-received') {
        held++;
        reporter.progress(held, geometry.pieceCount, elapsedMs);
      }
    },
    onComplete: () => {
      store.combine().then(
        (combined) => {
          finished = combined;
          const stats = engine.getStats();
          const fromOwner = store.fromOwnerField().count;
          reporter.event({
            event: 'complete',
            fileSha256: combined.sha256,
            path: combined.path,
            completedAtMs: Date.now() - startedAt,
            chunksFromOwner: fromOwner,
            chunksFromPeers: geometry.pieceCount - fromOwner,
            bytesUp: stats.bytesUp,
            bytesDown: stats.bytesDown,
          });
          reporter.info(
            `${name}: complete, verified, written to ${combined.path} (sha256 ${combined.sha256})`,
          );
          void sendAnnounce('completed');
          if (options.exitWhenDone) resolveDone?.();
        },
        (error: Error) => {
          failure = `could not combine the file: ${error.message}`;
          resolveDone?.();
        },
      );
    },
    // The store's message already names the chunk ("cannot store chunk 5: disk full ...").
    onStorageError: (_index, error) => reporter.error(`${name}: ${error.message}`),
  });
  const port = await listenOrExplain(driver, options.host, options.port);
  reporter.event({
    event: 'listening',
    role: 'peer',
    id: options.id,
    host: options.host,
    port,
    dir: options.dir,
    have: held,
  });
  reporter.info(
    `${name}: listening on ${options.host}:${port}, ${held}/${geometry.pieceCount} chunks verified in ${options.dir}`,
  );
  reporter.progress(held, geometry.pieceCount, 0);

  const initial: { address: string; role: PeerRole }[] = [];
  if (source.kind === 'owner') initial.push({ address: formatAddress(source.owner), role: 'owner' });
  else
    for (const address of source.connect)
      initial.push({ address: formatAddress(address), role: 'neighbour' });
  if (options.downloadFrom !== undefined)
    initial.push({ address: formatAddress(options.downloadFrom), role: 'download-neighbour' });
  if (initial.length > 0) driver.addPeers(initial);

  // With --torrent the tracker is whatever the torrent names (maybe none, maybe unreachable): trading
  // with the --connect peers does not depend on it.
  const announceUrl =
    metainfo.announce ??
    (source.kind === 'owner' ? `http://${formatAddress(source.owner)}/announce` : undefined);
  let trackerFailureReported = false;
  const chosen = new Set<string>();
  let announceTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  const sendAnnounce = async (event?: 'started' | 'completed' | 'stopped'): Promise<number> => {
    if (announceUrl === undefined) return 300;
    const stats = engine.getStats();
    const outcome = await announce(
      {
        announceUrl,
        infoHash: metainfo.infoHash,
        peerId,
        port,
        uploaded: stats.bytesUp,
        downloaded: stats.bytesDown,
        left: engine.isComplete ? 0 : geometry.totalLengthBytes - held * geometry.pieceLengthBytes,
        ...(event === undefined ? {} : { event }),
        numwant: 50,
      },
      { timeoutMs: 3_000 },
    );
    if (!outcome.ok && source.kind === 'torrent' && !trackerFailureReported && !stopping) {
      trackerFailureReported = true;
      reporter.info(`${name}: tracker ${announceUrl} failed (${outcome.error}); trading with known peers`);
    }
    if (!outcome.ok || event === 'stopped' || stopping) return 5;
    const response = outcome.response;
    const peers: { address: string; role: PeerRole }[] = [];
    if (options.topology === 'ring') {
      if (options.downloadFrom === undefined && response.downloadFrom !== undefined) {
        peers.push({ address: formatAddress(response.downloadFrom), role: 'download-neighbour' });
      }
    } else if (options.topology !== 'star') {
      const candidates = response.peers.map(formatAddress).filter((address) => !chosen.has(address));
      random.shuffle(candidates);
      const limit =
        options.topology === 'full' ? candidates.length : Math.max(0, options.degree - chosen.size);
      for (const address of candidates.slice(0, limit)) {
        chosen.add(address);
        peers.push({ address, role: 'neighbour' });
      }
    }
    if (peers.length > 0) driver.addPeers(peers);
    return response.intervalSeconds;
  };
  const loop = async (event?: 'started'): Promise<void> => {
    const intervalSeconds = await sendAnnounce(event);
    if (stopping) return;
    announceTimer = setTimeout(() => void loop(), Math.max(1, Math.min(intervalSeconds, 300)) * 1000);
  };
  if (announceUrl !== undefined) void loop('started');

  await Promise.race([done, untilSignal()]);
  stopping = true;
  if (announceTimer !== undefined) clearTimeout(announceTimer);
  const finalStats = engine.getStats();
  reporter.event({
    event: 'stopped',
    complete: finished !== undefined,
    bytesUp: finalStats.bytesUp,
    bytesDown: finalStats.bytesDown,
  });
  if (announceUrl !== undefined) await sendAnnounce('stopped');
  await driver.stop();
  await store.close();
  if (failure !== undefined) {
    reporter.error(`${name}: ${failure}`);
    return 1;
  }
  return finished !== undefined ? 0 : 1;
}
