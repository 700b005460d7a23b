/**
 * The failure paths of `npm start`, `swarm`, `npm run sim`, `experiment` and `fuzz`, as a user meets
 * them: exit code, the one line printed, and what is on disk afterwards. Nothing of the user's is
 * deleted, nothing half-made stays, every wait is said and (with --exit-when-done) bounded, and no
 * path prints a stack trace.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256File } from '../src/app/processes.ts';
import { inWorkspace, orphanedTorrent, torrentPeer } from './support/processes.ts';

const TSX = ['--import', 'tsx'];
const SCRIPTS = {
  swarm: 'src/app/cli.ts',
  demo: 'src/app/demo.ts',
  sim: 'src/app/sim-command.ts',
  experiment: 'src/app/experiment-command.ts',
  fuzz: 'src/app/fuzz-command.ts',
} as const;
type Command = keyof typeof SCRIPTS;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: Command, args: readonly string[], timeoutMs = 60_000): Run {
  const result = spawnSync(process.execPath, [...TSX, SCRIPTS[command], ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const STACK = /\n\s+at /;

function assertCleanExit(result: Run, code: number, message: RegExp, what: string): void {
  assert.is(result.status, code, `${what}: exit ${result.status}, stderr: ${result.stderr}`);
  assert.match(result.stderr, message, what);
  assert.not.match(result.stderr, STACK, `${what}: a stack trace`);
  assert.not.match(result.stderr, /internal error/, `${what}: an internal error`);
}

/** A port nobody listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = await listening();
  const port = portOf(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listening(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** A child's output as it comes, and its end. */
