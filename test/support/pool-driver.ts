/**
 * Runs test/support/pool-worker.ts through the worker pool with the requests given as arguments, in
 * two workers, and prints the answers (or the error) as JSON, with the pids of any child processes
 * still there once the pool is done (read from /proc). Used by test/worker-pool.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInWorkers } from '../../src/app/worker-pool.ts';

const requests = process.argv.slice(2).map(Number);
const worker = fileURLToPath(new URL('./pool-worker.ts', import.meta.url));
/** This process's children: every /proc/<pid>/stat whose parent field is our pid. */
function children(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces) start with state, then the parent pid.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === process.pid) found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

let outcome: { answers?: unknown; error?: string };
try {
  outcome = { answers: await runInWorkers<number, { value: number; pid: number }>(worker, requests, 2) };
} catch (error) {
  outcome = { error: (error as Error).message };
}
process.stdout.write(`${JSON.stringify({ ...outcome, children: children() })}\n`);
