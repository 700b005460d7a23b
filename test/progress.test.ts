/**
 * Progress on a terminal (#18): rates over a window, an ETA, and one status line per process that
 * updates in place, checked in a pseudo-terminal (util-linux `script`). Off a terminal, every
 * activity line is printed instead (the one-clock test in failure-paths.test.ts reads them).
 */
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatEta, formatPeerStatus, RateMeter } from '../src/app/progress.ts';
import { inWorkspace, torrentPeer } from './support/processes.ts';

/** Runs `node --import tsx <args>` with a pseudo-terminal as its stdout; returns what it drew. */
function inTerminal(args: readonly string[], timeoutMs = 120_000): { status: number | null; screen: string } {
  const command = [process.execPath, '--import', 'tsx', ...args].map(
    (arg) => `'${arg.replace(/'/g, "'\\''")}'`,
  );
  const run = spawnSync('script', ['-q', '-e', '-c', command.join(' '), '/dev/null'], {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, TERM: 'xterm' },
  });
  return { status: run.status, screen: run.stdout };
}

test('a rate is the bytes of the last few seconds; the ETA follows from it', () => {
  const meter = new RateMeter();
  for (let ms = 0; ms <= 2000; ms += 100) meter.add(100_000, ms);
  const rate = meter.bytesPerSecond(2000);
  assert.ok(rate > 900_000 && rate < 1_100_000, `about 1 MB/s, got ${rate}`);
  assert.is(meter.bytesPerSecond(10_000), 0, 'nothing moved for longer than the window');
  assert.is(formatEta(5_000_000, 1_000_000), '5 s');
  assert.is(formatEta(300_000_000, 1_000_000), '5 min 00 s');
  assert.is(formatEta(1, 0), '--');
  assert.is(formatEta(0, 0), 'done');
  const line = formatPeerStatus({
    node: 'peer1',
    held: 10,
    total: 20,
    downBytesPerSecond: 2_500_000,
    upBytesPerSecond: 1_000,
    bytesLeft: 1_024_000,
    peers: 3,
  });
  assert.is(line, 'peer1    [##########..........] 10/20 chunks  ↓ 2.5 MB/s  ↑ 1 kB/s  ETA 1 s  3 peers');
});

test('swarm peer on a terminal: one line redrawn in place with chunks, rates, ETA and peers', () =>
  inWorkspace(async (space) => {
    const file = space.file('data.bin', 3_000_000);
    await space.owner(file);
    const { status, screen } = inTerminal([
      'src/app/cli.ts',
      ...torrentPeer(file, space.path('P'), '--exit-when-done'),
    ]);
    assert.is(status, 0, screen);
    const redraws = screen
      .split('\r')
      .filter((part) => / \d+\/30 chunks {2}↓ .+ {2}↑ .+ {2}ETA .+ {2}\d+ peers?/.test(part));
    assert.ok(redraws.length >= 2, `the line is redrawn: ${JSON.stringify(screen.slice(0, 800))}`);
    assert.match(screen, /30\/30 chunks .*ETA done/);
    assert.not.match(screen, /received chunk \d+ from/, 'no activity lines on a terminal');
  }));

test('npm start on a terminal: a line per process, the owner too, and a swarm total', () =>
  inWorkspace(async (space) => {
    const { status, screen } = inTerminal([
      'src/app/demo.ts',
      '--dir',
      space.path('demo'),
      '--peers',
      '2',
      '--size-mib',
      '2',
    ]);
    assert.is(status, 0, screen);
    assert.match(screen, /owner {4}sent [\d.]+ [kM]?B \([\d.]+ copies\) {2}↑ .+ {2}to \d+ peers?/);
    assert.match(screen, /Peer1 {4}\[#+\] 21\/21 chunks {2}↓ /);
    assert.match(screen, /Peer2 {4}\[/);
    assert.match(screen, /swarm {4}42\/42 chunks held {2}↓ .+ in all {2}ETA done/);
    assert.ok(screen.includes('\u001b[4A'), 'the four lines are redrawn in place');
  }));

test.run();
