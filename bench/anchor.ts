/**
 * The anchor (#14): libtorrent measured in the same run, on the same file, 102400-byte pieces,
 * loopback, side by side with ours:
 *
 *   - libtorrent: a libtorrent seeder and N libtorrent leechers;
 *   - ours: our owner and N of our peers, mesh and ring, overlapped, rarest first (`swarm.ts`);
 *   - a foreign seeder: the same libtorrent seeder with N of our peers (`swarm peer --torrent`,
 *     mesh, overlapped, rarest first), and how many chunks our peers sent each other meanwhile.
 *
 * Every time is taken as in `swarm.ts`: from the first leecher ready (its `listening` line: torrent
 * loaded, port open) to the last leecher complete (its `complete` line: every piece verified), as
 * this process reads their lines. Process start-up before `listening` is left out on both sides.
 *
 * Leechers find each other the same way on both sides, without a tracker (PEX, DHT and local
 * discovery are off): their ports are chosen beforehand, all are started together, and each is
 * given `--connect` to the seeder and to every other leecher; a dial that finds a leecher not yet
 * listening is retried (our engine with backoff from 250 ms, the libtorrent driver once a second).
 *
 * Skipped, with one line saying why, when /usr/bin/python3 cannot import libtorrent.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CHUNK_SIZE_BYTES } from '../src/engine/chunking.ts';
import {
  type EventLine,
  freePort,
  makeRandomFile,
  makeTempDir,
  median,
  type NodeProcess,
  removeDir,
  repeat,
  requireFreeSpace,
  say,
  spawnProgram,
  spawnSwarmCli,
  writeTorrent,
} from './lib.ts';
import { LIBTORRENT_DRIVER, probeLibtorrent, SYSTEM_PYTHON } from './libtorrent-driver.ts';
import { swarmOnce } from './swarm.ts';

export interface AnchorOptions {
  readonly bytes: number;
  /** Leechers on each side (peers of ours, libtorrent leechers). */
  readonly leechers: number;
  readonly runs: number;
  /** Stop repeating (a round of all four runs each time) once the stage has used this long. */
  readonly budgetMs: number;
  /** Each run's limit: every leecher complete within this, or the stage fails. */
  readonly timeoutMs: number;
}

/** The seeder must have checked the file and be serving within this. */
const SEEDER_READY_MS = 60_000;

const isListening = (line: EventLine): boolean => line.event === 'listening';
const isComplete = (line: EventLine): boolean => line.event === 'complete';

interface LeechersRun {
  readonly seconds: number;
  readonly leechers: readonly NodeProcess[];
}

/**
 * Starts `count` leechers together and times them, from the first `listening` line to the last
 * `complete` line. Every leecher is stopped by PID however it ends (they exit by themselves when
 * done).
 */
async function timeLeechers(
  what: string,
  count: number,
  timeoutMs: number,
  start: (index: number, onLine: (line: EventLine, atMs: number) => void) => NodeProcess,
): Promise<LeechersRun> {
  let firstReadyAtMs = Number.POSITIVE_INFINITY;
  let lastCompleteAtMs = 0;
  const onLine = (line: EventLine, atMs: number): void => {
    if (isListening(line)) firstReadyAtMs = Math.min(firstReadyAtMs, atMs);
    else if (isComplete(line)) lastCompleteAtMs = Math.max(lastCompleteAtMs, atMs);
  };
  const leechers: NodeProcess[] = [];
  try {
    for (let index = 0; index < count; index++) leechers.push(start(index, onLine));
    await Promise.all(
      leechers.map((leecher, index) =>
        leecher.waitFor(isComplete, timeoutMs, `${what}, leecher ${index + 1}`),
      ),
    );
    return { seconds: (lastCompleteAtMs - firstReadyAtMs) / 1000, leechers };
  } finally {
    await Promise.all(leechers.map((leecher) => leecher.stop(2_000)));
  }
}

/** Distinct free loopback ports, one per leecher, known before any of them starts. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let attempts = 0; ports.length < count && attempts < 10 * count; attempts++) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} of ${count} free ports`);
  return ports;
}

/** `--connect` flags to the seeder and to every leecher but `index`. */
function connectFlags(seederPort: number, ports: readonly number[], index: number): string[] {
  const others = [seederPort, ...ports.filter((_, other) => other !== index)];
  return others.flatMap((port) => ['--connect', `127.0.0.1:${port}`]);
}

function driverSeconds(timeoutMs: number): string {
  return String(Math.ceil(timeoutMs / 1000) + 5);
}

