/**
 * Peer exchange with libtorrent (issue #19, acceptance 3), on 127.0.0.1: our owner, a libtorrent
 * peer told only the owner's address (PEX on), a second libtorrent session told only the first (PEX
 * off: its address is one only libtorrent knows), and two of our peers: peer 2 told of nobody and
 * without PEX (so it never hears libtorrent's address and dials no one), peer 1 told of libtorrent
 * and of peer 2. The torrent names no tracker, so addresses travel only by `--connect` and `ut_pex`:
 * - libtorrent learns peer 2 from our peer 1's `ut_pex` and dials it (an outgoing connection whose
 *   source is PEX, to an address libtorrent was never given);
 * - our peer 1 learns the hidden session from libtorrent's `ut_pex` and dials it.
 * libtorrent reports every peer it completes a handshake with ("met", looked at every 50 ms), so a
 * connection it later drops (a seed keeps no seed) is still seen.
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

const DEADLINE_MS = 30_000;
/**
 * libtorrent takes the file from our owner at once, but passes it on at 1 MB/s in all: everything
 * our peers and the hidden session have comes through it (they do not know the owner), so they are
 * all still downloading (nobody is a seed to drop or to skip) while the ut_pex messages go round.
 */
const FILE_BYTES = 4_000_000;
const UPLOAD_LIMIT = 1_000_000;
const CHUNK = 102400;

/** Activity lines saying the process dialled (outbound) an address ending in `:port`. */
const dialled =
  (port: number) =>
  (line: EventLine): boolean =>
    line.event === 'activity' &&
    line.kind === 'connected' &&
    new RegExp(`connected to \\S*:${port} \\(outbound\\)`).test(String(line.line));

test('libtorrent dials our peer 2 learned by our ut_pex; our peer 1 dials an address learned by libtorrent ut_pex', async () => {
  await withClients(['libtorrent'], async (space, clients) => {
    const file = space.file('data.bin', FILE_BYTES, 19);
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

    const lt = await startLibtorrent(clients, {
      name: 'libtorrent',
      torrent,
      save: space.path('lt'),
      connect: [owner.port],
      pex: true,
      uploadLimitBytesPerSecond: UPLOAD_LIMIT,
    });
    const hidden = await startLibtorrent(clients, {
      name: 'libtorrent (known to libtorrent only)',
      torrent,
      save: space.path('lt2'),
      connect: [lt.port],
    });
    const metLines = (): string =>
      lt.client.events
        .filter((line) => line.event === 'met')
        .map((line) => JSON.stringify(line))
        .join('\n');
    const ours: SwarmProcess[] = [];
    const ourLines = (): string =>
      ours
        .map((peer, index) => {
          const activity = peer.lines.filter((line) => line.event === 'activity').slice(-20);
          return `--- our peer ${index + 1}:\n${activity.map((line) => line.line).join('\n')}`;
        })
        .join('\n');
    const why = (): string =>
      `${clients.tails()}\n--- libtorrent met:\n${metLines()}\n${ourLines()}\n(workspace ${space.dir})`;
    await within(
      DEADLINE_MS,
      'the hidden session connected to libtorrent',
      hidden.client.waitFor((line) => line.event === 'status' && Number(line.peers) >= 1),
      why,
    );

    // Peer 2 first, so it is connected to peer 1 when peer 1's first ut_pex goes to libtorrent.
    const second = space.spawn(['peer', '--torrent', torrent, '--no-pex', ...space.peerArgs('2')]);
    const port = async (peer: SwarmProcess, name: string): Promise<number> =>
      Number(
        (
          await within(
            DEADLINE_MS,
            `${name} listening`,
            peer.waitFor((line) => line.event === 'listening'),
            why,
          )
        ).port,
      );
    const secondPort = await port(second, 'our peer 2');
    const first = space.spawn([
      'peer',
      '--torrent',
      torrent,
      ...['--connect', `127.0.0.1:${lt.port}`, '--connect', `127.0.0.1:${secondPort}`],
      ...space.peerArgs('1'),
    ]);
    await port(first, 'our peer 1');
    ours.push(first, second);

    // libtorrent dials our peer 2, whose address it had only from our peer 1's ut_pex.
    const met = await within(
      DEADLINE_MS,
      'libtorrent connects to our peer 2',
      lt.client.waitFor(
        (line) =>
          line.event === 'met' && line.address === `127.0.0.1:${secondPort}` && line.outgoing === true,
      ),
      why,
    );
    assert.ok(
      met.pex === true && String(met.id).includes('peer2'),
      `libtorrent learned our peer 2 by PEX: ${JSON.stringify(met)}`,
    );
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
    // Peer 2 never heard libtorrent's address: it dialled no one, libtorrent dialled it.
    assert.equal(
      second.lines.filter((line) => line.event === 'activity' && / \(outbound\)$/.test(String(line.line))),
      [],
    );
  });
});

test.run();
