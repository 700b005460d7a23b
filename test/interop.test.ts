/**
 * Interop with BitTorrent clients nobody here wrote, on 127.0.0.1: libtorrent 2.0 (python3-libtorrent),
 * aria2 1.36 and Transmission 3.00. Both directions — a real client downloads from our owner, our
 * peer downloads from a real client seeding — at 102400- and 262144-byte chunks, file hashes
 * verified; magnet links alone (BEP 9 from our owner, and our peer's from a libtorrent seeder); and a
 * mixed swarm.
 *
 * A missing client fails the test with the package to install (`.ci/run` installs them); nothing
 * here is skipped. Every process is bounded in time and killed in `finally`.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, writeTorrent } from '../bench/lib.ts';
import { type EventLine, type SwarmProcess, sha256File } from '../src/app/processes.ts';
import { magnetLink, parseTorrent } from '../src/engine/metainfo.ts';
import { sha1 } from '../src/platform/sha1.ts';
import {
  type ClientProcess,
  type Clients,
  startAria2,
  startLibtorrent,
  Transmission,
  within,
} from './interop/clients.ts';
import { withClients } from './interop/workspace.ts';
import { Workspace } from './support/processes.ts';

/** Each chunk size with a file that gives it at least 5 chunks, the last one shorter. */
const SIZES = [
  { chunk: 102400, file: 1_000_000 },
  { chunk: 262144, file: 1_500_000 },
] as const;

const DEADLINE_MS = 40_000;

// INTEROP_TIMES=1 prints how long each test took (stderr), for the README's table.
let startedAt = 0;
test.before.each(() => {
  startedAt = performance.now();
});
test.after.each((context) => {
  if (process.env.INTEROP_TIMES === undefined) return;
  const name = (context as { __test__?: string }).__test__ ?? '';
  process.stderr.write(`\n${((performance.now() - startedAt) / 1000).toFixed(1)} s  ${name}\n`);
});

const isComplete = (line: EventLine): boolean => line.event === 'complete';

function context(space: Workspace, clients: Clients, swarm: readonly SwarmProcess[] = []): () => string {
  return () =>
    [
      clients.tails(),
      ...swarm.map(
        (process_) =>
          `--- swarm, last lines:\n${process_.lines
            .slice(-12)
            .map((line) => String(line.line ?? JSON.stringify(line)))
            .join('\n')}\n${process_.stderr.join('\n')}`,
      ),
      `(workspace ${space.dir})`,
    ].join('\n');
}

/** Starts our owner; its torrent is written next to the file. */
async function startOwner(
  space: Workspace,
  file: string,
  chunk: number,
  extra: readonly string[] = [],
): Promise<{ process: SwarmProcess; port: number; torrent: string; magnet: string }> {
  const owner = await space.owner(file, [
    '--chunk-size',
    String(chunk),
    '--announce-interval',
    '1',
    ...extra,
  ]);
  const listening = await owner.process.waitFor((line) => line.event === 'listening');
  assert.is(listening.chunkSizeBytes, chunk);
  assert.ok(Number(listening.chunks) >= 5, 'at least 5 chunks');
  return { ...owner, torrent: String(listening.torrent), magnet: String(listening.magnet) };
}

/** Our peer with only a .torrent and the seeder's address. */
function startTorrentPeer(space: Workspace, id: string, torrent: string, seederPort: number): SwarmProcess {
  return space.spawn([
    'peer',
    '--torrent',
    torrent,
    '--connect',
    `127.0.0.1:${seederPort}`,
    ...space.peerArgs(id),
  ]);
}

async function assertSameFile(copy: string, original: string, who: string): Promise<void> {
  const expected = await sha256File(original);
  assert.ok(expected !== null);
  assert.is(await sha256File(copy), expected, `${who}: the copy has the original's SHA-256`);
}

