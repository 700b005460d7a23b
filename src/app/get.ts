/**
 * `swarm get`: a peer that downloads one file from a .torrent, puts the verified file where the
 * user asked (never over an existing one), and exits. Its chunk files stay in a work folder, so a
 * second run resumes instead of starting over.
 */

import { randomInt } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { unsafeFileNameReason } from '../transport/store-names.ts';
import type { HostPort } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import type { OutputMode } from './output.ts';
import { runPeer } from './peer.ts';
import { readTorrentFile } from './torrent-source.ts';

export interface GetOptions {
  /** A .torrent file's path (magnet links need BEP 9 fetching, which our peer does not do yet). */
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
  if (options.what.startsWith('magnet:')) {
    throw new UsageFailure(
      'get: starting from a magnet link needs the metadata fetch (BEP 9), which our peer does not do yet; give the .torrent file',
    );
  }
  const { metainfo } = await readTorrentFile(options.what, 'the torrent');
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
  return runPeer({
    source: { kind: 'torrent', path: options.what, connect: options.connect },
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
