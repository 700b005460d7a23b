/**
 * The `swarm` subcommands: `owner` and `seed` share a file; `peer` and `get` download it and
 * trade. `cli.ts` loads this module only when there is work to do, so `--help` starts fast.
 * Exit codes: 0 done, 1 failure (unreachable owner, disk), 2 bad usage.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { HostPort } from '../transport/tracker-client.ts';
import {
  GET_USAGE,
  HELP_FLAG,
  OUTPUT_FLAGS,
  OWNER_USAGE,
  PEER_USAGE,
  parseAddress,
  parseChoice,
  parseCount,
  parsePort,
  SEED_USAGE,
  stringFlags,
  UsageFailure,
} from './args.ts';
import { runCommand } from './command.ts';
import { runGet } from './get.ts';
import { fetchMagnet, isMagnetLink, saveTorrent } from './magnet.ts';
import type { OutputMode } from './output.ts';
import { runOwner } from './owner.ts';
import { type PeerSource, runPeer } from './peer.ts';

const common = {
  ...stringFlags('host', 'port', 'dir', 'clock-origin'),
  log: { type: 'boolean' },
  ...OUTPUT_FLAGS,
  ...HELP_FLAG,
} as const;

/** `--connect HOST:PORT`, repeatable. */
const CONNECT_FLAG = { connect: { type: 'string', multiple: true } } as const;

const ownerFlags = {
  ...common,
  ...CONNECT_FLAG,
  ...stringFlags('file', 'torrent', 'chunk-size', 'peers', 'advertise', 'announce-interval'),
} as const;

const peerFlags = {
  ...common,
  ...CONNECT_FLAG,
  ...stringFlags('owner', 'torrent', 'download-from', 'id', 'topology', 'degree', 'picker', 'phases'),
  ...stringFlags('give-up-after', 'retries'),
  'exit-when-done': { type: 'boolean' },
  'start-on-signal': { type: 'boolean' },
  'no-pex': { type: 'boolean' },
} as const;

const getFlags = {
  ...common,
  ...CONNECT_FLAG,
  output: { type: 'string', short: 'o' },
  ...stringFlags('give-up-after'),
} as const;

function outputMode(values: { json?: boolean | undefined; quiet?: boolean | undefined }): OutputMode {
  return values.json === true ? 'json' : values.quiet === true ? 'quiet' : 'human';
}

/** `npm start` hands every process the same clock origin (epoch ms). */
function parseClockOrigin(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseCount(text, '--clock-origin', 0, 0, Number.MAX_SAFE_INTEGER);
}

function help(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

/** `swarm owner --file F …`, and `swarm seed F …` (the same with the file as its argument). */
async function owner(args: string[], seed: boolean): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: seed, options: ownerFlags });
  if (values.help === true) return help(seed ? SEED_USAGE : OWNER_USAGE);
  if (seed && (positionals.length !== 1 || values.file !== undefined))
    throw new UsageFailure('seed: name one file: "swarm seed FILE [--port P]"');
  const file = seed ? (positionals[0] as string) : values.file;
  if (file === undefined) throw new UsageFailure('owner: --file is required');
  return await runOwner({
    file,
    host: values.host ?? '127.0.0.1',
    port: parsePort(values.port, '--port', 6881),
    torrentPath: values.torrent,
    dir: values.dir,
    chunkSizeBytes:
      values['chunk-size'] === undefined ? undefined : parseCount(values['chunk-size'], '--chunk-size', 0),
    expectedPeers: parseCount(values.peers, '--peers', 5, 1, 100_000),
    advertising: parseChoice(values.advertise, '--advertise', ['shares', 'all'] as const, 'shares'),
    connect: (values.connect ?? []).map((text) => parseAddress(text, '--connect')),
    announceIntervalSeconds: parseCount(values['announce-interval'], '--announce-interval', 2, 1, 3600),
    output: outputMode(values),
    clockOriginMs: parseClockOrigin(values['clock-origin']),
    log: values.log === true,
  });
}

/** Where the peer's torrent and first contacts come from, from --owner / --torrent / positionals. */
function peerSource(
  values: {
    owner?: string | undefined;
    torrent?: string | undefined;
    connect?: string[] | undefined;
    topology?: string | undefined;
  },
  positionals: string[],
  port: number,
  downloadFrom: HostPort | undefined,
): { source: PeerSource; port: number; downloadFrom: HostPort | undefined } {
  let owner = values.owner === undefined ? undefined : parseAddress(values.owner, '--owner');
  if (positionals.length > 0) {
    // The original form: owner port, own port, download neighbour port.
    if (positionals.length !== 3 || owner !== undefined) {
      throw new UsageFailure(
        'peer: the positional form is "swarm peer <ownerPort> <ownPort> <downloadNeighbourPort>"',
      );
    }
    owner = parseAddress(positionals[0] as string, 'owner port');
    port = parsePort(positionals[1], 'own port', 0);
    downloadFrom = parseAddress(positionals[2] as string, 'download neighbour port');
  }
  const connect = (values.connect ?? []).map((text) => parseAddress(text, '--connect'));
  if (values.torrent !== undefined) {
    // A foreign swarm: the torrent from a file, seeders named with --connect or by its tracker.
    if (owner !== undefined)
      throw new UsageFailure('peer: --torrent and --owner are exclusive (the owner serves its own torrent)');
    if (downloadFrom !== undefined)
      throw new UsageFailure('peer: --download-from needs --owner (ring neighbours); use --connect');
    if (values.topology === 'ring' || values.topology === 'star')
      throw new UsageFailure(
        `peer: --topology ${values.topology} needs --owner; --torrent trades mesh or full`,
      );
    return { source: { kind: 'torrent', path: values.torrent, connect }, port, downloadFrom };
  }
  if (owner === undefined) throw new UsageFailure('peer: --owner HOST:PORT (or --torrent FILE) is required');
  if (connect.length > 0) throw new UsageFailure('peer: --connect goes with --torrent');
  return { source: { kind: 'owner', owner }, port, downloadFrom };
}

