import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACTIVITY_KINDS, describeActivity } from '../src/engine/activity.ts';
import { parseScenarioText, type Scenario } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/simulator.ts';

function load(path: string): Scenario {
  const result = parseScenarioText(readFileSync(path, 'utf8'));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.scenario;
}

const ring6 = load('scenarios/ring6.json');

function requestOrder(lines: string[]): string[] {
  return lines
    .filter((line) => line.includes('requested chunk'))
    .map((line) => line.replace(/^\s*\S+\s+/, ''));
}

test('ring6: every peer finishes with the owner file, and all six activity kinds appear', () => {
  const lines: string[] = [];
  const result = runScenario(ring6, { onLine: (line) => lines.push(line) });
  assert.is(result.failure, undefined);
  assert.is(result.peers.length, 5);
  for (const peer of result.peers) {
    assert.ok(peer.complete, `${peer.id} incomplete`);
    assert.is(peer.fileSha256, result.fileSha256);
    assert.ok(
      peer.chunksFromOwner > 0 && peer.chunksFromPeers > 0,
      `${peer.id} did not both take a share and trade`,
    );
    assert.is(peer.bytesDown, ring6.file.sizeBytes);
  }
  for (const kind of ACTIVITY_KINDS) {
    assert.ok((result.activityCounts[kind] ?? 0) > 0, `no ${kind}`);
  }
  assert.ok(result.simulatedMs >= result.lowerBoundMs, 'faster than the lower bound is impossible');
  assert.is(result.lowerBoundMs, Math.ceil((ring6.file.sizeBytes / 2_000_000) * 1000));
});

test('determinism: the same seed gives the same trace; another seed a different one, same file', () => {
  const linesA: string[] = [];
  const linesB: string[] = [];
  const linesC: string[] = [];
  const a = runScenario(ring6, { onLine: (line) => linesA.push(line) });
  const b = runScenario(ring6, { onLine: (line) => linesB.push(line) });
  const c = runScenario(ring6, { seed: 2, onLine: (line) => linesC.push(line) });
  assert.is(a.digest, b.digest);
  assert.equal(linesA, linesB);
  assert.is.not(a.digest, c.digest);
  assert.not.equal(requestOrder(linesA), requestOrder(linesC));
  assert.is(a.fileSha256, c.fileSha256);
  assert.ok(c.peers.every((peer) => peer.fileSha256 === a.fileSha256));
});

test('a mesh with overlapped trading and rarest-first completes', () => {
  const scenario = load('scenarios/ring6.json');
  const mesh: Scenario = {
    ...scenario,
    topology: { kind: 'mesh', degree: 2 },
    policies: { ...scenario.policies, picker: 'rarest-first', phases: 'overlapped' },
    peers: scenario.peers.map(({ downloadFrom: _ignored, ...peer }) => peer),
  };
  const result = runScenario(mesh);
  assert.is(result.failure, undefined);
  assert.ok(result.peers.every((peer) => peer.complete && peer.fileSha256 === result.fileSha256));
});

test('a run that cannot finish reports it instead of hanging', () => {
  const result = runScenario({ ...ring6, maxSimulatedMs: 100 });
  assert.ok(result.failure !== undefined);
  assert.is(result.failure?.kind, 'time-limit');
});

test('every chunk sent gets its line, also the parts of chunks others finished (ring6-overlap)', () => {
  const scenario = load('scenarios/ring6-overlap.json');
  const received: string[] = [];
  const sent = new Set<string>();
  let parts = 0;
  runScenario(scenario, {
    onActivity: (_atMs, node, event) => {
      if (event.kind === 'chunk-received') received.push(`${event.from}>${node}:${event.chunk}`);
      if (event.kind !== 'chunk-sent') return;
      sent.add(`${node}>${event.to}:${event.chunk}`);
      if (event.bytes < event.chunkBytes) parts++;
    },
  });
  assert.ok(parts > 0, 'some chunks came from two senders');
  assert.equal(
    received.filter((receipt) => !sent.has(receipt)),
    [],
    'a receipt without a send line',
  );
});

test('a receipt from the owner says "owner" once; from a foreign seeder, it is marked', () => {
  const line = (from: string) =>
    describeActivity({ kind: 'chunk-received', chunk: 3, from, bytes: 102400, fromOwner: true });
  assert.is(line('owner'), 'received chunk 3 from owner (102400 bytes)');
  assert.is(line('lt@127.0.0.1:6881'), 'received chunk 3 from lt@127.0.0.1:6881 (owner) (102400 bytes)');
  const part = describeActivity({ kind: 'chunk-sent', chunk: 3, to: 'p2', bytes: 16384, chunkBytes: 102400 });
  assert.is(part, 'sent chunk 3 to p2 (16384 of its 102400 bytes; others sent the rest)');
});

test.run();
