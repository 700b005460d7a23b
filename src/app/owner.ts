/**
 * The owner process: cuts the file into chunk files, writes the `.torrent`, serves chunks and the
 * swarm's HTTP tracker on one port, and lists itself in that tracker so its `.torrent` alone is
 * enough to join.
 */
import { randomInt } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Geometry, planChunks } from '../engine/chunking.ts';
import { Engine, type OwnerAdvertising } from '../engine/engine.ts';
import { toHex } from '../engine/hash.ts';
import { createTorrent, magnetLink } from '../engine/metainfo.ts';
import { makePeerId } from '../engine/peer-id.ts';
import { Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import { SocketDriver } from '../transport/driver.ts';
import { hashFileChunks } from '../transport/file-hashing.ts';
import { ChunkStore } from '../transport/store.ts';
import { Tracker } from '../transport/tracker.ts';
import type { HostPort } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import { type OutputMode, Reporter } from './output.ts';
import { formatOwnerStatus, STATUS_REDRAW_MS, TransferMeters } from './progress.ts';
import { formatAddress, infoDictionary, Start, untilSignal } from './startup.ts';

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
  /** `npm start`'s clock origin (epoch ms), so every process prints times on one clock. */
  readonly clockOriginMs: number | undefined;
  /** On a terminal too, every activity line instead of the status line. */
  readonly log?: boolean;
}

async function sizeOf(file: string): Promise<number> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new UsageFailure(`--file ${file} is not a regular file`);
    return info.size;
  } catch (error) {
    if (error instanceof UsageFailure) throw error;
    throw new UsageFailure(
      `cannot read --file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** The torrent as peers will see it: the bare info first (for the engine), then with the tracker URL. */
async function hashTorrent(file: string, size: number, geometry: Geometry) {
  const hashed = await hashFileChunks(file, geometry.pieceLengthBytes, sha1);
  if (hashed.totalLengthBytes !== size) throw new Error(`${file} changed while it was being read`);
  const name = basename(file);
  const info = { name, totalLengthBytes: size, pieceLengthBytes: geometry.pieceLengthBytes };
  const bare = createTorrent({ ...info, pieceHashes: hashed.pieceHashes }, sha1);
  const withTracker = (announce: string) =>
    createTorrent({ ...info, pieceHashes: hashed.pieceHashes, announce }, sha1);
  return { name, bare, withTracker };
}

/** On a terminal: what the owner has sent, how fast, to how many peers, redrawn until it stops. */
function startOwnerStatus(
  reporter: Reporter,
  engine: Engine,
  now: () => number,
  fileBytes: number,
): () => void {
  if (!reporter.live) return () => undefined;
  const meters = new TransferMeters();
  const draw = (final: boolean): void => {
    const stats = engine.getStats();
    const { upBytesPerSecond } = meters.sample(stats, now());
    const peers = engine.openConnectionCount();
    reporter.status(
      formatOwnerStatus({ node: 'owner', sentBytes: stats.bytesUp, fileBytes, upBytesPerSecond, peers }),
      final,
    );
  };
  const timer = setInterval(() => draw(false), STATUS_REDRAW_MS);
  timer.unref();
  draw(false);
  return () => {
    clearInterval(timer);
    draw(true);
  };
}

export async function runOwner(options: OwnerOptions): Promise<number> {
  const reporter = new Reporter(options.output, 'owner', options.clockOriginMs, options.log === true);
  const size = await sizeOf(options.file);
  const plan = planChunks(size, options.chunkSizeBytes);
  if (!plan.ok) throw new UsageFailure(`${options.file}: ${plan.error.message}`);
  const { geometry } = plan;
  const dir = options.dir ?? `${options.file}.chunks`;
  const torrentPath = options.torrentPath ?? `${options.file}.torrent`;
  const start = await Start.inFolder(dir, '--dir');
  const { name, bare, withTracker } = await hashTorrent(options.file, size, geometry);
  const store = new ChunkStore({
    dir,
    geometry,
    pieceHashes: bare.metainfo.pieceHashes,
    sha1,
    fileName: name,
    infoHashHex: toHex(bare.metainfo.infoHash),
    label: 'owner',
  });
  let tracker: Tracker | undefined;
  const random = new Random(randomInt(0, 2 ** 32));
  const peerId = makePeerId('owner', random);
  const engine = new Engine({
    role: 'owner',
    name: 'owner',
    peerId,
    infoHash: bare.metainfo.infoHash,
    pieceHashes: bare.metainfo.pieceHashes,
    geometry,
    sha1,
    random,
    ownerAdvertising: options.advertising,
    ownerShareChunks: Math.ceil(geometry.pieceCount / options.expectedPeers),
    ...infoDictionary(bare.bytes),
  });
  const driver = new SocketDriver({
    engine,
    storage: store,
    host: options.host,
    port: options.port,
    httpHandler: (request, response) => {
      if (tracker === undefined) response.writeHead(503).end();
      else tracker.handle(request, response);
    },
    onActivity: (event, elapsedMs) => reporter.activity(event, elapsedMs),
  });
  reporter.startClock();
  const open = { store, driver };
  await start.step(() => store.importFrom(options.file), open);
  const port = await start.listen(driver, options.host, options.port, open);
  const torrent = withTracker(`http://${formatAddress({ host: options.host, port })}/announce`);
  await start.step(
    () =>
      writeFile(torrentPath, torrent.bytes).catch((error: NodeJS.ErrnoException) => {
        throw new UsageFailure(`cannot write --torrent ${torrentPath}: ${error.code ?? error.message}`);
      }),
    open,
  );
  tracker = new Tracker({
    infoHash: torrent.metainfo.infoHash,
    torrentBytes: torrent.bytes,
    intervalSeconds: options.announceIntervalSeconds,
    // The owner is a seeder too: a peer with only the .torrent learns its address from the tracker.
    seed: { host: options.host, port, peerId },
  });
  const magnet = magnetLink(torrent.metainfo);
  reporter.event({
    event: 'listening',
    role: 'owner',
    host: options.host,
    port,
    torrent: torrentPath,
    magnet,
    chunks: geometry.pieceCount,
    chunkSizeBytes: geometry.pieceLengthBytes,
    infoHash: toHex(torrent.metainfo.infoHash),
  });
  reporter.info(
    `owner: serving ${name} (${size} bytes, ${geometry.pieceCount} chunks of ${geometry.pieceLengthBytes}) on ${formatAddress({ host: options.host, port })}`,
  );
  reporter.info(`owner: torrent ${torrentPath}`);
  reporter.info(`owner: ${magnet}`);
  if (options.connect.length > 0) {
    driver.addPeers(
      options.connect.map((address) => ({
        address: formatAddress(address),
        role: 'neighbour' as const,
        dialAlways: true,
      })),
    );
  }
  const stopStatusLine = startOwnerStatus(reporter, engine, () => driver.now(), size);
  const wait = untilSignal();
  const reason = await wait.signalled;
  stopStatusLine();
  reporter.info(`owner: ${reason}, shutting down (sent ${engine.getStats().bytesUp} bytes)`);
  await driver.stop();
  await store.close();
  return 0;
}
