/**
 * The real runtime: owner and peers as processes (or in-process drivers) on 127.0.0.1.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256File, stopProcess } from '../src/app/processes.ts';
import { ACTIVITY_KINDS } from '../src/engine/activity.ts';
import { Engine } from '../src/engine/engine.ts';
import { parseTorrent } from '../src/engine/metainfo.ts';
import { makePeerId } from '../src/engine/peer-id.ts';
import { Random } from '../src/engine/random.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { SocketDriver } from '../src/transport/driver.ts';
import { fetchTorrent } from '../src/transport/tracker-client.ts';
import { countEvents, Workspace } from './support/processes.ts';

const CLI = ['--import', 'tsx', 'src/app/cli.ts'];

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('bad command-line input: one clear line, exit code 2, no stack trace', async () => {
  const space = new Workspace();
  const blocker = createServer();
  try {
    const cases: [string[], RegExp][] = [
      [['owner', '--file', space.path('missing.bin'), '--port', '0'], /cannot read --file .*ENOENT/],
      [['owner', '--file', space.file('tiny.bin', 4), '--port', '0'], /at least 5 bytes/],
      [['peer', '--owner', 'localhost:99999'], /--owner: "localhost:99999" is not HOST:PORT/],
      [['peer', '--owner', 'no-port-here'], /is not HOST:PORT/],
      [['peer', '1', '2'], /positional form/],
      [['fly'], /unknown command "fly"/],
      [['peer', '--owner', '127.0.0.1:1', '--bogus'], /Unknown option '--bogus'/],
    ];
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const busyPort = typeof address === 'object' && address !== null ? address.port : 0;
    cases.push([
      ['owner', '--file', space.file('ok.bin', 600_000), '--port', String(busyPort)],
      /already in use/,
    ]);
    for (const [args, message] of cases) {
      const run = runCli(args);
      assert.is(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.not.match(run.stderr, /\n\s+at /, 'no stack trace');
      assert.ok(run.stderr.trim().split('\n').length <= 2, `one clear line: ${run.stderr}`);
    }
  } finally {
    blocker.close();
    await space.close();
  }
});

test('an unreachable owner is retried with backoff, then reported in one line (exit 1)', async () => {
  const space = new Workspace();
  const probe = createServer();
  try {
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const address = probe.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const peer = space.spawn([
      'peer',
      '--owner',
      `127.0.0.1:${port}`,
      '--retries',
      '2',
      '--dir',
      space.path('P'),
    ]);
    const code = await peer.exited;
    assert.is(code, 1);
    const retries = peer.lines.filter((line) => line.event === 'retry');
    assert.equal(
      retries.map((line) => line.delayMs),
      [250, 500],
      'two retries, backing off',
    );
    assert.match(peer.stderr.join('\n'), /unreachable after 3 attempts/);
    assert.is(peer.stderr.length, 1);
  } finally {
    await space.close();
  }
});

test('owner + 5 peers in a ring: every file byte-identical, every folder complete', async () => {
  const space = new Workspace();
  try {
    const file = space.file('data.bin', 3 * 1024 * 1024);
    const { process: owner, port } = await space.owner(file, ['--peers', '5', '--announce-interval', '1']);
    const peers = ['1', '2', '3', '4', '5'].map((id) => space.peer(port, id));
    const complete = await Promise.all(
      peers.map((peer) => peer.waitFor((line) => line.event === 'complete')),
    );
    const expected = await sha256File(file);
    for (const [index, line] of complete.entries()) {
      const id = String(index + 1);
      assert.is(line.fileSha256, expected);
      assert.is(await sha256File(space.path(`Peer${id}Dir`, 'data.bin')), expected);
      assert.is(Number(line.chunksFromOwner) + Number(line.chunksFromPeers), 31);
      assert.ok(Number(line.chunksFromPeers) > 0, `Peer${id} traded`);
    }
    // Everything the original prints, in one peer's own output.
    for (const kind of ACTIVITY_KINDS) {
      assert.ok(
        peers.some((peer) => countEvents(peer, kind) > 0),
        `some peer reported ${kind}`,
      );
    }
    await Promise.all(peers.map((peer) => stopProcess(peer)));
    await stopProcess(owner);
    const { readdirSync, readFileSync } = await import('node:fs');
    const names = readdirSync(space.path('Peer3Dir'));
    for (let i = 0; i < 31; i++) assert.ok(names.includes(`chunk_${i}`), `chunk_${i} kept`);
    assert.ok(names.includes('summary.txt') && names.includes('data.bin'));
    assert.match(readFileSync(space.path('Peer3Dir', 'summary.txt'), 'utf8'), /held 0-30/);
  } finally {
    await space.close();
  }
});

test('an owner serves 50 peers at once', async () => {
  const space = new Workspace();
  const drivers: SocketDriver[] = [];
  try {
    const file = space.file('fifty.bin', 1024 * 1024, 5);
    const { port } = await space.owner(file, ['--advertise', 'all']);
    const fetched = await fetchTorrent(`127.0.0.1:${port}`);
    assert.ok(fetched.ok);
    if (!fetched.ok) return;
    const parsed = parseTorrent(fetched.bytes, sha1);
    assert.ok(parsed.ok);
    if (!parsed.ok) return;
    const { metainfo } = parsed;
    const finished: Promise<Map<number, Uint8Array>>[] = [];
    for (let i = 0; i < 50; i++) {
      const random = new Random(i + 1);
      const disk = new Map<number, Uint8Array>();
      const engine = new Engine({
        role: 'peer',
        name: `m${i}`,
        peerId: makePeerId(`m${i}`, random),
        infoHash: metainfo.infoHash,
        pieceHashes: metainfo.pieceHashes,
        geometry: metainfo.geometry,
        sha1,
        random,
        topology: 'star',
      });
      finished.push(
        new Promise((resolve) => {
          const driver = new SocketDriver({
            engine,
            host: '127.0.0.1',
            port: 0,
            storage: {
              readBlock: async (index, begin, length) =>
                (disk.get(index) as Uint8Array).subarray(begin, begin + length),
              writeChunk: async (index, bytes) => {
                disk.set(index, bytes.slice());
              },
            },
            onComplete: () => resolve(disk),
          });
          drivers.push(driver);
          driver.addPeers([{ address: `127.0.0.1:${port}`, role: 'owner' }]);
        }),
      );
    }
    const disks = await Promise.all(finished);
    const { readFileSync } = await import('node:fs');
    const original = readFileSync(file);
    for (const disk of disks) {
      const copy = Buffer.concat(
        [...Array(metainfo.geometry.pieceCount).keys()].map((i) => disk.get(i) as Uint8Array),
      );
      assert.is(Buffer.compare(copy, original), 0);
    }
  } finally {
    await Promise.all(drivers.map((driver) => driver.stop()));
    await space.close();
  }
});

test('a peer killed with SIGKILL mid-download keeps its verified chunks and finishes', async () => {
  const space = new Workspace();
  try {
    const file = space.file('big.bin', 12 * 1024 * 1024, 9);
    const { port } = await space.owner(file, ['--advertise', 'all']);
    let received = 0;
    const first = space.peer(port, '7', ['--topology', 'star']);
    await first.waitFor(
      (line) => line.event === 'activity' && line.kind === 'chunk-received' && ++received >= 20,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const second = space.peer(port, '7', ['--topology', 'star']);
    const listening = await second.waitFor((line) => line.event === 'listening');
    assert.ok(Number(listening.have) >= 20, `kept ${listening.have} verified chunks`);
    const done = await second.waitFor((line) => line.event === 'complete');
    assert.is(done.fileSha256, await sha256File(file));
    const fetchedAgain = countEvents(second, 'chunk-received');
    assert.ok(fetchedAgain <= 123 - Number(listening.have), 'kept chunks were not fetched again');
  } finally {
    await space.close();
  }
});

test('once every chunk is in the swarm the owner may leave, and the peers still finish', async () => {
  const space = new Workspace();
  try {
    const file = space.file('leave.bin', 2 * 1024 * 1024, 3);
    const { process: owner, port } = await space.owner(file, ['--peers', '3', '--announce-interval', '1']);
    const seen = new Set<number>();
    const chunkOf = (line: { line?: unknown }): number =>
      Number(/received chunk (\d+)/.exec(String(line.line))?.[1]);
    let resolveCovered: (() => void) | undefined;
    const covered = new Promise<void>((resolve) => {
      resolveCovered = resolve;
    });
    const watch = (line: Record<string, unknown>): void => {
      if (line.event === 'activity' && line.kind === 'chunk-received') {
        seen.add(chunkOf(line));
        if (seen.size === 21) resolveCovered?.();
      }
    };
    const peers = ['1', '2', '3'].map((id) =>
      space.spawn(
        ['peer', '--owner', `127.0.0.1:${port}`, ...space.peerArgs(id), '--topology', 'full'],
        watch,
      ),
    );
    // Every peer must know the others before the tracker goes away.
    await Promise.all(
      peers.map((peer) =>
        peer.waitFor(
          () =>
            peer.lines.filter((line) => line.event === 'activity' && line.kind === 'connected').length >= 3,
        ),
      ),
    );
    await covered;
    await stopProcess(owner);
    const expected = await sha256File(file);
    const done = await Promise.all(peers.map((peer) => peer.waitFor((line) => line.event === 'complete')));
    for (const line of done) assert.is(line.fileSha256, expected);
  } finally {
    await space.close();
  }
});

test('a peer restarted on a new port is found again through the owner', async () => {
  const space = new Workspace();
  try {
    const file = space.file('move.bin', 4 * 1024 * 1024, 4);
    const { port } = await space.owner(file, ['--peers', '3', '--announce-interval', '1']);
    const one = space.peer(port, '1');
    await one.waitFor((line) => line.event === 'listening');
    const two = space.peer(port, '2');
    const twoListening = await two.waitFor((line) => line.event === 'listening');
    let received = 0;
    await two.waitFor(
      (line) => line.event === 'activity' && line.kind === 'chunk-received' && ++received >= 3,
    );
    two.child.kill('SIGKILL');
    await two.exited;
    const three = space.peer(port, '3');
    const again = space.peer(port, '2');
    const againListening = await again.waitFor((line) => line.event === 'listening');
    assert.is.not(againListening.port, twoListening.port, 'came back on a new port');
    const expected = await sha256File(file);
    const done = await Promise.all(
      [one, three, again].map((peer) => peer.waitFor((line) => line.event === 'complete')),
    );
    for (const line of done) assert.is(line.fileSha256, expected);
    // In the ring peer1 downloads from peer2: it must have dialled peer2's new address.
    assert.ok(
      one.lines.some(
        (line) => line.event === 'activity' && String(line.line).includes('connected to peer2 (outbound)'),
      ),
    );
  } finally {
    await space.close();
  }
});

test.run();
