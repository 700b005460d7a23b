/**
 * Starting from a magnet link: the peers to ask (given, in the link, from its trackers), the info
 * dictionary fetched from them (BEP 9), and a `.torrent` built around those exact bytes and saved in
 * the work folder, so the rest of the peer starts as from any `.torrent` file.
 */
import { randomInt } from 'node:crypto';
import nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { encodeBencode } from '../engine/bencode.ts';
import { concatBytes } from '../engine/bytes.ts';
import { bytesEqual, toHex } from '../engine/hash.ts';
import { type Magnet, parseMagnet } from '../engine/magnet.ts';
import { type Metainfo, parseTorrent } from '../engine/metainfo.ts';
import { makePeerId } from '../engine/peer-id.ts';
import { Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import { placeFile } from '../transport/file-io.ts';
import { fetchMetadata, formatPeer, type PeerFailure, uniquePeers } from '../transport/metadata-fetch.ts';
import { announce, type HostPort } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import { RunFailure } from './command.ts';
import { type OutputMode, Reporter } from './output.ts';
import { prepareFolder } from './startup.ts';

const TRACKER_TIMEOUT_MS = 5_000;
/** Peers asked of each tracker. */
const TRACKER_NUMWANT = 50;
/** The port we name in the tracker announce: the real peer announces its own port later. */
const DEFAULT_ANNOUNCE_PORT = 6881;
const utf8 = new TextEncoder();

export function isMagnetLink(text: string): boolean {
  return /^magnet:/i.test(text);
}

/** The magnet link, parsed, or one clear usage line. */
export function readMagnet(link: string): Magnet {
  const parsed = parseMagnet(link);
  if (!parsed.ok) throw new UsageFailure(`bad magnet link (${parsed.error.code}): ${parsed.error.message}`);
  return parsed.magnet;
}

/**
 * The bytes of a `.torrent` holding `info` exactly as given (so its SHA-1, the info hash, is kept),
 * with `announce` when there is a tracker: `d8:announce<url>4:info<info>e`, keys in sorted order.
 */
export function torrentBytes(info: Uint8Array, announceUrl: string | undefined): Uint8Array {
  const parts: Uint8Array[] = [utf8.encode('d')];
  if (announceUrl !== undefined)
    parts.push(utf8.encode('8:announce'), encodeBencode(utf8.encode(announceUrl)));
  parts.push(utf8.encode('4:info'), info, utf8.encode('e'));
  return concatBytes(parts);
}

export interface MagnetTorrentOptions {
  readonly magnet: Magnet;
  /** Peers given on the command line (`--connect`). */
  readonly connect: readonly HostPort[];
  readonly giveUpAfterMs: number;
  /** Our listen port, for the tracker announce (0: not known yet). */
  readonly port: number;
  readonly reporter: Reporter;
  readonly name: string;
}

export interface MagnetTorrent {
  readonly bytes: Uint8Array;
  readonly metainfo: Metainfo;
}

/** Fetches the metadata (bounded by `giveUpAfterMs`) and builds the torrent around it. */
export async function torrentFromMagnet(options: MagnetTorrentOptions): Promise<MagnetTorrent> {
  const { magnet, reporter, name } = options;
  const peerId = makePeerId(name, new Random(randomInt(0, 2 ** 32)));
  const direct = uniquePeers([...options.connect, ...magnet.peers]);
  const peers = direct.length > 0 ? direct : await peersFromTrackers(options, peerId);
  if (peers.length === 0) {
    throw new RunFailure(
      `no peer to fetch the metadata of ${toHex(magnet.infoHash)} from: give --connect HOST:PORT, or a magnet link with a tracker (tr=) or peers (x.pe=)`,
    );
  }
  reporter.event({ event: 'metadata-fetch', peers: peers.length });
  reporter.info(
    `${name}: fetching metadata (BEP 9) from ${peers.length} peer${peers.length === 1 ? '' : 's'}, giving up after ${Math.round(options.giveUpAfterMs / 1000)} s`,
  );
  const result = await fetchMetadata({
    infoHash: magnet.infoHash,
    peerId,
    peers,
    sha1,
    totalTimeoutMs: options.giveUpAfterMs,
    onFailure: (failure) => reportFailure(reporter, name, failure),
  });
  if (!result.ok) throw new RunFailure(`cannot get the metadata: ${result.error.message}`);
  const announceUrl = magnet.trackers.find((url) => /^https?:/i.test(url));
  const bytes = torrentBytes(result.info, announceUrl);
  const parsed = parseTorrent(bytes, sha1);
  if (!parsed.ok)
    throw new RunFailure(`the metadata is not a torrent we can download: ${parsed.error.message}`);
  if (!bytesEqual(parsed.metainfo.infoHash, magnet.infoHash))
    throw new Error('the rebuilt torrent changed the info hash'); // our bug: the info bytes are kept exactly
  reporter.event({ event: 'metadata', from: result.peer, bytes: result.info.length });
  reporter.info(
    `${name}: got the metadata of ${parsed.metainfo.name} (${result.info.length} bytes) from ${result.peer}`,
  );
  return { bytes, metainfo: parsed.metainfo };
}

/** What a command that takes a magnet link passes on for the fetch. */
export interface MagnetFetchOptions {
  readonly connect: readonly HostPort[];
  readonly giveUpAfterMs: number;
  readonly port: number;
  readonly output: OutputMode;
}

/**
 * A magnet link's torrent, fetched (as `name` on the terminal), and the peers to trade with: the
 * --connect ones and the link's own (`x.pe`).
 */
export async function fetchMagnet(
  link: string,
  name: string,
  options: MagnetFetchOptions,
): Promise<{ torrent: MagnetTorrent; connect: HostPort[] }> {
  const magnet = readMagnet(link);
  const reporter = new Reporter(options.output, name);
  const torrent = await torrentFromMagnet({ ...options, magnet, reporter, name });
  reporter.flush();
  return { torrent, connect: [...options.connect, ...magnet.peers] };
}

/** Saves the torrent as `DIR/NAME.torrent` (the folder made if missing) and returns its path. */
export async function saveTorrent(torrent: MagnetTorrent, dir: string, flag: string): Promise<string> {
  await prepareFolder(dir, flag);
  const fileName = `${torrent.metainfo.name}.torrent`;
  await placeFile(nodeFs, dir, fileName, torrent.bytes, true);
  return join(dir, fileName);
}

function reportFailure(reporter: Reporter, name: string, failure: PeerFailure): void {
  reporter.event({
    event: 'metadata-peer-failed',
    peer: failure.peer,
    code: failure.code,
    message: failure.message,
  });
  reporter.info(`${name}: metadata from ${failure.peer} failed (${failure.code}): ${failure.message}`);
}

/** One announce to each HTTP tracker of the link (then `stopped`, so we leave no stale entry). */
async function peersFromTrackers(options: MagnetTorrentOptions, peerId: Uint8Array): Promise<HostPort[]> {
  const { magnet, reporter, name } = options;
  const trackers = magnet.trackers.filter((url) => /^https?:/i.test(url));
  if (trackers.length === 0) return [];
  reporter.info(`${name}: asking ${trackers.length} tracker${trackers.length === 1 ? '' : 's'} for peers`);
  const request = {
    infoHash: magnet.infoHash,
    peerId,
    port: options.port === 0 ? DEFAULT_ANNOUNCE_PORT : options.port,
    uploaded: 0,
    downloaded: 0,
    // Unknown until the metadata is here; anything but 0 says we are not a seeder.
    left: 1,
  };
  const answers = await Promise.all(
    trackers.map(async (announceUrl) => {
      const outcome = await announce(
        { ...request, announceUrl, event: 'started', numwant: TRACKER_NUMWANT },
        { timeoutMs: TRACKER_TIMEOUT_MS },
      );
      if (!outcome.ok) {
        reporter.info(`${name}: tracker ${announceUrl} failed (${outcome.error})`);
        return [];
      }
      await announce({ ...request, announceUrl, event: 'stopped' }, { timeoutMs: TRACKER_TIMEOUT_MS });
      return outcome.response.peers;
    }),
  );
  const peers = uniquePeers(answers.flat());
  reporter.info(
    `${name}: the trackers named ${peers.length} peer${peers.length === 1 ? '' : 's'}: ${peers.slice(0, 5).map(formatPeer).join(', ')}${peers.length > 5 ? ', ...' : ''}`,
  );
  return peers;
}
