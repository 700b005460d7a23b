/**
 * Helpers for the hostile-world tests on real sockets: in-process engines on a `SocketDriver` that
 * record what they do, raw TCP clients that observe when the other side closes, and waits that are
 * bounded in time (a deadline that fails the test, never a sleep that stands in for an event).
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ActivityEvent } from '../../src/engine/activity.ts';
import type { Bitfield } from '../../src/engine/bitfield.ts';
import { chunkLength } from '../../src/engine/chunking.ts';
import { Engine, type EngineLimits, type PhaseMode, type Topology } from '../../src/engine/engine.ts';
import { type Metainfo, parseTorrent } from '../../src/engine/metainfo.ts';
import { makePeerId } from '../../src/engine/peer-id.ts';
import { Random } from '../../src/engine/random.ts';
import { sha1 } from '../../src/platform/sha1.ts';
import { type BlockStorage, SocketDriver } from '../../src/transport/driver.ts';
import { parseSummary, SUMMARY_FILE_NAME } from '../../src/transport/summary-file.ts';
import { fetchTorrent } from '../../src/transport/tracker-client.ts';

/** Rejects with `what` unless `promise` settles within `ms`. The timer never keeps the process up. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The owner's torrent, fetched from its tracker port and parsed. */
export async function ownerMetainfo(port: number): Promise<Metainfo> {
  const fetched = await fetchTorrent(`127.0.0.1:${port}`);
  if (!fetched.ok) throw new Error(`cannot fetch the torrent: ${fetched.error}`);
  const parsed = parseTorrent(fetched.bytes, sha1);
  if (!parsed.ok) throw new Error(`bad torrent: ${parsed.error.message}`);
  return parsed.metainfo;
}

/** Chunks in memory: a `BlockStorage` for in-process nodes. */
export class MemoryDisk implements BlockStorage {
  readonly chunks = new Map<number, Uint8Array>();

  constructor(
    initial?: readonly Uint8Array[],
    /** Applied to every block served (a liar flips bytes here). */
    private readonly serve: (block: Uint8Array) => Uint8Array = (block) => block,
  ) {
    // Copies into plain Uint8Arrays: a Buffer's slice() is a view, and the liar flips bytes in place.
    for (const [index, bytes] of (initial ?? []).entries()) this.chunks.set(index, new Uint8Array(bytes));
  }

  async readBlock(index: number, begin: number, length: number): Promise<Uint8Array> {
    const chunk = this.chunks.get(index);
    if (chunk === undefined) throw new Error(`chunk ${index} is not held`);
    return this.serve(chunk.slice(begin, begin + length));
  }

  async writeChunk(index: number, bytes: Uint8Array): Promise<void> {
    this.chunks.set(index, bytes.slice());
  }

  /** The whole file, in chunk order (throws if a chunk is missing). */
  file(pieceCount: number): Buffer {
    return Buffer.concat(
      Array.from({ length: pieceCount }, (_, index) => {
        const chunk = this.chunks.get(index);
        if (chunk === undefined) throw new Error(`chunk ${index} missing`);
        return chunk;
      }),
    );
  }
}

export interface NodeOptions {
  readonly metainfo: Metainfo;
  readonly name: string;
  readonly seed: number;
  readonly storage: BlockStorage;
  readonly have?: Bitfield;
  readonly topology?: Topology;
  readonly phases?: PhaseMode;
  readonly limits?: Partial<EngineLimits>;
}

/** One engine on a `SocketDriver` in this process, with every activity event and storage error kept. */
export class InProcessNode {
  readonly engine: Engine;
  readonly driver: SocketDriver;
  readonly events: ActivityEvent[] = [];
  readonly storageErrors: { index: number; error: Error }[] = [];
  readonly completed: Promise<void>;
  private readonly waiters: { test: (event: ActivityEvent) => boolean; resolve: () => void }[] = [];

