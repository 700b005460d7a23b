/**
 * One owner → one peer over loopback TCP, separate processes, with SHA-1 verification, chunk files
 * and the final combine; and a bare Node TCP stream between two processes in the same run.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type EventLine,
  MB,
  makeRandomFile,
  makeTempDir,
  median,
  type NodeProcess,
  removeDir,
  repeat,
  requireFreeSpace,
  type SpawnOptions,
  say,
  sha256OfFile,
  spawnNodeScript,
  spawnSwarmCli,
} from './lib.ts';

const BARE_TCP = new URL('./bare-tcp.ts', import.meta.url).pathname;
const DISK_FLOOR = new URL('./disk-floor.ts', import.meta.url).pathname;
const RECHECK_MAX_BYTES = 256 * 1024 * 1024;

export interface LinkOptions {
  readonly bytes: number;
  readonly runs: number;
  /** Stop repeating once the stage has used this long. */
  readonly budgetMs: number;
  /** Upper bound on any one transfer. */
  readonly timeoutMs: number;
}

/** An owner seeding `file` to anyone (`--advertise all`); resolves once it listens. */
export async function startSeeder(
  file: string,
  dir: string,
  timeoutMs: number,
  nodeFlags: readonly string[] = [],
): Promise<NodeProcess> {
  const owner = spawnSwarmCli(
    [
      'owner',
      '--file',
      file,
      '--port',
      '0',
      '--dir',
      join(dir, 'OwnerDir'),
      '--torrent',
      join(dir, 'bench.torrent'),
      '--advertise',
      'all',
    ],
    { nodeFlags },
  );
  try {
    await owner.waitFor((line) => line.event === 'listening', timeoutMs, 'owner start');
  } catch (error) {
    await owner.stop();
    throw error;
  }
  return owner;
}

export interface Download {
  readonly listeningAtMs: number;
  readonly lastChunkAtMs: number;
  readonly completeAtMs: number;
  readonly peer: NodeProcess;
}

/**
 * One peer that takes every chunk from the owner (star), verifies and combines the file, and exits.
 * Times are from this process's clock when each event line arrived.
 */
export async function download(
  ownerPort: number,
  dir: string,
  id: string,
  expectedSha256: string,
  timeoutMs: number,
  spawnOptions: SpawnOptions = {},
): Promise<Download> {
  let listeningAtMs = Number.NaN;
  let lastChunkAtMs = Number.NaN;
  let completeAtMs = Number.NaN;
  const peer = spawnSwarmCli(
    [
      'peer',
      '--owner',
      `127.0.0.1:${ownerPort}`,
      '--port',
      '0',
      '--dir',
      dir,
      '--id',
      id,
      '--topology',
      'star',
      '--exit-when-done',
    ],
    {
      ...spawnOptions,
      onLine: (line: EventLine, atMs: number) => {
        if (line.event === 'listening') listeningAtMs = atMs;
        else if (line.event === 'activity' && line.kind === 'chunk-received') lastChunkAtMs = atMs;
        else if (line.event === 'complete') completeAtMs = atMs;
      },
    },
  );
  try {
    const complete = await peer.waitFor((line) => line.event === 'complete', timeoutMs, `peer ${id}`);
    await peer.waitForExit(30_000);
    if (complete.fileSha256 !== expectedSha256) {
      throw new Error(
        `peer ${id} finished with sha256 ${String(complete.fileSha256)}, not ${expectedSha256}`,
      );
    }
    // The peer hashes the file it combined; check it independently too, where that is cheap.
    const check = typeof complete.path === 'string' && (await stat(complete.path)).size <= RECHECK_MAX_BYTES;
    if (check && (await sha256OfFile(complete.path as string)) !== expectedSha256) {
      throw new Error(`peer ${id}'s combined file ${complete.path} does not match the original`);
    }
  } finally {
    await peer.stop();
  }
  return { listeningAtMs, lastChunkAtMs, completeAtMs, peer };
}

async function bareTcpOnce(bytes: number, timeoutMs: number): Promise<number> {
  const sink = spawnNodeScript(BARE_TCP, ['sink', String(bytes)]);
  let source: NodeProcess | undefined;
  try {
    const listening = await sink.waitFor((line) => line.event === 'listening', 30_000, 'bare TCP sink');
    source = spawnNodeScript(BARE_TCP, ['source', String(listening.port), String(bytes)]);
    const done = await sink.waitFor((line) => line.event === 'done', timeoutMs, 'bare TCP transfer');
    return Number(done.bytes) / MB / (Number(done.ms) / 1000);
  } finally {
    await Promise.all([sink.stop(), source?.stop()]);
  }
}

/** MB/s of the mission's own disk work on `file` (bench/disk-floor.ts), in a process of its own. */
async function diskFloorOnce(file: string, dir: string, timeoutMs: number): Promise<number> {
  const floor = spawnNodeScript(DISK_FLOOR, [file, dir]);
  try {
    const done = await floor.waitFor((line) => line.event === 'done', timeoutMs, 'disk floor');
    return Number(done.bytes) / MB / (Number(done.ms) / 1000);
  } finally {
    await floor.stop();
  }
}

export async function linkBench(options: LinkOptions): Promise<Record<string, number>> {
  const dir = await makeTempDir('link');
  let owner: NodeProcess | undefined;
  try {
    // The file, the owner's chunk files, one peer's chunk files and its combined copy.
    await requireFreeSpace(dir, 4 * options.bytes + 256 * 1024 * 1024);
    const file = join(dir, 'link.bin');
    const sha256 = await makeRandomFile(file, options.bytes);
    owner = await startSeeder(file, dir, 120_000);
    const port = Number(owner.lines.find((line) => line.event === 'listening')?.port);
    const ours: number[] = [];
    const transfer: number[] = [];
    const bare: number[] = [];
    const floor: number[] = [];
    const startedAt = performance.now();
    await repeat(options.runs, options.budgetMs, async (run) => {
      // Bare TCP first in each round, so both see the machine in the same state.
      const bareMBps = await bareTcpOnce(options.bytes, options.timeoutMs);
      bare.push(bareMBps);
      floor.push(await diskFloorOnce(file, join(dir, `Floor${run + 1}`), options.timeoutMs));
      const peerDir = join(dir, `Peer${run + 1}Dir`);
      const result = await download(port, peerDir, String(run + 1), sha256, options.timeoutMs);
      await removeDir(peerDir);
      const seconds = (result.completeAtMs - result.listeningAtMs) / 1000;
      const mbps = options.bytes / MB / seconds;
      ours.push(mbps);
      transfer.push(options.bytes / MB / ((result.lastChunkAtMs - result.listeningAtMs) / 1000));
      say(
        `link run ${run + 1}: ours ${mbps.toFixed(1)} MB/s (${seconds.toFixed(2)} s), bare TCP ${bareMBps.toFixed(0)} MB/s`,
      );
    });
    const linkMBps = median(ours);
    const bareTcpMBps = median(bare);
    const diskFloorMBps = median(floor);
    say(`link: ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
    return {
      linkMBps,
      linkTransferMBps: median(transfer),
      bareTcpMBps,
      linkRatio: linkMBps / bareTcpMBps,
      diskFloorMBps,
      // The most any peer doing this mission's work could reach: the disk work overlapping the
      // wire perfectly (two cores), it is the slower of the two that sets the pace.
      linkRatioCeiling: Math.min(diskFloorMBps, bareTcpMBps) / bareTcpMBps,
      linkRuns: ours.length,
    };
  } finally {
    await owner?.stop();
    await removeDir(dir);
  }
}
