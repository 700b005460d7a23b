/**
 * Command-line parsing shared by the `swarm` commands: usage texts and strict value parsers that
 * turn bad input into a `UsageFailure` (one clear line, exit code 2).
 */

export class UsageFailure extends Error {
  override readonly name = 'UsageFailure';

  /** `hint` replaces the command's general "run … --help" line (a subcommand names its own help). */
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export const MAIN_USAGE = `usage: swarm <command> [options]

commands:
  seed FILE            share a file with defaults: prints its magnet link and .torrent path
  get TORRENT [-o P]   download a file from its .torrent or magnet link, write it to P and exit
  owner                seed a file, with every option (chunk size, shares, tracker interval)
  peer                 download from an owner (or any BitTorrent seeder) and trade with neighbours

  --version            print the version
  --debug              (with any command) a stack trace with an internal error

Run "swarm <command> --help" for the options of each.`;

export const SEED_USAGE = `usage: swarm seed FILE [--port P] [--host H] [--json|--quiet]

Shares FILE as its owner with the defaults of "swarm owner": writes FILE.torrent, keeps the chunks in
FILE.chunks, serves peers and the swarm's tracker on port P (default 6881), and prints the magnet
link and the .torrent's path. Runs until Ctrl-C. "swarm owner --help" lists the other options.`;

export const GET_USAGE = `usage: swarm get TORRENT|MAGNET [-o PATH] [--connect HOST:PORT]... [--dir D] [--port P] [--json|--quiet]

Downloads the file a .torrent describes from its tracker's swarm and from the --connect peers,
verifies it, writes it to PATH (default: the torrent's file name, here) and exits. PATH must not
exist yet. The chunk files stay in the work folder D (default PATH.parts), so a second run resumes.
Given a magnet link ('magnet:?xt=urn:btih:…', quoted for the shell), it first fetches the torrent's
metadata (BEP 9) from the --connect peers, else the link's x.pe peers, else the peers its trackers
(tr) name, checks it against the info hash and saves it as D/NAME.torrent; then it goes on as above.
  -o, --output PATH     where to write the file (never overwritten)
  --connect H:P         also dial this seeder or peer (repeatable)
  --dir D               the work folder for chunk files (default PATH.parts)
  --give-up-after S     exit 1 after S seconds without a new chunk, or without the metadata (default 60)`;

export const OWNER_USAGE = `usage: swarm owner --file F [--port P] [--host H] [--torrent T] [--dir D]
                   [--chunk-size BYTES] [--peers N] [--advertise shares|all] [--json|--quiet]

  --file F          the file to share (at least 5 bytes)
  --port P          TCP port for peers and the HTTP tracker (default 6881; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1)
  --torrent T       where to write the .torrent (default F.torrent)
  --dir D           where to keep the chunk files (default F.chunks)
  --chunk-size N    chunk size in bytes (default 102400, smaller for small files)
  --peers N         expected peers: each gets a share of about chunks/N (default 5)
  --advertise M     "shares" hands each peer a distinct share first (default); "all" offers everything
  --connect H:P     also dial this peer (repeatable)
  --announce-interval S  tracker re-announce interval in seconds (default 2)
  --log             on a terminal too, every activity line instead of the status line
  --json            one JSON object per line; --quiet: errors only`;

export const PEER_USAGE = `usage: swarm peer --owner HOST:PORT [--port P] [--download-from HOST:PORT] [--dir D] [--id N]
       swarm peer --torrent T|MAGNET [--connect HOST:PORT]... [--port P] [--dir D] [--id N]
       swarm peer <ownerPort> <ownPort> <downloadNeighbourPort>

  --owner H:P          the owner (its tracker hands out the torrent and ring neighbours)
  --torrent T          read the .torrent from file T (or fetch it, BEP 9, when T is a magnet link:
                       'magnet:?xt=urn:btih:…', saved as D/NAME.torrent) and download from any BitTorrent
                       seeder or peer (libtorrent, aria2, Transmission, swarm): those given with
                       --connect and those the torrent's tracker names, if it has one (a tracker
                       that fails is ignored). Every connection is a download source (mesh,
                       overlapped). --torrent and --owner are exclusive.
  --connect H:P        with --torrent: dial this seeder or peer (repeatable)
  --port P             port to serve chunks on (default 0: any free port)
  --host H             address to listen on (default 127.0.0.1)
  --download-from H:P  ring: the download neighbour (default: assigned by the owner in join order)
  --dir D              where to keep chunks (default Peer<id>Dir)
  --id N               this peer's id (default: its port, or a random number)
  --topology T         ring (default with --owner), mesh (default with --torrent), full or star;
                       with --torrent only mesh or full
  --degree K           mesh: how many neighbours from the tracker (default 4)
  --picker P           random (default) or rarest-first
  --phases M           two-phase (default with --owner) or overlapped (default with --torrent)
  --exit-when-done     exit once the file is complete and verified (default: keep seeding)
  --give-up-after S    with --exit-when-done: exit 1 after S seconds without a new chunk (default
                       60); without it, a stalled peer says what it waits for every 10 s. With
                       a magnet link it also bounds the metadata fetch
  --retries N          how often to retry an unreachable owner (default 6)
  --start-on-signal    listen at once, but dial and announce only once the process gets SIGUSR2,
                       so a script can start many peers and let them begin together (the lab does)
  --no-pex             no peer exchange (BEP 11 ut_pex): neither tell peers whom we are connected
                       to nor hear whom they are
  --log                on a terminal too, every activity line instead of the status line
  --json               one JSON object per line; --quiet: errors only`;

/** `--NAME VALUE` flags for `node:util` parseArgs, one per name. */
export function stringFlags<const K extends string>(...names: K[]): { [P in K]: { type: 'string' } } {
  return Object.fromEntries(names.map((name) => [name, { type: 'string' }])) as {
    [P in K]: { type: 'string' };
  };
}

/** `--help` / `-h`, which every command takes (for `node:util` parseArgs). */
export const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

/** `--json` (one JSON object per line, or one for the run) and `--quiet` (errors only). */
export const OUTPUT_FLAGS = { json: { type: 'boolean' }, quiet: { type: 'boolean' } } as const;

/** HOST:PORT, or a bare port meaning 127.0.0.1. */
export function parseAddress(text: string, what: string): { host: string; port: number } {
  const match = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageFailure(`${what}: "${text}" is not HOST:PORT with a port from 1 to 65535`);
  }
  return { host: match[1] ?? '127.0.0.1', port };
}

export function parsePort(text: string | undefined, what: string, fallback: number): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port > 65535)
    throw new UsageFailure(`${what}: "${text}" is not a port from 0 to 65535`);
  return port;
}

export function parseCount(
  text: string | undefined,
  what: string,
  fallback: number,
  min = 1,
  max = 1_000_000,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageFailure(`${what}: "${text}" is not a whole number from ${min} to ${max}`);
  }
  return value;
}

export function parseChoice<T extends string>(
  text: string | undefined,
  what: string,
  choices: readonly T[],
  fallback: T,
): T {
  if (text === undefined) return fallback;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageFailure(`${what}: "${text}" is not one of ${choices.join(', ')}`);
  }
  return text as T;
}
