import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventQueue } from '../src/sim/event-queue.ts';
import {
  BASE_BYTES,
  BYTES_PER_PEER,
  BYTES_PER_PEER_CHUNK,
  estimateMemoryBytes,
  memoryRefusal,
} from '../src/sim/memory-estimate.ts';
import { MAX_PEERS, parseScenario, type Scenario } from '../src/sim/scenario.ts';
import { runScenario, type SimProgress } from '../src/sim/simulator.ts';

function scenarioFile(name: string): Scenario {
  const parsed = parseScenario(JSON.parse(readFileSync(`scenarios/${name}.json`, 'utf8')));
  if (!parsed.ok) throw new Error(`${name}: ${JSON.stringify(parsed.issues)}`);
  return parsed.scenario;
}

test('the memory estimate grows with peers and with peers times chunks', () => {
  const mesh500 = estimateMemoryBytes(scenarioFile('mesh500'));
  const mesh10k = estimateMemoryBytes(scenarioFile('mesh10k'));
  assert.is(mesh500.peers, 500);
  assert.is(mesh500.chunks, 205);
  assert.is(mesh10k.peers, 10_000);
  assert.is(mesh10k.bytes - mesh500.bytes, (10_000 - 500) * (BYTES_PER_PEER + 205 * BYTES_PER_PEER_CHUNK));
  assert.ok(mesh500.bytes > BASE_BYTES);
  // Measured: mesh500 peaks near 556 MB resident.
  assert.ok(mesh500.bytes > 0.5e9 && mesh500.bytes < 0.7e9, `${mesh500.bytes}`);
});

test('a scenario that does not fit the budget is refused with the reason; one that fits is not', () => {
  const mesh10k = scenarioFile('mesh10k');
  const needed = estimateMemoryBytes(mesh10k).bytes;
  assert.is(memoryRefusal(mesh10k, needed), undefined);
  const refusal = memoryRefusal(mesh10k, 4 * 1024 ** 3);
  assert.ok(refusal?.includes('mesh10k would need about'), refusal);
  assert.ok(refusal?.includes('10000 peers, 205 chunks'), refusal);
  assert.ok(refusal?.includes('4.0 GiB of memory is free'), refusal);
});

test('scenarios may have up to MAX_PEERS peers, and no more', () => {
  const base = JSON.parse(readFileSync('scenarios/mesh10k.json', 'utf8'));
  base.peerGroups[0].count = MAX_PEERS;
  assert.ok(MAX_PEERS >= 100_000);
  assert.ok(parseScenario(base).ok);
  base.peerGroups[0].count = MAX_PEERS + 1;
  assert.not.ok(parseScenario(base).ok);
});

test('progress is reported as the run goes and changes nothing in it', () => {
  const scenario = scenarioFile('mesh50');
  const seen: SimProgress[] = [];
  const watched = runScenario(scenario, { onProgress: (progress) => seen.push(progress) });
  const golden = JSON.parse(readFileSync('test/golden/digests.json', 'utf8'));
  assert.is(watched.digest, golden['mesh50.json seed 1']);
  assert.ok(seen.length > 0, 'no progress from a run of mesh50');
  for (const [index, progress] of seen.entries()) {
    assert.is(progress.peers, 50);
    assert.ok(progress.peersComplete <= 50);
    if (index > 0) assert.ok(progress.events > (seen[index - 1] as SimProgress).events);
  }
});

test('the event queue pops by time, ties in the order they were pushed, across growth', () => {
  const queue = new EventQueue<number>();
  const pushed: { timeUs: number; order: number }[] = [];
  let state = 12345;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
  let order = 0;
  const popped: number[] = [];
  // Interleaved pushes and pops, few distinct times (many ties), past the initial capacity.
  for (let round = 0; round < 5000; round++) {
    const timeUs = next() % 50;
    queue.push(timeUs, order);
    pushed.push({ timeUs, order: order++ });
    if (round % 3 === 2) {
      assert.ok(queue.peekTimeUs() !== undefined);
      popped.push(queue.pop() as number);
    }
  }
  while (queue.size > 0) popped.push(queue.pop() as number);
  assert.is(queue.pop(), undefined);
  assert.is(queue.peekTimeUs(), undefined);
  assert.is(popped.length, pushed.length);
  // Replay against a plain sorted list: the same pops in the same order.
  const pending: { timeUs: number; order: number }[] = [];
  const expected: number[] = [];
  for (const [round, item] of pushed.entries()) {
    pending.push(item);
    if (round % 3 === 2) {
      pending.sort((a, b) => a.timeUs - b.timeUs || a.order - b.order);
      expected.push((pending.shift() as { order: number }).order);
    }
  }
  pending.sort((a, b) => a.timeUs - b.timeUs || a.order - b.order);
  for (const item of pending) expected.push(item.order);
  assert.equal(popped, expected);
});

test.run();