/** N libtorrent leechers from the libtorrent seeder; also how much they uploaded, in bytes. */
async function libtorrentLeechers(
  torrent: string,
  runDir: string,
  seederPort: number,
  options: AnchorOptions,
): Promise<{ seconds: number; peerUploadBytes: number }> {
  const ports = await freePorts(options.leechers);
  for (let index = 0; index < options.leechers; index++) await mkdir(join(runDir, `lt${index + 1}`));
  const run = await timeLeechers(
    'libtorrent leechers',
    options.leechers,
    options.timeoutMs,
    (index, onLine) =>
      spawnProgram(
        SYSTEM_PYTHON,
        [
          ...['-c', LIBTORRENT_DRIVER, '--torrent', torrent, '--save', join(runDir, `lt${index + 1}`)],
          ...['--port', String(ports[index]), ...connectFlags(seederPort, ports, index)],
          ...['--exit-when-done', '--max-seconds', driverSeconds(options.timeoutMs)],
        ],
        { onLine },
      ),
  );
  let peerUploadBytes = 0;
  for (const leecher of run.leechers)
    peerUploadBytes += Number(leecher.lines.find(isComplete)?.uploaded ?? 0);
  return { seconds: run.seconds, peerUploadBytes };
}

/**
 * Whether a `chunk-sent` line's destination is the libtorrent seeder: its label is libtorrent's
 * client tag and the address we dialled (`LT2080@127.0.0.1:PORT`). A seeder asks for nothing, so
 * this only guards the count.
 */
export function sentToSeeder(to: string, seederPort: number): boolean {
  return /^LT[0-9A-Za-z]{4}@/.test(to) || to.endsWith(`:${seederPort}`);
}

/** N of our peers from the libtorrent seeder; also the chunks (and bytes) they sent each other. */
async function ourLeechers(
  torrent: string,
  runDir: string,
  seederPort: number,
  fileSha256: string,
  options: AnchorOptions,
): Promise<{ seconds: number; peerUploadChunks: number; peerUploadBytes: number }> {
  const ports = await freePorts(options.leechers);
  let peerUploadChunks = 0;
  let peerUploadBytes = 0;
  const run = await timeLeechers(
    'our peers from libtorrent',
    options.leechers,
    options.timeoutMs,
    (index, onLine) =>
      spawnSwarmCli(
        [
          ...[
            'peer',
            '--torrent',
            torrent,
            '--id',
            String(index + 1),
            '--dir',
            join(runDir, `Peer${index + 1}Dir`),
          ],
          ...['--port', String(ports[index]), ...connectFlags(seederPort, ports, index)],
          ...['--topology', 'mesh', '--phases', 'overlapped', '--picker', 'rarest-first'],
          ...['--exit-when-done', '--give-up-after', driverSeconds(options.timeoutMs)],
        ],
        {
          onLine: (line, atMs) => {
            onLine(line, atMs);
            if (line.event !== 'activity' || line.kind !== 'chunk-sent') return;
            if (sentToSeeder(String(line.to), seederPort)) return;
            peerUploadChunks += 1;
            peerUploadBytes += Number(line.bytes);
          },
        },
      ),
  );
  for (const [index, leecher] of run.leechers.entries()) {
    const sha256 = leecher.lines.find(isComplete)?.fileSha256;
    if (sha256 !== fileSha256) throw new Error(`our peer ${index + 1} from libtorrent: its copy differs`);
  }
  return { seconds: run.seconds, peerUploadChunks, peerUploadBytes };
}

interface Round {
  readonly libtorrentSeconds: number;
  readonly libtorrentPeerUploadBytes: number;
  readonly meshSeconds: number;
  readonly ringSeconds: number;
  readonly foreignSeconds: number;
  readonly foreignPeerUploadChunks: number;
  readonly foreignPeerUploadBytes: number;
}

async function startSeeder(
  torrent: string,
  dir: string,
  maxMs: number,
): Promise<{ seeder: NodeProcess; port: number }> {
  const seeder = spawnProgram(SYSTEM_PYTHON, [
    ...['-c', LIBTORRENT_DRIVER, '--torrent', torrent, '--save', dir, '--seed'],
    ...['--max-seconds', driverSeconds(maxMs)],
  ]);
  const listening = await seeder.waitFor(isListening, SEEDER_READY_MS, 'the libtorrent seeder listening');
  await seeder.waitFor((line) => line.event === 'seeding', SEEDER_READY_MS, 'the libtorrent seeder seeding');
  return { seeder, port: Number(listening.port) };
}

