/**
 * A smoke run of the benchmark harness: tiny sizes, one run of every stage (codec, verify, the
 * simulator, memory, link and swarm over real processes on loopback). Checks that every key of
 * `npm run bench -- --json` comes out as a finite number; it times nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatResults, QUICK, REQUIRED_KEYS, runBenchmarks } from '../bench/harness.ts';
import { setProgress } from '../bench/lib.ts';

test('the quick benchmark run gives every key as a finite number', async () => {
  const progress: string[] = [];
  setProgress((message) => progress.push(message));
  let results: Record<string, number>;
  try {
    results = await runBenchmarks(QUICK);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nprogress:\n${progress.join('\n')}`);
  }
  for (const key of REQUIRED_KEYS) {
    assert.type(results[key], 'number', `${key} is missing`);
    assert.ok(Number.isFinite(results[key]), `${key} is ${results[key]}`);
  }
  for (const [key, value] of Object.entries(results)) {
    assert.ok(Number.isFinite(value), `${key} is ${value}`);
  }
  assert.ok((results.memoryPeakRss100MiB as number) > 1024 * 1024, 'a peak RSS is in bytes');
  const table = formatResults(results, QUICK);
  assert.ok(table.includes('chunk deliveries/s'), 'the sim stage reports chunk deliveries per second');
  for (const stage of ['cli', 'codec', 'verify', 'link', 'swarm', 'sim', 'memory']) {
    assert.ok(table.includes(`\n${stage} `), `the table has a ${stage} row`);
  }
});

test.run();
