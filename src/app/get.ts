/**
 * `swarm get`: a peer that downloads one file from a .torrent or a magnet link, puts the verified file where the
 * user asked (never over an existing one), and exits. Its chunk files stay in a work folder, so a
 * second run resumes instead of starting over.
 */

import { randomInt } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Metainfo } from '../engine/metainfo.ts';
import { unsafeFileNameReason } from '../transport/store-names.ts';
import type { HostPort } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import { fetchMagnet, isMagnetLink, readMagnet, saveTorrent } from './magnet.ts';
import type { OutputMode } from './output.ts';
import { runPeer } from './peer.ts';
import { readTorrentFile } from './torrent-source.ts';

export interface GetOptions {
  /** A .torrent file's path, or a magnet link (the metadata is fetched first, BEP 9). */
  readonly what: string;
  readonly outputPath: string | undefined;
  readonly dir: string | undefined;
  readonly connect: readonly HostPort[];
  readonly host: string;
  readonly port: number;
  readonly giveUpAfterMs: number;
  readonly output: OutputMode;
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

export async function runGet(options: GetOptions): Promise<number> {
  if (isMagnetLink(options.what)) return await getMagnet(options);
  const { metainfo } = await readTorrentFile(options.what, 'the torrent');
  return await download(options, metainfo, options.what, options.connect);
}

/** The output path the user gave or the torrent names, checked not to exist. */
async function outputPathFor(options: GetOptions, metainfo: Metainfo): Promise<string> {
  // The name comes from the torrent, a file someone else made: it must be a plain file name.
  const unsafe = unsafeFileNameReason(metainfo.name);
  if (options.outputPath === undefined && unsafe !== undefined) {
    throw new UsageFailure(
      `the torrent's file name ${JSON.stringify(metainfo.name)} ${unsafe}; give -o PATH`,
    );
  }
  const outputPath = resolve(options.outputPath ?? metainfo.name);
  if (await exists(outputPath)) {
    throw new UsageFailure(
      `${outputPath} exists already; give another -o PATH (swarm never overwrites a file)`,
    );
  }
  return outputPath;
}

/**
 * A magnet link: the metadata from the --connect peers, the link's x.pe peers or its trackers, saved
 * as PATH.parts/NAME.torrent; then the download as from that .torrent.
 */
async function getMagnet(options: GetOptions): Promise<number> {
  readMagnet(options.what); // a bad link is refused before anything else
  // Refuse an existing -o before spending time on the network.
  if (options.outputPath !== undefined && (await exists(resolve(options.outputPath)))) {
    throw new UsageFailure(
      `${resolve(options.outputPath)} exists already; give another -o PATH (swarm never overwrites a file)`,
    );
  }
  const { torrent, connect } = await fetchMagnet(options.what, 'get', options);
  const outputPath = await outputPathFor(options, torrent.metainfo);
  const torrentPath = await saveTorrent(torrent, options.dir ?? `${outputPath}.parts`, '--dir');
  return await download(options, torrent.metainfo, torrentPath, connect);
}

async function download(
  options: GetOptions,
  metainfo: Metainfo,
  torrentPath: string,
  connect: readonly HostPort[],
): Promise<number> {
  const outputPath = await outputPathFor(options, metainfo);
  return runPeer({
    source: { kind: 'torrent', path: torrentPath, connect },
    host: options.host,
    port: options.port,
    downloadFrom: undefined,
    id: String(randomInt(1000, 10_000)),
    dir: options.dir ?? `${outputPath}.parts`,
    topology: 'mesh',
    degree: 4,
    picker: 'random',
    phases: 'overlapped',
    exitWhenDone: true,
    giveUpAfterMs: options.giveUpAfterMs,
    retries: 0,
    output: options.output,
    clockOriginMs: undefined,
    deliverTo: outputPath,
  });
}
