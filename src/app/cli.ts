/**
 * The `swarm` command: `swarm owner …` seeds a file; `swarm peer …` downloads it and trades.
 * Exit codes: 0 done, 1 failure (unreachable owner, disk), 2 bad usage.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  MAIN_USAGE,
  OWNER_USAGE,
  PEER_USAGE,
  parseAddress,
  parseChoice,
  parseCount,
  parsePort,
  UsageFailure,
} from './args.ts';
import { runCommand } from './command.ts';
import { runOwner } from './owner.ts';
import { type PeerSource, runPeer } from './peer.ts';

const common = {
  host: { type: 'string' },
  port: { type: 'string' },
  dir: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'clock-origin': { type: 'string' },
} as const;

/** `npm start` hands every process the same clock origin (epoch ms). */
function parseClockOrigin(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseCount(text, '--clock-origin', 0, 0, Number.MAX_SAFE_INTEGER);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'owner') {
      const { values } = parseArgs({
        args: rest,
        options: {
          ...common,
          file: { type: 'string' },
          torrent: { type: 'string' },
          'chunk-size': { type: 'string' },
          peers: { type: 'string' },
          advertise: { type: 'string' },
          connect: { type: 'string', multiple: true },
          'announce-interval': { type: 'string' },
        },
      });
      if (values.help === true) return help(OWNER_USAGE);
      if (values.file === undefined) throw new UsageFailure('owner: --file is required');
      return await runOwner({
        file: values.file,
        host: values.host ?? '127.0.0.1',
        port: parsePort(values.port, '--port', 6881),
        torrentPath: values.torrent,
        dir: values.dir,
        chunkSizeBytes:
          values['chunk-size'] === undefined
            ? undefined
            : parseCount(values['chunk-size'], '--chunk-size', 0),
        expectedPeers: parseCount(values.peers, '--peers', 5, 1, 100_000),
        advertising: parseChoice(values.advertise, '--advertise', ['shares', 'all'] as const, 'shares'),
        connect: (values.connect ?? []).map((text) => parseAddress(text, '--connect')),
        announceIntervalSeconds: parseCount(values['announce-interval'], '--announce-interval', 2, 1, 3600),
        output: values.json === true ? 'json' : values.quiet === true ? 'quiet' : 'human',
        clockOriginMs: parseClockOrigin(values['clock-origin']),
      });
    }
    if (command === 'peer') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          ...common,
          owner: { type: 'string' },
          torrent: { type: 'string' },
          connect: { type: 'string', multiple: true },
          'download-from': { type: 'string' },
          id: { type: 'string' },
          topology: { type: 'string' },
          degree: { type: 'string' },
          picker: { type: 'string' },
          phases: { type: 'string' },
          'exit-when-done': { type: 'boolean' },
          'give-up-after': { type: 'string' },
          retries: { type: 'string' },
        },
      });
      if (values.help === true) return help(PEER_USAGE);
      let owner = values.owner === undefined ? undefined : parseAddress(values.owner, '--owner');
      let port = parsePort(values.port, '--port', 0);
      let downloadFrom =
        values['download-from'] === undefined
          ? undefined
          : parseAddress(values['download-from'], '--download-from');
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
      const torrentPath = values.torrent;
      const connect = (values.connect ?? []).map((text) => parseAddress(text, '--connect'));
      let source: PeerSource;
      if (torrentPath !== undefined) {
        // A foreign swarm: the torrent from a file, seeders named with --connect or by its tracker.
        if (owner !== undefined)
          throw new UsageFailure(
            'peer: --torrent and --owner are exclusive (the owner serves its own torrent)',
          );
        if (downloadFrom !== undefined)
          throw new UsageFailure('peer: --download-from needs --owner (ring neighbours); use --connect');
        if (values.topology === 'ring' || values.topology === 'star')
          throw new UsageFailure(
            `peer: --topology ${values.topology} needs --owner; --torrent trades mesh or full`,
          );
        source = { kind: 'torrent', path: torrentPath, connect };
      } else {
        if (owner === undefined)
          throw new UsageFailure('peer: --owner HOST:PORT (or --torrent FILE) is required');
        if (connect.length > 0) throw new UsageFailure('peer: --connect goes with --torrent');
        source = { kind: 'owner', owner };
      }
      const id =
        values.id === undefined ? (port !== 0 ? String(port) : String(randomInt(1000, 10_000))) : values.id;
      if (!/^[A-Za-z0-9_-]{1,12}$/.test(id))
        throw new UsageFailure(`--id: "${id}" must be 1 to 12 letters or digits`);
      const foreign = source.kind === 'torrent';
      return await runPeer({
        source,
        host: values.host ?? '127.0.0.1',
        port,
        downloadFrom,
        id,
        dir: values.dir ?? `Peer${id}Dir`,
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
        output: values.json === true ? 'json' : values.quiet === true ? 'quiet' : 'human',
        clockOriginMs: parseClockOrigin(values['clock-origin']),
      });
    }
    if (command === '--help' || command === '-h' || command === 'help') return help(MAIN_USAGE);
    throw new UsageFailure(command === undefined ? 'a command is required' : `unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageFailure || isParseArgsError(error)) {
      // The usage hint names the subcommand's help.
      const sub = command === 'owner' || command === 'peer' ? `${command} ` : '';
      throw new UsageFailure((error as Error).message, `run "swarm ${sub}--help" for usage`);
    }
    throw error;
  }
}

function help(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

runCommand('swarm', main);