export async function anchorBench(options: AnchorOptions): Promise<Record<string, number>> {
  const probe = probeLibtorrent();
  if (!probe.ok) {
    say(
      `anchor skipped: /usr/bin/python3 cannot import libtorrent (${probe.reason}); install python3-libtorrent`,
    );
    return {};
  }
  const dir = await makeTempDir('anchor');
  let seeder: NodeProcess | undefined;
  try {
    // The file, and per leecher at most its chunks and its combined copy (ours), plus the owner's.
    await requireFreeSpace(dir, (2 + 2 * options.leechers) * options.bytes + 256 * 1024 * 1024);
    const file = join(dir, 'anchor.bin');
    const fileSha256 = await makeRandomFile(file, options.bytes);
    const torrent = await writeTorrent(file, DEFAULT_CHUNK_SIZE_BYTES, join(dir, 'anchor.torrent'));
    // One seeder for the whole stage: the libtorrent leechers and ours download from the same one.
    const started = await startSeeder(torrent, dir, options.budgetMs + 4 * options.timeoutMs);
    seeder = started.seeder;
    const seederPort = started.port;
    say(`anchor: libtorrent ${probe.version} seeding on 127.0.0.1:${seederPort}`);
    const swarm = { peers: options.leechers, timeoutMs: options.timeoutMs };
    const rounds = await repeat(options.runs, options.budgetMs, async (run): Promise<Round> => {
      const runDir = join(dir, `run${run + 1}`);
      const inRun = async <T>(name: string, body: (at: string) => Promise<T>): Promise<T> => {
        const at = join(runDir, name);
        await mkdir(at, { recursive: true });
        try {
          return await body(at);
        } finally {
          await removeDir(at);
        }
      };
      const lt = await inRun('libtorrent', (at) => libtorrentLeechers(torrent, at, seederPort, options));
      const mesh = await inRun('mesh', (at) => swarmOnce(file, at, 'mesh', swarm));
      const ring = await inRun('ring', (at) => swarmOnce(file, at, 'ring', swarm));
      const foreign = await inRun('foreign', (at) =>
        ourLeechers(torrent, at, seederPort, fileSha256, options),
      );
      await removeDir(runDir);
      say(
        `anchor run ${run + 1}: libtorrent ${lt.seconds.toFixed(2)} s, our mesh ${mesh.seconds.toFixed(2)} s, ` +
          `our ring ${ring.seconds.toFixed(2)} s, our peers from the libtorrent seeder ${foreign.seconds.toFixed(2)} s ` +
          `(${foreign.peerUploadChunks} chunks between them)`,
      );
      return {
        libtorrentSeconds: lt.seconds,
        libtorrentPeerUploadBytes: lt.peerUploadBytes,
        meshSeconds: mesh.seconds,
        ringSeconds: ring.seconds,
        foreignSeconds: foreign.seconds,
        foreignPeerUploadChunks: foreign.peerUploadChunks,
        foreignPeerUploadBytes: foreign.peerUploadBytes,
      };
    });
    return summarize(rounds, options);
  } finally {
    await seeder?.stop(2_000);
    await removeDir(dir);
  }
}

/** Medians over the rounds; each ratio is ours over libtorrent's, median against median. */
function summarize(rounds: readonly Round[], options: AnchorOptions): Record<string, number> {
  const of = (key: keyof Round): number => median(rounds.map((round) => round[key]));
  const libtorrentSeconds = of('libtorrentSeconds');
  const downloadedBytes = options.leechers * options.bytes;
  return {
    libtorrentSeconds,
    anchorMeshSeconds: of('meshSeconds'),
    anchorRingSeconds: of('ringSeconds'),
    swarmVsLibtorrent: of('meshSeconds') / libtorrentSeconds,
    swarmRingVsLibtorrent: of('ringSeconds') / libtorrentSeconds,
    foreignSeederSeconds: of('foreignSeconds'),
    foreignSeederVsLibtorrent: of('foreignSeconds') / libtorrentSeconds,
    foreignSeederPeerUploadChunks: of('foreignPeerUploadChunks'),
    /** Of every byte the leechers downloaded, the share that came from another leecher. */
    foreignSeederPeerUploadShare: of('foreignPeerUploadBytes') / downloadedBytes,
    libtorrentPeerUploadShare: of('libtorrentPeerUploadBytes') / downloadedBytes,
    anchorRuns: rounds.length,
  };
}
