/**
 * Peer exchange over real sockets: with the owner gone, a peer that knows one live peer finds the
 * rest through it; and a peer keeps the addresses it reached in `peers.txt` for its next start.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256File, stopProcess } from '../src/app/processes.ts';
import { MAX_SAVED_PEERS, parsePeersFile } from '../src/transport/peers-file.ts';
import { inWorkspace, torrentPeer } from './support/processes.ts';

const connectedPeers = (lines: readonly Record<string, unknown>[]): Set<string> =>
  new Set(
    lines.flatMap((line) => {
      if (line.event !== 'activity' || line.kind !== 'connected') return [];
      const peer = /connected to (\S+)/.exec(String(line.line))?.[1];
      return peer === undefined ? [] : [peer];
    }),
  );

test('peers.txt is parsed strictly: IP host:port lines only, canonical, without repeats, bounded', () => {
  assert.equal(
    parsePeersFile(
      '# comment\n10.0.0.1:80\n10.0.0.1:80\n::ffff:10.0.0.1:80\n[::1]:9\nhost:1\n1.2.3.4:0\n1.2.3.4\n',
    ),
    ['10.0.0.1:80', '::1:9'],
  );
  const many = Array.from({ length: 10_000 }, (_, i) => `10.0.${i >> 8}.${i & 0xff}:1`).join('\n');
  assert.is(parsePeersFile(many).length, MAX_SAVED_PEERS);
});

test('with the owner gone, a peer told of one peer finds the others by PEX and finishes', () =>
  inWorkspace(async (space) => {
    const file = space.file('pex.bin', 16 * 1024 * 1024, 5);
    const { process: owner, port } = await space.owner(file, ['--peers', '3', '--announce-interval', '1']);
    const seen = new Set<string>();
    let resolveCovered: (() => void) | undefined;
    const covered = new Promise<void>((resolve) => {
      resolveCovered = resolve;
    });
    const watch = (line: Record<string, unknown>): void => {
      if (line.event !== 'activity' || line.kind !== 'chunk-received') return;
      seen.add(String(/received chunk (\d+)/.exec(String(line.line))?.[1]));
      if (seen.size === 164) resolveCovered?.();
    };
    const peers = ['1', '2', '3'].map((id) =>
      space.spawn(
        ['peer', '--owner', `127.0.0.1:${port}`, ...space.peerArgs(id), '--topology', 'full'],
        watch,
      ),
    );
    const ports = await Promise.all(
      peers.map(async (peer) => Number((await peer.waitFor((line) => line.event === 'listening')).port)),
    );
    await Promise.all(peers.map((peer) => peer.waitFor(() => connectedPeers(peer.lines).size >= 3)));
    await covered;
    await stopProcess(owner);

    const joiner = space.spawn(
      torrentPeer(
        file,
        space.path('Peer4Dir'),
        '--id',
        '4',
        '--port',
        '0',
        '--connect',
        `127.0.0.1:${ports[0]}`,
      ),
    );
    const done = await joiner.waitFor((line) => line.event === 'complete');
    assert.is(done.fileSha256, await sha256File(file));
    await joiner.waitFor(() => connectedPeers(joiner.lines).size >= 3);
    assert.equal([...connectedPeers(joiner.lines)].sort(), ['peer1', 'peer2', 'peer3']);
    await stopProcess(joiner);
    // It keeps the addresses it reached: the one it was told and the two it learned.
    const saved = parsePeersFile(readFileSync(space.path('Peer4Dir', 'peers.txt'), 'utf8'));
    assert.equal(saved.sort(), ports.map((one) => `127.0.0.1:${one}`).sort());
  }));

test('a restarted peer dials the peers in its peers.txt, with no tracker and no --connect', () =>
  inWorkspace(async (space) => {
    const file = space.file('again.bin', 1024 * 1024, 6);
    const { process: owner, port } = await space.owner(file);
    const seeder = space.peer(port, '1', ['--topology', 'full']);
    const seederPort = Number((await seeder.waitFor((line) => line.event === 'listening')).port);
    await seeder.waitFor((line) => line.event === 'complete');
    await stopProcess(owner);
    const dir = space.path('Peer2Dir');
    // A hostile file: junk, an out-of-range port, a name, and one good address.
    const { writeFileSync, mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      space.path('Peer2Dir', 'peers.txt'),
      `garbage\n127.0.0.1:70000\nexample.com:80\n\0\0\n127.0.0.1:${seederPort}\n`,
    );
    const peer = space.spawn(torrentPeer(file, dir, '--id', '2', '--port', '0'));
    const done = await peer.waitFor((line) => line.event === 'complete');
    assert.is(done.fileSha256, await sha256File(file));
  }));

test.run();