for (const { chunk, file: size } of SIZES) {
  test(`libtorrent downloads from our owner (${chunk}-byte chunks, owner hands out shares)`, async () => {
    await withClients(['libtorrent'], async (space, clients) => {
      const file = space.file('data.bin', size, chunk);
      const owner = await startOwner(space, file, chunk);
      const { client } = await startLibtorrent(clients, {
        name: 'libtorrent',
        torrent: owner.torrent,
        save: space.path('lt'),
        connect: [owner.port],
      });
      await within(
        DEADLINE_MS,
        'libtorrent download',
        client.waitFor(isComplete),
        context(space, clients, [owner.process]),
      );
      await assertSameFile(space.path('lt', 'data.bin'), file, 'libtorrent');
    });
  });

  test(`aria2 downloads from our owner (${chunk}-byte chunks, owner hands out shares)`, async () => {
    await withClients(['aria2'], async (space, clients) => {
      const file = space.file('data.bin', size, chunk + 1);
      const ariaPort = await freePort();
      // aria2 gets no peers from the tracker (the owner does not list itself): the owner dials it.
      const owner = await startOwner(space, file, chunk, ['--connect', `127.0.0.1:${ariaPort}`]);
      const aria = startAria2(clients, {
        name: 'aria2',
        target: owner.torrent,
        dir: space.path('aria'),
        port: ariaPort,
      });
      const code = await within(
        DEADLINE_MS,
        'aria2 download',
        aria.exited,
        context(space, clients, [owner.process]),
      );
      assert.is(code, 0, `aria2 exit code\n${aria.tail()}`);
      await assertSameFile(space.path('aria', 'data.bin'), file, 'aria2');
      // Our BEP 10 handshake reached aria2 and was understood.
      assert.match(
        readFileSync(`${space.path('aria')}.aria2.log`, 'utf8'),
        /extended handshake client=swarm/,
      );
    });
  });

  test(`our peer downloads from a libtorrent seeder (${chunk}-byte chunks)`, async () => {
    await withClients(['libtorrent'], async (space, clients) => {
      const file = space.file('data.bin', size, chunk + 2);
      const torrent = space.path('seed.torrent');
      // libtorrent only makes power-of-two pieces; 102400 comes from our own torrent writer, whose
      // tracker is down on purpose (a failing tracker must not matter).
      if (chunk === 102400) await writeTorrent(file, chunk, torrent, 'http://127.0.0.1:9/announce');
      const seeder = await startLibtorrent(clients, {
        name: 'libtorrent seeder',
        torrent,
        save: space.dir,
        seed: true,
        ...(chunk === 102400 ? {} : { makeTorrentOf: file, pieceSize: chunk }),
      });
      await within(
        15_000,
        'libtorrent seeding',
        seeder.client.waitFor((line) => line.event === 'seeding'),
        () => clients.tails(),
      );
      const peer = startTorrentPeer(space, '1', torrent, seeder.port);
      const done = await within(
        DEADLINE_MS,
        'our peer download',
        peer.waitFor(isComplete),
        context(space, clients, [peer]),
      );
      assert.is(done.fileSha256, await sha256File(file));
      await assertSameFile(space.path('Peer1Dir', 'data.bin'), file, 'our peer');
    });
  });

  test(`our peer downloads from an aria2 seeder (${chunk}-byte chunks)`, async () => {
    await withClients(['aria2'], async (space, clients) => {
      const file = space.file('data.bin', size, chunk + 3);
      const torrent = await writeTorrent(file, chunk, space.path('seed.torrent'));
      const ariaPort = await freePort();
      const seeder = startAria2(clients, {
        name: 'aria2 seeder',
        target: torrent,
        dir: space.dir,
        port: ariaPort,
        seed: true,
      });
      await within(15_000, 'aria2 listening', waitForLine(seeder, /listening on TCP port/), () =>
        clients.tails(),
      );
      const peer = startTorrentPeer(space, '1', torrent, ariaPort);
      const done = await within(
        DEADLINE_MS,
        'our peer download',
        peer.waitFor(isComplete),
        context(space, clients, [peer]),
      );
      assert.is(done.fileSha256, await sha256File(file));
      await assertSameFile(space.path('Peer1Dir', 'data.bin'), file, 'our peer');
    });
  });
}

