import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sweep, withField } from '../src/sim/experiment.ts';
import { parseScenario, planPeers } from '../src/sim/scenario.ts';

const ring6 = JSON.parse(readFileSync('scenarios/ring6.json', 'utf8'));

function issuesOf(value: unknown): string[] {
  const result = parseScenario(value);
  assert.not.ok(result.ok);
  return result.ok ? [] : result.issues.map((issue) => `${issue.path}: ${issue.message}`);
}

test('every scenario in scenarios/ parses', () => {
  const files = readdirSync('scenarios').filter((name) => name.endsWith('.json'));
  assert.ok(files.length >= 9);
  for (const name of files) {
    const result = parseScenario(JSON.parse(readFileSync(join('scenarios', name), 'utf8')));
    assert.ok(
      result.ok,
      `${name}: ${result.ok ? '' : result.issues.map((issue) => issue.message).join('; ')}`,
    );
  }
});

test('a negative capacity is refused with its JSON path', () => {
  const bad = structuredClone(ring6);
  bad.peers[2].uploadBytesPerSecond = -5;
  assert.ok(issuesOf(bad).some((issue) => issue.startsWith('$.peers[2].uploadBytesPerSecond')));
});

test('a ring neighbour naming no node is refused with its path', () => {
  const bad = structuredClone(ring6);
  bad.peers[1].downloadFrom = 'nobody';
  assert.ok(issuesOf(bad).some((issue) => issue.startsWith('$.peers[1].downloadFrom: names no peer')));
});

test('an unknown topology is refused with its path', () => {
  const bad = structuredClone(ring6);
  bad.topology.kind = 'hypercube';
  assert.ok(issuesOf(bad).some((issue) => issue.startsWith('$.topology.kind')));
});

test('unknown fields and duplicate ids are refused', () => {
  const bad = structuredClone(ring6);
  bad.peers[0].colour = 'red';
  bad.peers[3].id = 'peer1';
  const issues = issuesOf(bad);
  assert.ok(issues.some((issue) => issue.startsWith('$.peers[0]')));
  assert.ok(issues.some((issue) => issue.startsWith('$.peers[3].id: duplicate')));
});

test('discovery fields: one-live-peer needs a mesh or full topology, no tracker needs it everywhere', () => {
  const ring = structuredClone(ring6);
  ring.peers[1].knows = 'one-live-peer';
  assert.ok(
    issuesOf(ring).some((issue) => issue.startsWith('$.peers[1].knows: a peer that knows one live peer')),
  );
  const absent = { ...structuredClone(ring6), topology: { kind: 'full' }, tracker: 'absent' };
  absent.peers[0].knows = 'one-live-peer';
  const issues = issuesOf(absent);
  assert.ok(issues.some((issue) => issue.startsWith('$.peers[1].knows: with no tracker')));
  assert.not.ok(issues.some((issue) => issue.startsWith('$.peers[0].knows')));
  assert.ok(
    issuesOf({ ...structuredClone(ring6), tracker: 'gone' }).some((issue) => issue.startsWith('$.tracker')),
  );
  const pex = structuredClone(ring6);
  pex.policies.peerExchange = 'yes';
  assert.ok(issuesOf(pex).some((issue) => issue.startsWith('$.policies.peerExchange')));
  const group = {
    ...structuredClone(ring6),
    peerGroups: [{ count: 2, uploadBytesPerSecond: 1, downloadBytesPerSecond: 1, knows: 'someone' }],
  };
  assert.ok(issuesOf(group).some((issue) => issue.startsWith('$.peerGroups[0].knows')));
});

test('new behaviour is off unless asked: no peer exchange, a tracker that stays, peers told by it', () => {
  const result = parseScenario(ring6);
  assert.ok(result.ok);
  if (!result.ok) return;
  assert.is(result.scenario.policies.peerExchange, false);
  assert.is(result.scenario.tracker, 'stays');
  assert.ok(planPeers(result.scenario).every((peer) => peer.knows === 'tracker'));
});

test('ring neighbours default to the next peer; groups expand with distinct ids', () => {
  const scenario = parseScenario({
    seed: 1,
    file: { sizeBytes: 600_000 },
    topology: { kind: 'ring' },
    owner: { uploadBytesPerSecond: 1000, downloadBytesPerSecond: 1000 },
    peerGroups: [{ count: 3, uploadBytesPerSecond: 10, downloadBytesPerSecond: 10, joinSpreadMs: 100 }],
  });
  assert.ok(scenario.ok);
  if (!scenario.ok) return;
  const peers = planPeers(scenario.scenario);
  assert.equal(
    peers.map((peer) => [peer.id, peer.downloadFrom, peer.joinAtMs]),
    [
      ['p1', 'p2', 0],
      ['p2', 'p3', 50],
      ['p3', 'p1', 100],
    ],
  );
});

test('the sim command exits 2 with the field path, not a stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-scenario-'));
  try {
    const bad = structuredClone(ring6);
    bad.owner.uploadBytesPerSecond = -1;
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify(bad));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/app/sim-command.ts', path], {
      encoding: 'utf8',
    });
    assert.is(run.status, 2);
    assert.match(run.stderr, '$.owner.uploadBytesPerSecond');
    assert.not.match(run.stderr, /\n\s+at /);
    const missing = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/app/sim-command.ts', join(dir, 'nope.json')],
      {
        encoding: 'utf8',
      },
    );
    assert.is(missing.status, 2);
    assert.match(missing.stderr, 'ENOENT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an experiment sets the field it sweeps, and refuses a bad value with its path', () => {
  const parsed = parseScenario(ring6);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.is(withField(parsed.scenario, 'ownerAdvertising', 'all').policies.ownerAdvertising, 'all');
  assert.is(withField(parsed.scenario, 'picker', 'rarest-first').policies.picker, 'rarest-first');
  assert.is(withField(parsed.scenario, 'degree', '4').topology.degree, 4);
  assert.throws(
    () => withField(parsed.scenario, 'ownerAdvertising', 'everything'),
    /ownerAdvertising=everything: \$\.policies\.ownerAdvertising/,
  );
  const rows = sweep(parsed.scenario, 'ownerAdvertising', ['shares', 'all'], [1]);
  assert.equal(
    rows.map((row) => row.value),
    ['shares', 'all'],
  );
  for (const row of rows) {
    assert.is(row.failures, 0);
    assert.ok(row.medianRatio >= 1 && row.minRatio <= row.medianRatio && row.medianRatio <= row.maxRatio);
  }
  assert.ok(rows[0]?.medianRatio !== rows[1]?.medianRatio, 'the two policies run differently');
});

test('experiment --jobs 2 prints exactly what a serial run prints', () => {
  const args = ['--import', 'tsx', 'src/app/experiment-command.ts', 'scenarios/ring6.json'];
  const sweepArgs = ['--vary', 'picker=random,rarest-first', '--seeds', '3', '--json'];
  const serial = spawnSync(process.execPath, [...args, ...sweepArgs], { encoding: 'utf8' });
  const parallel = spawnSync(process.execPath, [...args, ...sweepArgs, '--jobs', '2'], { encoding: 'utf8' });
  assert.is(serial.status, 0, serial.stderr);
  assert.is(parallel.status, 0, parallel.stderr);
  assert.ok(serial.stdout.includes('"rows"'));
  assert.is(parallel.stdout, serial.stdout);
});

test.run();
