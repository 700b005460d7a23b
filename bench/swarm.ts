/**
 * Owner + N peers as processes on loopback: seconds until every peer has verified the whole file,
 * and the aggregate rate delivered (peers × file size / seconds), for a ring and a mesh.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runLocalSwarm } from '../src/app/local-swarm.ts';
import { MB, makeRandomFile, makeTempDir, median, removeDir, repeat, requireFreeSpace, say } from './lib.ts';

export interface SwarmOptions {
  readonly bytes: number;
  readonly peers: number;
  readonly runs: number;
  /** Stop repeating (a ring run and a mesh run each time) once the stage has used this long. */
  readonly budgetMs: number;
  readonly timeoutMs: number;
}

export interface SwarmRun {
  /** From the first peer ready to download (torrent fetched, listening) to the last peer complete. */
  readonly seconds: number;
  /** From the owner listening, so including the peers' process start-up. */
  readonly wallSeconds: number;
}

/**
 * One run of our owner and `options.peers` peers on `file`. Both layouts trade from the first chunk
 * (overlapped) and pick rarest first: our fastest policy. (The anchor stage runs it too.)
 */
export async function swarmOnce(
  file: string,
  dir: string,
  topology: 'ring' | 'mesh',
  options: Pick<SwarmOptions, 'peers' | 'timeoutMs'>,
): Promise<SwarmRun> {
  let ownerAtMs = Number.NaN;
  let firstReadyAtMs = Number.POSITIVE_INFINITY;
  let lastCompleteAtMs = 0;
  const result = await runLocalSwarm({
    file,
    dir,
    peers: options.peers,
    topology,
    picker: 'rarest-first',
    phases: 'overlapped',
    timeoutMs: options.timeoutMs,
    onLine: (name, line) => {
      const atMs = performance.now();
      if (line.event === 'listening') {
        if (name === 'owner') ownerAtMs = atMs;
        else firstReadyAtMs = Math.min(firstReadyAtMs, atMs);
      } else if (line.event === 'complete' && name !== 'owner') {
        lastCompleteAtMs = Math.max(lastCompleteAtMs, atMs);
      }
    },
  });
  if (!result.ok) throw new Error(`${topology} swarm failed: ${result.failure}`);
  return {
    seconds: (lastCompleteAtMs - firstReadyAtMs) / 1000,
    wallSeconds: (lastCompleteAtMs - ownerAtMs) / 1000,
  };
}

export async function swarmBench(options: SwarmOptions): Promise<Record<string, number>> {
  const dir = await makeTempDir('swarm');
  try {
    // The file, the owner's chunks, and per peer its chunks and its combined copy.
    await requireFreeSpace(dir, (2 + 2 * options.peers) * options.bytes + 256 * 1024 * 1024);
    const file = join(dir, 'swarm.bin');
    await makeRandomFile(file, options.bytes);
    // Ring and mesh alternate, so a budget cut leaves both with as many runs, taken side by side.
    const runs: Record<'ring' | 'mesh', SwarmRun[]> = { ring: [], mesh: [] };
    await repeat(options.runs, options.budgetMs, async (run) => {
      for (const topology of ['ring', 'mesh'] as const) {
        const runDir = join(dir, `${topology}${run + 1}`);
        try {
          await mkdir(runDir);
          const result = await swarmOnce(file, runDir, topology, options);
          say(
            `swarm ${topology} run ${run + 1}: ${result.seconds.toFixed(2)} s (${result.wallSeconds.toFixed(2)} s from the owner's start)`,
          );
          runs[topology].push(result);
        } finally {
          await removeDir(runDir);
        }
      }
    });
    const out: Record<string, number> = {};
    for (const [topology, name] of [
      ['ring', 'Ring'],
      ['mesh', 'Mesh'],
    ] as const) {
      const seconds = median(runs[topology].map((run) => run.seconds));
      out[`swarm${name}Seconds`] = seconds;
      out[`swarm${name}MBps`] = (options.peers * options.bytes) / MB / seconds;
      out[`swarm${name}WallSeconds`] = median(runs[topology].map((run) => run.wallSeconds));
      out[`swarm${name}Runs`] = runs[topology].length;
    }
    return out;
  } finally {
    await removeDir(dir);
  }
}
