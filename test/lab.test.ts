/**
 * The lab on real namespaces (root only; CI runs as root): a short scenario with a move runs to
 * verified copies and leaves no namespace, link or state file behind; SIGTERM mid-run tears down;
 * a scenario the lab cannot run is refused with one line and exit 2, and makes nothing. Without
 * root, the lab says why and exits 2.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runIdOf } from '../src/app/lab-run.ts';
import { STATE_DIR } from '../src/app/lab-state.ts';

const LAB = ['--import', 'tsx', 'src/app/lab-command.ts'];
const MOVE3 = 'test/fixtures/lab-move3.json';
const PARTITION3 = 'test/fixtures/lab-partition3.json';
const IS_ROOT = process.getuid?.() === 0;

/** Namespaces and links whose names begin with the run's id, as `ip` lists them. */
function leftBehind(pid: number): string[] {
  const id = runIdOf(pid);
  const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  const named = (text: string, pattern: RegExp): string[] =>
    text.split('\n').flatMap((line) => pattern.exec(line)?.[1] ?? []);
  return [
    ...named(namespaces, new RegExp(`^(${id}-\\S+)`)),
    ...named(links, new RegExp(`^\\d+:\\s+(${id}(?:br|h\\d+))[:@]`)),
  ];
}

function lab(args: readonly string[]) {
  return spawnSync(process.execPath, [...LAB, ...args], { encoding: 'utf8', timeout: 60_000 });
}

function oneLine(stderr: string): void {
  assert.not.match(stderr, /\n\s+at /, 'no stack trace');
  assert.ok(stderr.trim().split('\n').length <= 2, `one line (and a hint): ${stderr}`);
}

test('a scenario the lab cannot honour is refused by name, exit 2, nothing made', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-lab-test-'));
  try {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'latency',
        { owner: { uploadBytesPerSecond: 1e6, downloadBytesPerSecond: 1e6, latencyMs: 20 } },
        /\$\.owner\.latencyMs/,
      ],
      ['corrupt', { faults: [{ kind: 'corrupt', atMs: 0, node: 'p1' }] }, /\$\.faults\[0\]\.kind.*corrupt/],
      ['network', { network: { mergePercent: 0 } }, /\$\.network: the lab cannot honour it/],
      [
        'too many',
        {
          peerGroups: [{ count: 5000, uploadBytesPerSecond: 1e6, downloadBytesPerSecond: 1e6, latencyMs: 0 }],
        },
        /nodes, but this machine runs at most/,
      ],
    ];
    const base = {
      seed: 1,
      file: { sizeBytes: 1_000_000 },
      topology: { kind: 'mesh', degree: 2 },
      owner: { uploadBytesPerSecond: 1e6, downloadBytesPerSecond: 1e6, latencyMs: 0 },
      peerGroups: [{ count: 2, uploadBytesPerSecond: 1e6, downloadBytesPerSecond: 1e6, latencyMs: 0 }],
    };
    for (const [name, change, message] of cases) {
      const path = join(dir, `${name.replace(' ', '-')}.json`);
      writeFileSync(path, JSON.stringify({ ...base, ...change }));
      const result = lab([path, '--json']);
      assert.is(result.status, 2, `${name}: ${result.stderr}`);
      assert.match(result.stderr, message, name);
      assert.is(result.stdout, '', name);
      oneLine(result.stderr);
      assert.equal(leftBehind(result.pid as number), [], name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without root the lab says why, exits 2 and makes nothing', () => {
  const setpriv = spawnSync('setpriv', ['--version']);
  if (!IS_ROOT || setpriv.status !== 0) return;
  const result = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...LAB, MOVE3],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.is(result.status, 2, result.stderr);
  assert.match(result.stderr, /^lab: the lab needs root to make network namespaces/);
  oneLine(result.stderr);
  assert.equal(leftBehind(result.pid as number), []);
});

test('a peer moves: every copy verified, its two addresses, the new one announced, nothing left', () => {
  const result = lab([MOVE3, '--json']);
  if (!IS_ROOT) {
    assert.is(result.status, 2);
    assert.match(result.stderr, /needs root/);
    return;
  }
  assert.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as {
    realMs: number;
    simMs: number;
    ratio: number;
    fileSha256: string;
    peers: {
      id: string;
      complete: boolean;
      fileSha256: string;
      addresses: string[];
      announcedAddresses: string[];
    }[];
  };
  assert.ok(report.realMs > 0 && report.simMs > 0 && report.ratio > 0);
  assert.is(report.peers.length, 3);
  for (const peer of report.peers) {
    assert.ok(peer.complete, peer.id);
    assert.is(peer.fileSha256, report.fileSha256, peer.id);
    for (const address of peer.addresses) assert.match(address, /^198\.1[89]\./);
  }
  const moved = report.peers.find((peer) => peer.id === 'p2');
  assert.is(moved?.addresses.length, 2);
  assert.ok(moved?.announcedAddresses.includes(moved.addresses[1] as string), 'told the tracker');
  assert.equal(leftBehind(result.pid as number), []);
  assert.not.ok(existsSync(join(STATE_DIR, `${runIdOf(result.pid as number)}.json`)), 'state file removed');
});

test('a partition and a crash on real hosts: the cut-off peer finishes after the heal, the crashed one restarts', () => {
  const result = lab([PARTITION3, '--json']);
  if (!IS_ROOT) {
    assert.is(result.status, 2);
    return;
  }
  assert.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as {
    fileSha256: string;
    peers: { id: string; complete: boolean; fileSha256: string; completedAtMs: number; restarts: number }[];
  };
  for (const peer of report.peers) {
    assert.ok(peer.complete, peer.id);
    assert.is(peer.fileSha256, report.fileSha256, peer.id);
  }
  const byId = new Map(report.peers.map((peer) => [peer.id, peer]));
  // p3's links are down from 200 ms to 3000 ms: 1.5 MiB at 2 MB/s cannot all arrive before that
  // (without the partition it is done in about 1.2 s, on a loaded machine).
  assert.ok((byId.get('p3')?.completedAtMs ?? 0) >= 3000, `p3 done at ${byId.get('p3')?.completedAtMs} ms`);
  assert.is(byId.get('p1')?.restarts, 1, 'p1 was killed and started again');
  assert.equal(leftBehind(result.pid as number), []);
});

test('SIGTERM mid-run: the lab tears everything down and says so in one line', async () => {
  if (!IS_ROOT) return;
  const child = spawn(process.execPath, [...LAB, MOVE3], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pid = child.pid as number;
  // Poll (with a deadline) until the run's namespaces exist, then interrupt it.
  const deadline = Date.now() + 30_000;
  while (leftBehind(pid).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(leftBehind(pid).length >= 4, 'the run made its namespaces');
  child.kill('SIGTERM');
  const code = await exited;
  assert.is(code, 1, stderr);
  assert.match(stderr, /interrupted \(SIGTERM\); everything torn down/);
  assert.not.match(stderr, /\n\s+at /);
  assert.equal(leftBehind(pid), []);
});

test.run();