function watch(child: ChildProcess): { out: string[]; err: string[]; exited: Promise<number | null> } {
  const out: string[] = [];
  const err: string[] = [];
  child.stdout?.on('data', (bytes: Buffer) => out.push(bytes.toString()));
  child.stderr?.on('data', (bytes: Buffer) => err.push(bytes.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { out, err, exited };
}

test('1. npm start never deletes what it did not make: the user file and folder survive', () =>
  inWorkspace(async (space) => {
    const dir = space.path('data');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'mine\n');
    const file = space.file('data/myfile.bin', 700_000);
    const before = await sha256File(file);
    for (const round of [1, 2]) {
      const result = spawnSync(
        'npm',
        ['start', '-s', '--', '--dir', dir, '--file', file, '--peers', '2', '--json'],
        {
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      assert.is(result.status, 0, `round ${round}: ${result.stderr}`);
      // Acceptance 3: exactly one JSON object on stdout.
      const summary = JSON.parse(result.stdout) as { ok: boolean; peers: { readyToDoneMs: number }[] };
      assert.ok(summary.ok);
      assert.ok(summary.peers.every((peer) => peer.readyToDoneMs >= 0));
      assert.is(readFileSync(join(dir, 'keep.txt'), 'utf8'), 'mine\n', `round ${round}: keep.txt`);
      assert.is(await sha256File(file), before, `round ${round}: the user's --file`);
    }
    // Something of the user's where the demo wants to work: refused, untouched.
    mkdirSync(join(dir, 'Peer3Dir'));
    writeFileSync(join(dir, 'Peer3Dir', 'notes.txt'), 'also mine\n');
    const refused = run('demo', ['--dir', dir, '--file', file, '--peers', '3', '--quiet']);
    assertCleanExit(refused, 2, /Peer3Dir exists and was not made by the demo/, 'foreign Peer3Dir');
    assert.is(readFileSync(join(dir, 'Peer3Dir', 'notes.txt'), 'utf8'), 'also mine\n');
    assert.ok(existsSync(join(dir, 'Peer1Dir')), 'a refused run removes nothing');
    // A --file inside what the demo replaces is refused too.
    const inside = space.file('data/Peer1Dir/inside.bin', 700_000);
    const guarded = run('demo', ['--dir', dir, '--file', inside, '--peers', '2', '--quiet']);
    assertCleanExit(guarded, 2, /inside .*Peer1Dir, which the demo replaces/, '--file inside Peer1Dir');
    assert.ok(existsSync(inside));
  }));

test('2a, 2b. --torrent alone against a live owner finishes; a folder that holds the file exits at once', () =>
  inWorkspace(async (space) => {
    const file = space.file('data.bin', 700_000);
    const { process: owner } = await space.owner(file);
    // Acceptance 2: the owner's .torrent alone is enough (its tracker names the owner itself).
    const first = space.spawn([
      'peer',
      '--torrent',
      `${file}.torrent`,
      '--dir',
      space.path('Peer1Dir'),
      '--exit-when-done',
    ]);
    assert.is(await first.exited, 0, first.stderr.join('\n'));
    assert.is(await sha256File(space.path('Peer1Dir', 'data.bin')), await sha256File(file));
    owner.child.kill('SIGKILL');
    await owner.exited;
    // The owner (its tracker too) is gone: all the peer needs is on disk.
    const again = run('swarm', torrentPeer(file, space.path('Peer1Dir'), '--exit-when-done'), 20_000);
    assert.is(again.status, 0, again.stderr);
    assert.match(again.stdout, /7\/7 chunks verified/);
    assert.match(again.stdout, /complete, verified/);
  }));

test('2c, 2e. owner killed mid-transfer and an unreachable --download-from: said at once, then bounded', () =>
  inWorkspace(async (space) => {
    const file = space.file('big.bin', 8 * 1024 * 1024);
    const { process: owner, port } = await space.owner(file);
    const nobody = await closedPort();
    const peer = space.peer(port, '1', [
      '--exit-when-done',
      '--give-up-after',
      '3',
      '--download-from',
      `127.0.0.1:${nobody}`,
    ]);
    await peer.waitFor((line) => line.event === 'activity' && line.kind === 'chunk-received');
    owner.child.kill('SIGKILL');
    assert.is(await peer.exited, 1);
    const notices = peer.lines.filter((line) => line.event === 'notice').map((line) => String(line.message));
    assert.ok(
      notices.some((text) => text.includes(`cannot reach download neighbour 127.0.0.1:${nobody}`)),
      notices.join('\n'),
    );
    assert.ok(
      notices.some((text) => text.includes(`cannot reach the owner 127.0.0.1:${port}`)),
      notices.join('\n'),
    );
    assert.match(peer.stderr.join('\n'), /gave up: \d+\/82 chunks, none new for 3 s/);
  }));

test('2d. a dead tracker in a .torrent: said, then --exit-when-done gives up with exit 1', () =>
  inWorkspace(async (space) => {
    const file = await orphanedTorrent(space);
    const result = run(
      'swarm',
      torrentPeer(file, space.path('P'), '--exit-when-done', '--give-up-after', '2'),
    );
    assertCleanExit(
      result,
      1,
      /gave up: 0\/7 chunks, none new for 2 s, 0 peers connected, tracker failing/,
      'dead tracker',
    );
    assert.match(result.stdout, /tracker http:\/\/127\.0\.0\.1:\d+\/announce failed/);
  }));

test('2f. an unreachable owner at start: every retry is said when it happens', async () => {
  const port = await closedPort();
  const result = run('swarm', [
    'peer',
    '--owner',
    `127.0.0.1:${port}`,
    '--retries',
    '1',
    '--dir',
    '/nonexistent/never-made',
  ]);
  assertCleanExit(result, 1, /unreachable after 2 attempts/, 'unreachable owner');
  assert.match(result.stdout, /not reachable \(.*\); attempt 2 of 2 in 0\.25 s, giving up in about 0\.3 s/);
  assert.not.ok(existsSync('/nonexistent/never-made'));
});

test('3a. a closed stdout (| head) ends swarm peer and npm run sim quietly', () =>
  inWorkspace(async (space) => {
    const file = await orphanedTorrent(space);
    const cases: [Command, string[]][] = [
      ['swarm', torrentPeer(file, space.path('P'), '--json')],
      ['sim', ['scenarios/ring6.json']],
    ];
    for (const [command, args] of cases) {
      const child = spawn(process.execPath, [...TSX, SCRIPTS[command], ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const seen = watch(child);
      await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
      child.stdout?.destroy();
      const code = await seen.exited;
      assert.is(code, command === 'sim' ? 0 : 1, `${command}: ${seen.err.join('')}`);
      assert.not.match(seen.err.join(''), STACK, `${command}: a stack trace`);
      assert.not.match(seen.err.join(''), /EPIPE/, `${command}: EPIPE shown`);
    }
  }));

test('3b, 3c, 3f. unwritable --torrent, --dir that is a file, a port in use: exit 2, nothing left behind', () =>
  inWorkspace(async (space) => {
    const busy = await listening();
    try {
      const file = space.file('data.bin', 700_000);
      const aFile = space.file('afile', 10);
      const noSuchFolder = space.path('no', 'such', 'x.torrent');
      const torrent = run('swarm', ['owner', '--file', file, '--port', '0', '--torrent', noSuchFolder]);
      assertCleanExit(torrent, 2, /cannot write --torrent .*x\.torrent: ENOENT/, 'unwritable torrent');
      assert.not.ok(existsSync(`${file}.chunks`), 'no chunk folder left behind');
      const ownerDir = run('swarm', ['owner', '--file', file, '--port', '0', '--dir', aFile]);
      assertCleanExit(ownerDir, 2, /--dir .*afile is a file, not a folder/, 'owner --dir is a file');
      const underFile = run('swarm', ['owner', '--file', file, '--port', '0', '--dir', `${aFile}/chunks`]);
      assertCleanExit(underFile, 2, /cannot (use|create) --dir .*afile\/chunks/, '--dir that cannot be made');
      const inUse = run('swarm', ['owner', '--file', file, '--port', String(portOf(busy))]);
      assertCleanExit(inUse, 2, /already in use/, 'owner port in use');
      assert.not.ok(existsSync(`${file}.chunks`), 'owner: no chunk folder left behind');
      await space.owner(file);
      const peerDir = run('swarm', torrentPeer(file, aFile));
      assertCleanExit(peerDir, 2, /--dir .*afile is a file, not a folder/, 'peer --dir is a file');
      const peerInUse = run('swarm', torrentPeer(file, space.path('P9'), '--port', String(portOf(busy))));
      assertCleanExit(peerInUse, 2, /already in use/, 'peer port in use');
      assert.not.ok(existsSync(space.path('P9')), 'peer: no folder left behind');
    } finally {
      busy.close();
    }
  }));

test('3d, 3e, 4. user errors of every command: one line, exit 2, never a stack trace', () =>
  inWorkspace(async (space) => {
    const tiny = space.file('tiny.bin', 3);
    const cases: [Command, string[], RegExp][] = [
      [
        'demo',
        ['--file', space.path('missing.bin'), '--dir', space.path('d1')],
        /cannot read --file .*ENOENT/,
      ],
      ['demo', ['--file', space.dir, '--dir', space.path('d2')], /is not a regular file/],
      ['demo', ['--file', tiny, '--dir', space.path('d3')], /at least 5 bytes/],
      ['demo', ['--peers', 'many'], /--peers: "many" is not a whole number/],
      [
        'experiment',
        ['scenarios/ring6.json', '--vary', 'degree=abc'],
        /--vary: degree=abc: \$\.topology\.degree/,
      ],
      ['experiment', ['scenarios/ring6.json', '--vary', 'color=red'], /unknown field "color"/],
      [
        'experiment',
        [space.path('missing.json'), '--vary', 'degree=3'],
        /cannot read .*missing\.json: ENOENT/,
      ],
      ['fuzz', ['--seed', '-3'], /Option '--seed' argument is ambiguous/],
      ['fuzz', ['--seed=-3'], /--seed: "-3" is not a whole number/],
      ['fuzz', ['--runs', '0'], /--runs: "0" is not a whole number from 1/],
      ['sim', [space.path('missing.json')], /cannot read .*missing\.json: ENOENT/],
      ['sim', ['scenarios/ring6.json', '--seed', 'x'], /--seed must be a non-negative integer/],
      ['swarm', ['peer', '--owner', '127.0.0.1:1', '--give-up-after', '0'], /--give-up-after: "0"/],
    ];
    for (const [command, args, message] of cases) {
      const result = run(command, args);
      assertCleanExit(result, 2, message, `${command} ${args.join(' ')}`);
      assert.is(result.stderr.trim().split('\n')[0]?.startsWith(`${command}: `), true, result.stderr);
    }
    for (const dir of ['d1', 'd2', 'd3']) assert.not.ok(existsSync(space.path(dir)), `demo made ${dir}`);
  }));

test('4. npm start prints every process on one clock: both ends of a connection say the same time', () =>
  inWorkspace(async (space) => {
    const result = run('demo', ['--dir', space.path('demo'), '--peers', '2', '--size-mib', '1'], 120_000);
    assert.is(result.status, 0, result.stderr);
    // The dialler's "outbound" line and the listener's "inbound" line of one connection.
    const outbound = new Map<string, number>();
    const inbound = new Map<string, number>();
    for (const match of result.stdout.matchAll(
      /^\s*(\d+)\.(\d{3})s (\S+)\s+connected to (\S+) \((in|out)bound\)/gm,
    )) {
      const [, seconds, millis, node, peer, direction] = match;
      const ms = Number(seconds) * 1000 + Number(millis);
      const [map, key] = direction === 'out' ? [outbound, `${node}>${peer}`] : [inbound, `${peer}>${node}`];
      if (!map.has(key)) map.set(key, ms);
    }
    for (const [key, ms] of outbound) {
      const other = inbound.get(key);
      if (other !== undefined) assert.ok(Math.abs(other - ms) < 150, `${key}: ${ms} ms against ${other} ms`);
    }
    const at = new Map(
      [...outbound].filter(([key]) => inbound.has(key)).map(([key]) => [key.split('>').sort().join('~'), 0]),
    );
    assert.ok(at.has('owner~peer1') && at.has('owner~peer2'), result.stdout.slice(0, 2000));
    // Off a terminal, every activity line the mission asks for (#18: "still prints all six kinds").
    for (const text of [
      / received chunk \d+ from /,
      / sent chunk \d+ to /,
      / received chunk ID list from /,
      / sent chunk ID list to /,
      / requested chunk \d+ from /,
      / received request for chunk \d+ from /,
    ]) {
      assert.match(result.stdout, text);
    }
  }));

test('4. a peer says what it does on Ctrl-C', () =>
  inWorkspace(async (space) => {
    const file = await orphanedTorrent(space);
    const child = spawn(process.execPath, [...TSX, SCRIPTS.swarm, ...torrentPeer(file, space.path('P'))], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const seen = watch(child);
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (seen.out.join('').includes('listening on')) resolve();
        else child.stdout?.once('data', check);
      };
      check();
    });
    child.kill('SIGINT');
    await seen.exited;
    assert.match(seen.out.join(''), /SIGINT, stopping with 0\/7 chunks in /);
  }));

test.run();