async function peer(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: peerFlags });
  if (values.help === true) return help(PEER_USAGE);
  const given =
    values['download-from'] === undefined
      ? undefined
      : parseAddress(values['download-from'], '--download-from');
  const { source, port, downloadFrom } = peerSource(
    values,
    positionals,
    parsePort(values.port, '--port', 0),
    given,
  );
  const id = values.id ?? (port !== 0 ? String(port) : String(randomInt(1000, 10_000)));
  if (!/^[A-Za-z0-9_-]{1,12}$/.test(id))
    throw new UsageFailure(`--id: "${id}" must be 1 to 12 letters or digits`);
  const foreign = source.kind === 'torrent';
  const dir = values.dir ?? `Peer${id}Dir`;
  const output = outputMode(values);
  return await runPeer({
    source: await resolveMagnet(source, {
      dir,
      port,
      output,
      giveUpAfterMs: parseCount(values['give-up-after'], '--give-up-after', 60, 1, 86_400) * 1000,
    }),
    host: values.host ?? '127.0.0.1',
    port,
    downloadFrom,
    id,
    dir,
    topology: parseChoice(
      values.topology,
      '--topology',
      ['ring', 'mesh', 'full', 'star'] as const,
      foreign ? 'mesh' : 'ring',
    ),
    degree: parseCount(values.degree, '--degree', 4, 1, 100),
    picker: parseChoice(values.picker, '--picker', ['random', 'rarest-first'] as const, 'random'),
    phases: parseChoice(
      values.phases,
      '--phases',
      ['two-phase', 'overlapped'] as const,
      foreign ? 'overlapped' : 'two-phase',
    ),
    exitWhenDone: values['exit-when-done'] === true,
    giveUpAfterMs: parseCount(values['give-up-after'], '--give-up-after', 60, 1, 86_400) * 1000,
    retries: parseCount(values.retries, '--retries', 6, 0, 100),
    output,
    clockOriginMs: parseClockOrigin(values['clock-origin']),
    startOnSignal: values['start-on-signal'] === true,
    log: values.log === true,
    peerExchange: values['no-pex'] !== true,
  });
}

/**
 * `--torrent MAGNET`: the metadata fetched from the --connect peers, the link's x.pe peers or its
 * trackers (within --give-up-after), saved as DIR/NAME.torrent; the link's peers join --connect.
 */
async function resolveMagnet(
  source: PeerSource,
  options: { dir: string; port: number; output: OutputMode; giveUpAfterMs: number },
): Promise<PeerSource> {
  if (source.kind !== 'torrent' || !isMagnetLink(source.path)) return source;
  const { torrent, connect } = await fetchMagnet(source.path, 'magnet', {
    ...options,
    connect: source.connect,
  });
  const path = await saveTorrent(torrent, options.dir, '--dir');
  return { kind: 'torrent', path, connect };
}

/** `swarm get TORRENT [-o PATH] [--connect HOST:PORT]…`: download one file and exit. */
async function get(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: getFlags });
  if (values.help === true) return help(GET_USAGE);
  if (positionals.length !== 1) throw new UsageFailure('get: name one .torrent file or magnet link');
  return await runGet({
    what: positionals[0] as string,
    outputPath: values.output,
    dir: values.dir,
    connect: (values.connect ?? []).map((text) => parseAddress(text, '--connect')),
    host: values.host ?? '127.0.0.1',
    port: parsePort(values.port, '--port', 0),
    giveUpAfterMs: parseCount(values['give-up-after'], '--give-up-after', 60, 1, 86_400) * 1000,
    output: outputMode(values),
  });
}

const SUBCOMMANDS: Readonly<Record<string, (args: string[]) => Promise<number>>> = {
  owner: (args) => owner(args, false),
  seed: (args) => owner(args, true),
  peer,
  get,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const run = command === undefined ? undefined : SUBCOMMANDS[command];
  if (run === undefined) {
    throw new UsageFailure(command === undefined ? 'a command is required' : `unknown command "${command}"`);
  }
  try {
    return await run(rest);
  } catch (error) {
    if (error instanceof UsageFailure || isParseArgsError(error)) {
      // The usage hint names the subcommand's help.
      throw new UsageFailure((error as Error).message, `run "swarm ${command} --help" for usage`);
    }
    throw error;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

export function runSwarm(): void {
  runCommand('swarm', main);
}
