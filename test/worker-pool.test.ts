/** The worker pool behind `experiment --jobs` and `fuzz --jobs` (src/app/worker-pool.ts). */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FUZZ_FAMILIES } from '../src/sim/fuzz.ts';

/** Runs the pool driver with `requests`; the workers' pids (from their start lines) and the JSON it printed. */
function drive(requests: number[]): {
  pids: number[];
  result: { answers?: { value: number; pid: number }[]; error?: string; children: number[] };
} {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'test/support/pool-driver.ts', ...requests.map(String)],
    {
      encoding: 'utf8',
    },
  );
  assert.is(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  const pids = lines.filter((line) => line.startsWith('worker ')).map((line) => Number(line.slice(7)));
  const last = lines.filter((line) => line.startsWith('{')).pop() ?? '{}';
  return { pids, result: JSON.parse(last) };
}

test('answers come back in request order, the work shared by both workers', () => {
  const requests = Array.from({ length: 12 }, (_, i) => i);
  const { pids, result } = drive(requests);
  assert.equal(
    result.answers?.map((answer) => answer.value),
    requests.map((n) => 2 * n),
  );
  assert.is(pids.length, 2);
  assert.equal(new Set(result.answers?.map((answer) => answer.pid)), new Set(pids));
  assert.equal(result.children, []);
});

test('a worker that dies fails the run, and no worker is left running', () => {
  // The first worker is sent -1 and dies; the second may be stopped before it has even started.
  const { result } = drive([-1, 1, 2, 3, 4, 5]);
  assert.is(result.answers, undefined);
  assert.match(result.error ?? '', /a worker exited \(code 3\) before its work was done/);
  assert.equal(result.children, []);
});

test('fuzz --jobs runs the scenarios fast-check would: fc.sample gives the inputs fc.check sees', () => {
  for (const [family, arbitrary] of Object.entries(FUZZ_FAMILIES)) {
    const seen: unknown[] = [];
    fc.check(
      fc.property(arbitrary, (input) => {
        seen.push(input);
        return true;
      }),
      { numRuns: 60, seed: 11 },
    );
    assert.equal(fc.sample(arbitrary, { numRuns: 60, seed: 11 }), seen, family);
  }
});

test('fuzz --jobs 2 prints what --jobs 1 prints', () => {
  const run = (jobs: string) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/app/fuzz-command.ts', '--runs', '24', '--seed', '5', '--jobs', jobs],
      {
        encoding: 'utf8',
      },
    );
  const serial = run('1');
  const parallel = run('2');
  assert.is(serial.status, 0, serial.stderr);
  assert.is(parallel.status, 0, parallel.stderr);
  assert.is(serial.stdout, 'fuzz: 24 faults scenarios passed (seed 5)\n');
  assert.is(parallel.stdout, serial.stdout);
});

test.run();
