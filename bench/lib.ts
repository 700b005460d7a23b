/**
 * Shared pieces of the benchmark harness: statistics, temporary files, and child processes that are
 * always started with a time limit and always stopped by their PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, open, rm, statfs, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type EventLine, parseEventLine } from '../src/app/processes.ts';
import { createTorrent } from '../src/engine/metainfo.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { hashFileChunks } from '../src/transport/file-hashing.ts';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** Throughput is reported in decimal megabytes per second, as network tools do. */
export const MB = 1_000_000;

/** The `swarm` CLI, run from source through tsx's loader (what `npx swarm` and the tests run). */
export const SWARM_CLI = fileURLToPath(new URL('../src/app/cli.ts', import.meta.url));
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const GNU_TIME = '/usr/bin/time';

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

let log = (message: string): void => {
  process.stderr.write(`bench: ${message}\n`);
};

/** Progress goes to stderr, so `--json` keeps stdout to the one JSON object. */
export function say(message: string): void {
  log(message);
}

/** Where progress lines go instead (the smoke test keeps them). */
export function setProgress(write: (message: string) => void): void {
  log = write;
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * Runs `once` up to `target` times (at least once), stopping early when another run as long as the
 * longest so far would overrun `budgetMs` for the stage. Returns every run's result.
 */
export async function repeat<T>(
  target: number,
  budgetMs: number,
  once: (run: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  const startedAt = performance.now();
  let longestMs = 0;
  for (let run = 0; run < target; run++) {
    const spent = performance.now() - startedAt;
    if (run > 0 && spent + longestMs > budgetMs) {
      say(`stopping after ${run} of ${target} runs to stay inside the time budget`);
      break;
    }
    const runStart = performance.now();
    results.push(await once(run));
    longestMs = Math.max(longestMs, performance.now() - runStart);
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Files

/** Temporary folders not yet removed: `removeTempDirsNow` deletes them if the run is cut short. */
const tempDirs = new Set<string>();

/** A fresh folder in `os.tmpdir()`, removed by `removeDir` (or on exit unless `keep`). */
export async function makeTempDir(label: string, keep = false): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `swarm-bench-${label}-`));
  if (!keep) tempDirs.add(dir);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  tempDirs.delete(dir);
}

/** Last resort on the way out (`process.on('exit')`, so synchronous). */
export function removeTempDirsNow(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Fails early, with a clear message, when `dir`'s file system has less than `bytes` free. */
export async function requireFreeSpace(dir: string, bytes: number): Promise<void> {
  const info = await statfs(dir);
  const free = info.bavail * info.bsize;
  if (free < bytes) {
    throw new Error(
      `${dir} has ${(free / GiB).toFixed(1)} GiB free; this stage needs ${(bytes / GiB).toFixed(1)} GiB`,
    );
  }
}

/** Writes `bytes` random bytes to `path` (4 MiB at a time) and returns their SHA-256. */
export async function makeRandomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const block = Buffer.allocUnsafe(Math.min(4 * MiB, bytes));
  const handle = await open(path, 'wx');
  try {
    for (let written = 0; written < bytes; ) {
      const length = Math.min(block.length, bytes - written);
      const part = block.subarray(0, length);
      randomFillSync(part);
      hash.update(part);
      await handle.write(part, 0, length);
      written += length;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes a standard single-file .torrent of `file` with our own code (any piece length). */
export async function writeTorrent(
  file: string,
  pieceLengthBytes: number,
  out: string,
  announce?: string,
): Promise<string> {
  const hashed = await hashFileChunks(file, pieceLengthBytes, sha1);
  const name = file.slice(file.lastIndexOf('/') + 1);
  const { bytes } = createTorrent(
    {
      name,
      totalLengthBytes: hashed.totalLengthBytes,
      pieceLengthBytes,
      pieceHashes: hashed.pieceHashes,
      announce,
    },
    sha1,
  );
  await writeFile(out, bytes);
  return out;
}

/**
 * A free TCP port on 127.0.0.1, for a client that cannot pick its own and report it, or for
 * processes that must know each other's ports before they start (another process could take it
 * in between: loopback only, so rare).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes

export type { EventLine };

export interface NodeProcess {
  readonly child: ChildProcess;
  /** The program itself (under `/usr/bin/time` it is the wrapper's child). */
  readonly exited: Promise<number | null>;
  readonly lines: EventLine[];
  readonly stderr: string[];
  /** The first line for which `test` holds; rejects when the process exits first or after `timeoutMs`. */
  waitFor(test: (line: EventLine) => boolean, timeoutMs: number, what: string): Promise<EventLine>;
  /** Waits up to `timeoutMs` for the process to exit on its own; stops it if it has not. */
  waitForExit(timeoutMs: number): Promise<number | null>;
  /** SIGTERM to the program by PID, SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL now, by PID, without waiting. */
  kill(): void;
  /** Peak RSS in bytes, when started with `measureRss` (read after exit). */
  peakRssBytes(): number | undefined;
}

export interface SpawnOptions {
  /** Flags for `node` itself, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[];
  /** Run under GNU time to learn the process's peak RSS (falls back to polling VmHWM). */
  readonly measureRss?: { readonly outputFile: string };
  readonly onLine?: (line: EventLine, atMs: number) => void;
}

const running = new Set<NodeProcess>();

/** Last resort on the way out (`process.on('exit')`): SIGKILL, by PID, whatever is still running. */
export function killAllNow(): void {
  for (const process_ of running) process_.kill();
}

/** Stops every process this harness started and has not yet seen exit (by PID). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((process_) => process_.stop(2_000)));
}

/** `swarm <args> --json` from source. */
export function spawnSwarmCli(args: readonly string[], options: SpawnOptions = {}): NodeProcess {
  return spawnNodeScript(SWARM_CLI, [...args, '--json'], options);
}

/** `node [flags] --import tsx <script> <args>`; each stdout line is parsed as JSON when it can be. */
export function spawnNodeScript(
  script: string,
  args: readonly string[],
  options: SpawnOptions = {},
): NodeProcess {
  const nodeArgs = [...(options.nodeFlags ?? []), '--import', TSX_LOADER, script, ...args];
  return spawnProgram(process.execPath, nodeArgs, options);
}

/**
 * Any program (`nodeFlags` aside, the same options), registered like the Node ones: stopped by PID
 * by `stopAll`, killed on the way out; each stdout line is parsed as JSON when it can be.
 */
export function spawnProgram(
  program: string,
  args: readonly string[],
  options: SpawnOptions = {},
): NodeProcess {
  const useTime = options.measureRss !== undefined && existsSync(GNU_TIME);
  const child =
    useTime && options.measureRss !== undefined
      ? spawn(GNU_TIME, ['-f', '%M', '-o', options.measureRss.outputFile, program, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: EventLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<{ test: (line: EventLine) => boolean; resolve: (line: EventLine) => void }>();
  let polledHwmKiB = 0;
  let poll: NodeJS.Timeout | undefined;
  if (options.measureRss !== undefined && !useTime && child.pid !== undefined) {
    // No GNU time: sample the kernel's high-water mark while the process runs.
    const pid = child.pid;
    poll = setInterval(() => {
      polledHwmKiB = Math.max(polledHwmKiB, readVmHwmKiB(pid));
    }, 20);
  }
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      if (poll !== undefined) clearInterval(poll);
      running.delete(self);
      resolve(code);
    }),
  );
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    const atMs = performance.now();
    const line = parseEventLine(text);
    lines.push(line);
    options.onLine?.(line, atMs);
    for (const waiter of waiters) {
      if (waiter.test(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (text) => {
    if (stderr.length < 200) stderr.push(text);
  });

  /** The PID to signal: the program's, also when GNU time is its parent. */
  const nodePid = (): number | undefined => {
    if (child.pid === undefined) return undefined;
    if (!useTime) return child.pid;
    try {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      const first = Number(children.split(/\s+/)[0]);
      return Number.isInteger(first) && first > 0 ? first : undefined;
    } catch {
      return undefined;
    }
  };
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const signal = (name: NodeJS.Signals): void => {
    const pid = nodePid();
    if (pid === undefined) {
      child.kill(name);
      return;
    }
    try {
      process.kill(pid, name);
    } catch {
      // Already gone.
    }
    if (useTime && name === 'SIGKILL') child.kill('SIGKILL');
  };
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (gone()) return;
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const self: NodeProcess = {
    child,
    exited,
    lines,
    stderr,
    waitFor(test, timeoutMs, what) {
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          test,
          resolve: (line: EventLine) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${what}: nothing within ${timeoutMs} ms; stderr: ${stderr.join(' | ')}`));
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then((code) => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`${what}: the process exited (${code}) first; stderr: ${stderr.join(' | ')}`));
        });
      });
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        await stop();
        throw new Error(`the process did not exit within ${timeoutMs} ms`);
      }
      return outcome;
    },
    stop,
    kill() {
      if (!gone()) signal('SIGKILL');
    },
    peakRssBytes() {
      if (options.measureRss === undefined) return undefined;
      if (!useTime) return polledHwmKiB > 0 ? polledHwmKiB * 1024 : undefined;
      try {
        const text = readFileSync(options.measureRss.outputFile, 'utf8');
        const numbers = text.match(/^\d+$/gm);
        const kib = Number(numbers?.[numbers.length - 1]);
        return Number.isFinite(kib) && kib > 0 ? kib * 1024 : undefined;
      } catch {
        return undefined;
      }
    },
  };
  running.add(self);
  return self;
}

function readVmHwmKiB(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]);
  } catch {
    return 0;
  }
}