  constructor(options: NodeOptions) {
    const random = new Random(options.seed);
    const { metainfo } = options;
    this.engine = new Engine({
      role: 'peer',
      name: options.name,
      peerId: makePeerId(options.name, random),
      infoHash: metainfo.infoHash,
      pieceHashes: metainfo.pieceHashes,
      geometry: metainfo.geometry,
      sha1,
      random,
      ...(options.have === undefined ? {} : { have: options.have }),
      ...(options.topology === undefined ? {} : { topology: options.topology }),
      ...(options.phases === undefined ? {} : { phases: options.phases }),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    let resolveComplete: () => void = () => undefined;
    this.completed = new Promise((resolve) => {
      resolveComplete = resolve;
    });
    this.driver = new SocketDriver({
      engine: this.engine,
      storage: options.storage,
      host: '127.0.0.1',
      port: 0,
      onActivity: (event) => {
        this.events.push(event);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const waiter = this.waiters[i];
          if (waiter?.test(event) === true) {
            this.waiters.splice(i, 1);
            waiter.resolve();
          }
        }
      },
      onComplete: resolveComplete,
      onStorageError: (index, error) => this.storageErrors.push({ index, error }),
    });
  }

  /** Resolves at the first activity event (already seen or still to come) for which `test` holds. */
  waitFor(test: (event: ActivityEvent) => boolean): Promise<void> {
    if (this.events.some(test)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }

  count(kind: ActivityEvent['kind']): number {
    return this.events.filter((event) => event.kind === kind).length;
  }
}

/** A raw TCP client: what it received, and a promise that settles when the socket closes. */
export interface RawClient {
  readonly socket: Socket;
  readonly connected: Promise<void>;
  readonly closed: Promise<void>;
  received: number;
  /** Resolves once at least `bytes` bytes have arrived (rejects if the socket closes first). */
  receivedAtLeast(bytes: number): Promise<void>;
}

export function rawClient(port: number): RawClient {
  const socket = connect({ host: '127.0.0.1', port });
  const client: RawClient = {
    socket,
    connected: new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    closed: new Promise((resolve) => socket.once('close', () => resolve())),
    received: 0,
    receivedAtLeast: (bytes) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (client.received < bytes) return;
          socket.off('data', check);
          socket.off('close', gone);
          resolve();
        };
        const gone = (): void => reject(new Error(`closed after ${client.received} of ${bytes} bytes`));
        socket.on('data', check);
        socket.once('close', gone);
        check();
      }),
  };
  client.connected.catch(() => undefined);
  socket.on('error', () => undefined);
  socket.on('data', (bytes: Buffer) => {
    client.received += bytes.length;
  });
  return client;
}

/** A counter whose waits resolve when it reaches a value (no polling). */
export class Tally {
  value = 0;
  private readonly waiters: { target: number; resolve: () => void }[] = [];

  add(amount = 1): void {
    this.value += amount;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i];
      if (waiter !== undefined && this.value >= waiter.target) {
        this.waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  reach(target: number): Promise<void> {
    if (this.value >= target) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }
}

/** How many sockets a process holds (Linux /proc), or undefined where that cannot be read. */
export function socketCount(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let count = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count++;
      } catch {
        // closed while we looked
      }
    }
    return count;
  } catch {
    return undefined;
  }
}

export interface DirAudit {
  /** Chunk files whose size and SHA-1 match the torrent. */
  readonly verified: number[];
  /** Chunk files that do not (should never exist). */
  readonly bad: number[];
  /** Leftover temp files (`.name.tmp-…`). */
  readonly temps: string[];
  /** The summary's held list; undefined when there is no summary or it does not parse. */
  readonly summaryHeld: number[] | undefined;
  readonly summaryExists: boolean;
}

/** Reads a peer folder as `open()` would, without trusting anything in it. */
export function auditDir(dir: string, metainfo: Metainfo): DirAudit {
  const verified: number[] = [];
  const bad: number[] = [];
  const temps: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // not created yet
  }
  for (const name of names) {
    if (/^\..*\.tmp-[0-9a-f]{16}$/.test(name)) temps.push(name);
    const match = /^chunk_(\d+)$/.exec(name);
    if (match === null) continue;
    const index = Number(match[1]);
    const bytes = readFileSync(join(dir, name));
    const expected = metainfo.pieceHashes[index];
    const ok =
      expected !== undefined &&
      bytes.length === chunkLength(metainfo.geometry, index) &&
      Buffer.compare(sha1(bytes), expected) === 0;
    (ok ? verified : bad).push(index);
  }
  verified.sort((a, b) => a - b);
  bad.sort((a, b) => a - b);
  const summaryPath = join(dir, SUMMARY_FILE_NAME);
  const summaryExists = existsSync(summaryPath);
  const summaryHeld = summaryExists ? parseSummary(readFileSync(summaryPath, 'utf8'))?.held : undefined;
  return { verified, bad, temps, summaryHeld, summaryExists };
}
