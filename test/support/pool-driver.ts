/**
 * Runs test/support/pool-worker.ts through the worker pool with the requests given as arguments, in
 * two workers, and prints the answers (or the error) as JSON, with the pids of any worker processes
 * still there once the pool is done (read from /proc). Used by test/worker-pool.test.ts; inert when
 * loaded as a module (the test runner loads every file under test/).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInWorkers } from '../../src/app/worker-pool.ts';

/**
 * This process's children running pool-worker.ts: every /proc/<pid>/stat whose parent field is our
 * pid, with the worker on its command line (not, say, the esbuild service tsx may have started).
 */
function workersLeft(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces) start with state, then the parent pid.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('pool-worker')) found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

async function main(): Promise<void> {
  const requests = process.argv.slice(2).map(Number);
  const worker = fileURLToPath(new URL('./pool-worker.ts', import.meta.url));
  let outcome: { answers?: unknown; error?: string };
  try {
    outcome = { answers: await runInWorkers<number, { value: number; pid: number }>(worker, requests, 2) };
  } catch (error) {
    outcome = { error: (error as Error).message };
  }
  process.stdout.write(`${JSON.stringify({ ...outcome, children: workersLeft() })}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) void main();