/** Resolves at the first plain output line matching `pattern` (aria2 prints no JSON). */
function waitForLine(client: ClientProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (client.lines.some((line) => pattern.test(line))) {
        clearInterval(timer);
        resolve();
      } else if (client.child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`${client.name} exited\n${client.tail()}`));
      }
    }, 50);
  });
}

test('a magnet link alone is enough: libtorrent and aria2 fetch the metadata from our owner (BEP 9)', async () => {
  await withClients(['libtorrent', 'aria2'], async (space, clients) => {
    const file = space.file('data.bin', 1_000_000, 7);
    const ariaPort = await freePort();
    const owner = await startOwner(space, file, 102400, ['--connect', `127.0.0.1:${ariaPort}`]);
    const { client: lt } = await startLibtorrent(clients, {
      name: 'libtorrent (magnet)',
      magnet: owner.magnet,
      save: space.path('lt'),
      connect: [owner.port],
    });
    const aria = startAria2(clients, {
      name: 'aria2 (magnet)',
      target: owner.magnet,
      dir: space.path('aria'),
      port: ariaPort,
    });
    const why = context(space, clients, [owner.process]);
    await within(DEADLINE_MS, 'libtorrent via magnet', lt.waitFor(isComplete), why);
    assert.is(await within(DEADLINE_MS, 'aria2 via magnet', aria.exited, why), 0, aria.tail());
    await assertSameFile(space.path('lt', 'data.bin'), file, 'libtorrent');
    await assertSameFile(space.path('aria', 'data.bin'), file, 'aria2');
  });
});

test('our peer starts from a magnet link alone: the metadata from a libtorrent seeder (BEP 9)', async () => {
  await withClients(['libtorrent'], async (space, clients) => {
    const file = space.file('data.bin', 1_000_000, 11);
    const torrent = await writeTorrent(
      file,
      102400,
      space.path('seed.torrent'),
      'http://127.0.0.1:9/announce',
    );
    const parsed = parseTorrent(new Uint8Array(readFileSync(torrent)), sha1);
    assert.ok(parsed.ok);
    if (!parsed.ok) return;
    const seeder = await startLibtorrent(clients, {
      name: 'libtorrent seeder',
      torrent,
      save: space.dir,
      seed: true,
    });
    await within(
      15_000,
      'libtorrent seeding',
      seeder.client.waitFor((line) => line.event === 'seeding'),
      () => clients.tails(),
    );
    const peer = startTorrentPeer(space, '1', magnetLink(parsed.metainfo), seeder.port);
    const why = context(space, clients, [peer]);
    const metadata = await within(
      15_000,
      'metadata from libtorrent',
      peer.waitFor((line) => line.event === 'metadata'),
      why,
    );
    assert.is(metadata.from, `127.0.0.1:${seeder.port}`);
    const done = await within(DEADLINE_MS, 'our peer download', peer.waitFor(isComplete), why);
    assert.is(done.fileSha256, await sha256File(file));
    // The torrent rebuilt around libtorrent's info bytes has the link's info hash.
    const saved = parseTorrent(
      new Uint8Array(readFileSync(space.path('Peer1Dir', 'data.bin.torrent'))),
      sha1,
    );
    assert.ok(saved.ok && Buffer.from(saved.metainfo.infoHash).equals(parsed.metainfo.infoHash));
  });
});

