/**
 * Starting and stopping `swarm` processes: used by `npm start`, the benchmarks and the tests. Each
 * child runs with `--json`, so every line it prints is an event.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
/** tsx's loader by absolute URL, so children start from any working directory. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export type EventLine = Record<string, unknown> & { readonly event?: string };

export interface SwarmProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves with the first event line for which `test` holds (rejects if the process exits first). */
  waitFor(test: (line: EventLine) => boolean): Promise<EventLine>;
  readonly lines: EventLine[];
  readonly stderr: string[];
}

/** One line of a `--json` process: its event, or `{ event: 'text' }` for anything else it printed. */
export function parseEventLine(text: string): EventLine {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as EventLine;
  } catch {
    // Not JSON: kept as text below.
  }
  return { event: 'text', text };
}

/**
 * Starts `swarm <args> --json`; `onLine` sees every event line as it arrives. A `prefix` command runs
 * it (the lab's `ip netns exec NS`); it must exec the process in place, so the child's PID is swarm's.
 */
export function spawnSwarm(
  args: readonly string[],
  onLine?: (line: EventLine) => void,
  json = true,
  prefix: readonly string[] = [],
): SwarmProcess {
  const command = [process.execPath, '--import', TSX_LOADER, CLI, ...args, ...(json ? ['--json'] : [])];
  const [program, ...rest] = [...prefix, ...command] as [string, ...string[]];
  const child = spawn(program, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: EventLine[] = [];
  const stderr: string[] = [];
  const waiters: { test: (line: EventLine) => boolean; resolve: (line: EventLine) => void }[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    const line = parseEventLine(text);
    lines.push(line);
    onLine?.(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i];
      if (waiter?.test(line) === true) {
        waiters.splice(i, 1);
        waiter.resolve(line);
      }
    }
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (text) => stderr.push(text));
  const waitFor = (test: (line: EventLine) => boolean): Promise<EventLine> => {
    const seen = lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ test, resolve });
      void exited.then((code) =>
        reject(
          new Error(
            `swarm ${args.join(' ')} exited (${code}) before the awaited event; stderr: ${stderr.join(' | ')}`,
          ),
        ),
      );
    });
  };
  return { child, exited, waitFor, lines, stderr };
}

/** Asks a process to stop (SIGTERM); kills it if it has not exited within `graceMs`. */
export async function stopProcess(process_: SwarmProcess, graceMs = 5_000): Promise<number | null> {
  const { child } = process_;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await process_.exited;
  clearTimeout(timer);
  return code;
}

/** SIGKILL, and wait until the process is gone. */
export async function killProcess(process_: SwarmProcess): Promise<void> {
  if (process_.child.exitCode !== null || process_.child.signalCode !== null) return;
  process_.child.kill('SIGKILL');
  await process_.exited;
}

export async function sha256File(path: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    return null;
  }
  return hash.digest('hex');
}
