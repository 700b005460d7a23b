/**
 * Peer exchange with libtorrent (issue #19, acceptance 3, in part), on 127.0.0.1: our owner, a
 * libtorrent peer told only the owner's address (PEX on, upload capped), a second libtorrent session
 * told only the first (PEX off: its address is one only libtorrent knows), and two of our peers, the
 * first told only libtorrent's address, the second only our first peer's. The torrent names no
 * tracker, so our first peer can learn the hidden session only from libtorrent's `ut_pex`.
 * Not asserted yet: that libtorrent ends up connected to our second peer (its status is sampled
 * once a second and seeds drop seeds, so a cumulative list of peers met is needed first).
 * Every wait has a deadline; every process is stopped by the workspace and the client registry.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeTorrent } from '../bench/lib.ts';
import { type EventLine, type SwarmProcess, sha256File } from '../src/app/processes.ts';
import { parseTorrent } from '../src/engine/metainfo.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { startLibtorrent, within } from './interop/clients.ts';
import { withClients } from './interop/workspace.ts';

const DEADLINE_MS = 40_000;
const CHUNK = 102400;

/** Activity lines saying the process dialled (outbound) an address ending in `:port`. */
const dialled =
  (port: number) =>
  (line: EventLine): boolean =>
    line.event === 'activity' &&
    line.kind === 'connected' &&
    new RegExp(`connected to \\S*:${port} \\(outbound\\)`).test(String(line.line));

test('our peer told only of libtorrent dials an address only libtorrent knew, learned by its ut_pex', async () => {
  await withClients(['libtorrent'], async (space, clients) => {
    const file = space.file('data.bin', 16_000_000, 19);
    const owner = await space.owner(file, ['--chunk-size', String(CHUNK)]);
    const listening = await owner.process.waitFor((line) => line.event === 'listening');
    // The same info dictionary as the owner's torrent, without its tracker.
    const torrent = await writeTorrent(file, CHUNK, space.path('untracked.torrent'));
    const infoHash = (path: string): string => {
      const parsed = parseTorrent(readFileSync(path), sha1);
      if (!parsed.ok) throw new Error(`${path}: not a torrent`);
      return Buffer.from(parsed.metainfo.infoHash).toString('hex');
    };
    assert.is(infoHash(torrent), infoHash(String(listening.torrent)));

    // libtorrent's upload is capped so our first peer is still downloading when its ut_pex comes.
    const lt = await startLibtorrent(clients, {
      name: 'libtorrent',
      torrent,
      save: space.path('lt'),
      connect: [owner.port],
      pex: true,
      uploadLimitBytesPerSecond: 200_000,
    });
    const hidden = await startLibtorrent(clients, {
      name: 'libtorrent (known to libtorrent only)',
      torrent,
      save: space.path('lt2'),
      connect: [lt.port],
    });
    const why = (): string => `${clients.tails()}\n(workspace ${space.dir})`;
    // libtorrent drops the owner once it holds everything (a seed keeps no seed), so what it keeps
    // is the hidden session, which its capped upload keeps downloading for the whole test.
    await within(
      DEADLINE_MS,
      'the hidden session connected to libtorrent',
      hidden.client.waitFor((line) => line.event === 'status' && Number(line.peers) >= 1),
      why,
    );

    const first = space.spawn([
      'peer',
      '--torrent',
      torrent,
      '--connect',
      `127.0.0.1:${lt.port}`,
      ...space.peerArgs('1'),
    ]);
    const firstPort = Number(
      (
        await within(
          DEADLINE_MS,
          'our peer 1 listening',
          first.waitFor((line) => line.event === 'listening'),
          why,
        )
      ).port,
    );
    const second = space.spawn([
      'peer',
      '--torrent',
      torrent,
      '--connect',
      `127.0.0.1:${firstPort}`,
      ...space.peerArgs('2'),
    ]);
    const ours: SwarmProcess[] = [first, second];

    // Our first peer dials the hidden session, whose address only libtorrent had.
    await within(
      DEADLINE_MS,
      'our peer 1 dials the address libtorrent told it',
      first.waitFor(dialled(hidden.port)),
      why,
    );
    const expected = await sha256File(file);
    for (const [index, peer] of ours.entries()) {
      const done = await within(
        DEADLINE_MS,
        `our peer ${index + 1} complete`,
        peer.waitFor((line) => line.event === 'complete'),
        why,
      );
      assert.is(done.fileSha256, expected);
    }
  });
});

test.run();