test('Transmission downloads from our owners (both chunk sizes, --advertise all)', async () => {
  await withClients(['transmission'], async (space, clients) => {
    // One workspace per owner (each keeps its chunks in its own OwnerDir).
    const subs = SIZES.map(() => new Workspace());
    const owners: SwarmProcess[] = [];
    try {
      const daemon = await Transmission.start(
        clients,
        'transmission',
        space.path('tr-config'),
        space.path('tr'),
      );
      // Transmission re-decides interest only every 10 s, so an owner that reveals a share at a time
      // costs it a round per share: offer everything at once. The owner dials it (Transmission
      // cannot be told a peer's address).
      const runs = SIZES.map(async ({ chunk, file: size }, index) => {
        const sub = subs[index] as Workspace;
        const file = sub.file('data.bin', size, chunk + 4);
        const owner = await startOwner(sub, file, chunk, [
          '--advertise',
          'all',
          '--connect',
          `127.0.0.1:${daemon.peerPort}`,
        ]);
        owners.push(owner.process);
        const id = await daemon.add(owner.torrent, space.path('tr', String(chunk)));
        await within(
          DEADLINE_MS,
          `Transmission download (${chunk})`,
          daemon.untilDone(id),
          context(space, clients, owners),
        );
        await assertSameFile(space.path('tr', String(chunk), 'data.bin'), file, `Transmission (${chunk})`);
      });
      await Promise.all(runs);
    } finally {
      await Promise.all(subs.map((sub) => sub.close()));
    }
  });
});

test('our peers download from a Transmission seeder (both chunk sizes)', async () => {
  await withClients(['transmission'], async (space, clients) => {
    const daemon = await Transmission.start(clients, 'transmission', space.path('tr-config'), space.dir);
    const runs = SIZES.map(async ({ chunk, file: size }, index) => {
      const name = `data${chunk}.bin`;
      const file = space.file(name, size, chunk + 5);
      const torrent = await writeTorrent(file, chunk, space.path(`${name}.torrent`));
      const id = await daemon.add(torrent, space.dir);
      await within(15_000, 'Transmission checking', daemon.untilDone(id), () => clients.tails());
      const peer = startTorrentPeer(space, String(index + 1), torrent, daemon.peerPort);
      const done = await within(
        DEADLINE_MS,
        `our peer download (${chunk})`,
        peer.waitFor(isComplete),
        context(space, clients, [peer]),
      );
      assert.is(done.fileSha256, await sha256File(file));
      await assertSameFile(space.path(`Peer${index + 1}Dir`, name), file, `our peer (${chunk})`);
    });
    await Promise.all(runs);
  });
});

test('mixed swarm: our owner, 2 of our peers and 2 libtorrent peers all finish', async () => {
  await withClients(['libtorrent'], async (space, clients) => {
    const file = space.file('data.bin', 2_000_000, 11);
    // Defaults everywhere: the owner hands out shares, our peers form the ring in join order (a
    // libtorrent peer may be a ring neighbour), libtorrent finds everyone through the tracker.
    const owner = await startOwner(space, file, 102400, ['--peers', '4']);
    const ours = ['1', '2'].map((id) => space.peer(owner.port, id));
    const theirs = await Promise.all(
      ['1', '2'].map(
        async (id) =>
          (
            await startLibtorrent(clients, {
              name: `libtorrent ${id}`,
              torrent: owner.torrent,
              save: space.path(`lt${id}`),
              connect: [owner.port],
            })
          ).client,
      ),
    );
    const why = context(space, clients, [owner.process, ...ours]);
    const done = await within(
      DEADLINE_MS,
      'mixed swarm',
      Promise.all([
        ...ours.map((peer) => peer.waitFor(isComplete)),
        ...theirs.map((lt) => lt.waitFor(isComplete)),
      ]),
      why,
    );
    const expected = await sha256File(file);
    assert.is(done[0]?.fileSha256, expected);
    assert.is(done[1]?.fileSha256, expected);
    for (const id of ['1', '2']) {
      await assertSameFile(space.path(`Peer${id}Dir`, 'data.bin'), file, `our peer ${id}`);
      await assertSameFile(space.path(`lt${id}`, 'data.bin'), file, `libtorrent ${id}`);
    }
  });
});

test.run();
