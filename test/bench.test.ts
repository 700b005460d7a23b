/**
 * A smoke run of the benchmark harness: tiny sizes, one run of every stage (codec, verify, the
 * simulator, memory, link, swarm and the libtorrent anchor over real processes on loopback). Checks
 * that every key of `npm run bench -- --json` comes out as a finite number; it times nothing. The
 * anchor's keys are required whenever /usr/bin/python3 can import libtorrent (here and in CI).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ANCHOR_KEYS, formatResults, QUICK, REQUIRED_KEYS, runBenchmarks } from '../bench/harness.ts';
import { setProgress } from '../bench/lib.ts';
import { probeLibtorrent } from '../bench/libtorrent-driver.ts';

test('the quick benchmark run gives every key as a finite number', async () => {
  const progress: string[] = [];
  setProgress((message) => progress.push(message));
  let results: Record<string, number>;
  try {
    results = await runBenchmarks(QUICK);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nprogress:\n${progress.join('\n')}`);
  }
  const withLibtorrent = probeLibtorrent().ok;
  for (const key of [...REQUIRED_KEYS, ...(withLibtorrent ? ANCHOR_KEYS : [])]) {
    assert.type(results[key], 'number', `${key} is missing`);
    assert.ok(Number.isFinite(results[key]), `${key} is ${results[key]}`);
  }
  for (const [key, value] of Object.entries(results)) {
    assert.ok(Number.isFinite(value), `${key} is ${value}`);
  }
  assert.ok((results.memoryPeakRss100MiB as number) > 1024 * 1024, 'a peak RSS is in bytes');
  const table = formatResults(results, QUICK);
  assert.ok(table.includes('chunk deliveries/s'), 'the sim stage reports chunk deliveries per second');
  for (const key of withLibtorrent ? [] : ANCHOR_KEYS)
    assert.is(results[key], undefined, `${key} without libtorrent`);
  for (const stage of [
    'cli',
    'codec',
    'verify',
    'link',
    'swarm',
    'sim',
    'memory',
    ...(withLibtorrent ? ['anchor'] : []),
  ]) {
    assert.ok(table.includes(`\n${stage} `), `the table has a ${stage} row`);
  }
});

test.run();
