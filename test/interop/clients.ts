/**
 * Real BitTorrent clients for the interop tests, on 127.0.0.1 only: libtorrent (Debian's
 * python3-libtorrent through the driver in `bench/libtorrent-driver.ts`), aria2c and transmission-daemon. Each is
 * started with DHT, local peer discovery, UPnP/NAT-PMP, PEX and uTP off, bounded in time, and
 * registered so the test can kill it in `finally`.
 *
 * A missing client is a failure, never a skip: `requireClient` throws with the package to install
 * (`.ci/run` installs all three).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../bench/lib.ts';
import { LIBTORRENT_DRIVER, probeLibtorrent, SYSTEM_PYTHON } from '../../bench/libtorrent-driver.ts';

export type Client = 'libtorrent' | 'aria2' | 'transmission';

const PACKAGES: Record<Client, string> = {
  libtorrent: 'python3-libtorrent',
  aria2: 'aria2',
  transmission: 'transmission-daemon',
};

/** The version of an installed client, or a thrown Error saying what to install. */
export function requireClient(client: Client): string {
  const install = `run "apt-get install -y --no-install-recommends ${PACKAGES[client]}" as root (.ci/run does)`;
  if (client === 'libtorrent') {
    const probe = probeLibtorrent();
    if (!probe.ok) throw new Error(`libtorrent is not installed (${probe.reason}): ${install}`);
    return probe.version;
  }
  const probe = spawnSync(client === 'aria2' ? 'aria2c' : 'transmission-daemon', ['--version'], {
    encoding: 'utf8',
  });
  const output = `${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim();
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `${client} is not installed (${probe.error?.message ?? output.split('\n')[0] ?? 'failed'}): ${install}`,
    );
  }
  return output.split('\n')[0] ?? '';
}

/** Rejects with `what` and some context when `promise` takes longer than `ms`. */
export async function within<T>(
  ms: number,
  what: string,
  promise: Promise<T>,
  context = (): string => '',
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms\n${context()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export type JsonLine = Record<string, unknown>;

/** A client process whose stdout lines are kept (parsed as JSON when they are). */
export class ClientProcess {
  readonly lines: string[] = [];
  readonly events: JsonLine[] = [];
  readonly exited: Promise<number | null>;
  private readonly waiters: { test: (line: JsonLine) => boolean; resolve: (line: JsonLine) => void }[] = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const onText = (text: string): void => {
      this.lines.push(text);
      if (this.lines.length > 400) this.lines.splice(0, 100);
      let event: JsonLine;
      try {
        event = JSON.parse(text) as JsonLine;
      } catch {
        return;
      }
      this.events.push(event);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const waiter = this.waiters[i];
        if (waiter?.test(event) === true) {
          this.waiters.splice(i, 1);
          waiter.resolve(event);
        }
      }
    };
    if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', onText);
    if (child.stderr !== null) createInterface({ input: child.stderr }).on('line', onText);
  }

  /** The first JSON line for which `test` holds; rejects if the process exits first. */
  waitFor(test: (line: JsonLine) => boolean): Promise<JsonLine> {
    const seen = this.events.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ test, resolve });
      void this.exited.then((code) =>
        reject(new Error(`${this.name} exited (${code}) first\n${this.tail()}`)),
      );
    });
  }

  tail(count = 15): string {
    return `--- ${this.name}, last lines:\n${this.lines.slice(-count).join('\n')}`;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Every client a test started, stopped together in `finally`. */
export class Clients {
  private readonly started: ClientProcess[] = [];

  spawn(name: string, command: string, args: readonly string[], cwd?: string): ClientProcess {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cwd === undefined ? {} : { cwd }),
    });
    const client = new ClientProcess(name, child);
    this.started.push(client);
    return client;
  }

  /** The last lines of every client, for a failure message. */
  tails(): string {
    return this.started.map((client) => client.tail()).join('\n');
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.started.map((client) => client.stop()));
  }
}

// ---- libtorrent ----------------------------------------------------------------------------------

export interface LibtorrentOptions {
  readonly name: string;
  /** A .torrent file, or `magnet` instead. */
  readonly torrent?: string;
  readonly magnet?: string;
  readonly save: string;
  readonly connect?: readonly number[];
  /** The file is in `save` already: check it and serve it. */
  readonly seed?: boolean;
  /** First write a v1 torrent of this file to `torrent`, with these pieces (a power of two). */
  readonly makeTorrentOf?: string;
  readonly pieceSize?: number;
  readonly maxSeconds?: number;
  /** Peer exchange (ut_pex) on, and the connected peers named in each status line. */
  readonly pex?: boolean;
  /** Upload cap in bytes per second. */
  readonly uploadLimitBytesPerSecond?: number;
}

/** Starts the libtorrent driver; resolves once its session listens. */
export async function startLibtorrent(
  clients: Clients,
  options: LibtorrentOptions,
): Promise<{ client: ClientProcess; port: number }> {
  mkdirSync(options.save, { recursive: true });
  const args = [
    '-c',
    LIBTORRENT_DRIVER,
    '--save',
    options.save,
    '--max-seconds',
    String(options.maxSeconds ?? 50),
  ];
  if (options.torrent !== undefined) args.push('--torrent', options.torrent);
  if (options.magnet !== undefined) args.push('--magnet', options.magnet);
  for (const port of options.connect ?? []) args.push('--connect', `127.0.0.1:${port}`);
  if (options.seed === true) args.push('--seed');
  if (options.pex === true) args.push('--pex');
  if (options.uploadLimitBytesPerSecond !== undefined) {
    args.push('--upload-limit', String(options.uploadLimitBytesPerSecond));
  }
  if (options.makeTorrentOf !== undefined) {
    args.push('--make-torrent', options.makeTorrentOf, '--piece-size', String(options.pieceSize ?? 262144));
  }
  const client = clients.spawn(options.name, SYSTEM_PYTHON, args);
  const listening = await within(
    15_000,
    `${options.name} listening`,
    client.waitFor((line) => line.event === 'listening'),
    () => client.tail(),
  );
  return { client, port: Number(listening.port) };
}

// ---- aria2 ---------------------------------------------------------------------------------------

export interface Aria2Options {
  readonly name: string;
  /** A .torrent file or a magnet link. */
  readonly target: string;
  readonly dir: string;
  readonly port: number;
  /** Seed the file already in `dir` (checked first) instead of downloading it. */
  readonly seed?: boolean;
}

/** Starts aria2c on `port` (it cannot report a port it picked); it exits by itself when done. */
export function startAria2(clients: Clients, options: Aria2Options): ClientProcess {
  mkdirSync(options.dir, { recursive: true });
  const args = [
    `--dir=${options.dir}`,
    `--listen-port=${options.port}`,
    '--interface=127.0.0.1',
    '--disable-ipv6=true',
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--file-allocation=none',
    '--summary-interval=0',
    '--console-log-level=notice',
    '--bt-save-metadata=false',
    '--bt-stop-timeout=45',
    `--log=${options.dir}.aria2.log`,
    '--log-level=info',
    ...(options.seed === true ? ['--check-integrity=true', '--seed-ratio=0.0'] : ['--seed-time=0']),
    options.target,
  ];
  return clients.spawn(options.name, 'aria2c', args);
}

// ---- Transmission --------------------------------------------------------------------------------

/** A transmission-daemon in the foreground, driven over its JSON RPC. */
export class Transmission {
  private sessionId = '';

  private constructor(
    readonly client: ClientProcess,
    readonly rpcPort: number,
    readonly peerPort: number,
  ) {}

  static async start(
    clients: Clients,
    name: string,
    configDir: string,
    downloadDir: string,
  ): Promise<Transmission> {
    mkdirSync(configDir, { recursive: true });
    mkdirSync(downloadDir, { recursive: true });
    writeFileSync(
      join(configDir, 'settings.json'),
      JSON.stringify({
        'dht-enabled': false,
        'lpd-enabled': false,
        'pex-enabled': false,
        'utp-enabled': false,
        'port-forwarding-enabled': false,
        'bind-address-ipv4': '127.0.0.1',
        'bind-address-ipv6': '::1',
        'rpc-bind-address': '127.0.0.1',
        'rpc-whitelist': '127.0.0.1',
        'rpc-host-whitelist-enabled': false,
        'rpc-authentication-required': false,
        'ratio-limit-enabled': false,
        'speed-limit-up-enabled': false,
        'speed-limit-down-enabled': false,
        'peer-port-random-on-start': false,
        'start-added-torrents': true,
      }),
    );
    const rpcPort = await freePort();
    const peerPort = await freePort();
    // Foreground; config, RPC and peer ports; no DHT, LPD, uTP or port mapping; loopback only; no auth.
    const args = [
      ...['-f', '-g', configDir, '-p', String(rpcPort), '-P', String(peerPort)],
      ...['-O', '-Y', '--no-utp', '-M', '-i', '127.0.0.1', '-r', '127.0.0.1', '-T'],
      ...['-w', downloadDir, '--log-error'],
    ];
    const client = clients.spawn(name, 'transmission-daemon', args);
    const daemon = new Transmission(client, rpcPort, peerPort);
    await within(10_000, `${name} RPC`, daemon.untilReady(), () => client.tail());
    return daemon;
  }

  private async untilReady(): Promise<void> {
    for (;;) {
      try {
        await this.rpc('session-get', { fields: ['version'] });
        return;
      } catch {
        if (this.client.child.exitCode !== null)
          throw new Error(`transmission-daemon exited\n${this.client.tail()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** One RPC call; handles the X-Transmission-Session-Id handshake (HTTP 409). */
  async rpc(method: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await fetch(`http://127.0.0.1:${this.rpcPort}/transmission/rpc`, {
        method: 'POST',
        headers: { 'X-Transmission-Session-Id': this.sessionId, 'content-type': 'application/json' },
        body: JSON.stringify({ method, arguments: args }),
        signal: AbortSignal.timeout(5_000),
      });
      if (response.status === 409) {
        this.sessionId = response.headers.get('X-Transmission-Session-Id') ?? '';
        continue;
      }
      const body = (await response.json()) as { result: string; arguments: Record<string, unknown> };
      if (body.result !== 'success') throw new Error(`transmission ${method}: ${body.result}`);
      return body.arguments;
    }
    throw new Error(`transmission ${method}: no session id`);
  }

  /** Adds a torrent (read here, sent as metainfo); returns its id. */
  async add(torrentPath: string, downloadDir: string): Promise<number> {
    const metainfo = (await readFile(torrentPath)).toString('base64');
    const result = await this.rpc('torrent-add', { metainfo, 'download-dir': downloadDir, paused: false });
    const added = (result['torrent-added'] ?? result['torrent-duplicate']) as { id: number } | undefined;
    if (added === undefined) throw new Error(`transmission did not add ${torrentPath}`);
    return added.id;
  }

  async status(
    id: number,
  ): Promise<{ percentDone: number; error: number; errorString: string; status: number }> {
    const result = await this.rpc('torrent-get', {
      ids: [id],
      fields: ['percentDone', 'error', 'errorString', 'status'],
    });
    const torrents = result.torrents as {
      percentDone: number;
      error: number;
      errorString: string;
      status: number;
    }[];
    const torrent = torrents[0];
    if (torrent === undefined) throw new Error(`transmission has no torrent ${id}`);
    return torrent;
  }

  /** Resolves once torrent `id` is complete and checked (percentDone 1, not checking). */
  async untilDone(id: number): Promise<void> {
    for (;;) {
      const status = await this.status(id);
      // status: 1/2 queued for checking / checking, 4 downloading, 6 seeding.
      if (status.percentDone >= 1 && status.status !== 1 && status.status !== 2) return;
      if (status.error === 3) throw new Error(`transmission: ${status.errorString}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
