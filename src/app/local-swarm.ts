/**
 * An owner and N peers as separate processes on 127.0.0.1: what `npm start` runs, and what the
 * contract tests and benchmarks run over real sockets.
 */
import { join } from 'node:path';
import type { PeerReport as SimPeerReport } from '../sim/simulator.ts';
import { type EventLine, type SwarmProcess, sha256File, spawnSwarm, stopProcess } from './processes.ts';

export interface LocalSwarmOptions {
  readonly file: string;
  readonly dir: string;
  readonly peers: number;
  readonly topology: 'ring' | 'mesh' | 'full' | 'star';
  readonly picker: 'random' | 'rarest-first';
  readonly phases: 'two-phase' | 'overlapped';
  readonly chunkSizeBytes?: number;
  readonly timeoutMs: number;
  /** Epoch ms every process prints its times from (default: when this call starts). */
  readonly clockOriginMs?: number;
  /** Every event line of every process, with the process's name. */
  readonly onLine?: (name: string, line: EventLine) => void;
}

/**
 * The simulator's `--json` peer entry, plus the time from the peer's process being ready (listening)
 * to its verified file.
 */
export type PeerReport = { -readonly [K in keyof SimPeerReport]: SimPeerReport[K] } & {
  readyToDoneMs: number | null;
};

export interface LocalSwarmResult {
  readonly fileSha256: string;
  readonly elapsedMs: number;
  readonly ok: boolean;
  readonly failure: string | undefined;
  readonly chunks: number;
  readonly peers: PeerReport[];
}

export async function runLocalSwarm(options: LocalSwarmOptions): Promise<LocalSwarmResult> {
  const fileSha256 = await sha256File(options.file);
  if (fileSha256 === null) throw new Error(`cannot read ${options.file}`);
  const startedAt = options.clockOriginMs ?? Date.now();
  const clock = ['--clock-origin', String(startedAt)];
  const reports = new Map<string, PeerReport>();
  const processes: SwarmProcess[] = [];
  let failure: string | undefined;
  let settle: (() => void) | undefined;
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  let stopping = false;
  const fail = (why: string): void => {
    if (stopping) return;
    failure ??= why;
    settle?.();
  };
  const timer = setTimeout(
    () => fail(`not every peer finished within ${options.timeoutMs} ms`),
    options.timeoutMs,
  );

  const fileName = options.file.split('/').pop() as string;
  const owner = spawnSwarm(
    [
      'owner',
      '--file',
      options.file,
      '--port',
      '0',
      '--dir',
      join(options.dir, 'OwnerDir'),
      '--torrent',
      join(options.dir, `${fileName}.torrent`),
      '--peers',
      String(options.peers),
      '--announce-interval',
      '1',
      ...(options.chunkSizeBytes === undefined ? [] : ['--chunk-size', String(options.chunkSizeBytes)]),
      ...clock,
    ],
    (line) => options.onLine?.('owner', line),
  );
  processes.push(owner);
  let chunks = 0;
  try {
    const listening = await Promise.race([
      owner.waitFor((line) => line.event === 'listening'),
      settled.then(() => undefined),
    ]);
    if (listening === undefined) throw new Error(failure);
    chunks = Number(listening.chunks);
    const ownerPort = Number(listening.port);
    for (let i = 1; i <= options.peers; i++) {
      const id = String(i);
      const report: PeerReport = {
        id,
        complete: false,
        fileSha256: null,
        completedAtMs: null,
        readyToDoneMs: null,
        chunksFromOwner: 0,
        chunksFromPeers: 0,
        bytesUp: 0,
        bytesDown: 0,
      };
      reports.set(id, report);
      const peer = spawnSwarm(
        [
          'peer',
          '--owner',
          `127.0.0.1:${ownerPort}`,
          '--port',
          '0',
          '--id',
          id,
          '--dir',
          join(options.dir, `Peer${id}Dir`),
          '--topology',
          options.topology,
          '--picker',
          options.picker,
          '--phases',
          options.phases,
          ...clock,
        ],
        (line: EventLine) => {
          options.onLine?.(id, line);
          if (line.event === 'complete') {
            Object.assign(report, {
              complete: true,
              completedAtMs: Number(line.completedAtMs),
              readyToDoneMs: Number(line.readyToDoneMs),
              chunksFromOwner: Number(line.chunksFromOwner),
              chunksFromPeers: Number(line.chunksFromPeers),
              bytesUp: Number(line.bytesUp),
              bytesDown: Number(line.bytesDown),
            });
            if ([...reports.values()].every((other) => other.complete) && reports.size === options.peers)
              settle?.();
          } else if (line.event === 'stopped') {
            report.bytesUp = Number(line.bytesUp);
            report.bytesDown = Number(line.bytesDown);
          }
        },
      );
      processes.push(peer);
      void peer.exited.then((code) => {
        if (!report.complete) fail(`peer ${id} exited early (code ${code}): ${peer.stderr.join(' | ')}`);
      });
    }
    void owner.exited.then((code) =>
      fail(`the owner exited early (code ${code}): ${owner.stderr.join(' | ')}`),
    );
    await settled;
  } catch (error) {
    fail((error as Error).message);
  } finally {
    clearTimeout(timer);
    stopping = true;
    const elapsed = Date.now() - startedAt;
    // Peers first, so the owner is there for their last announce; then the owner.
    await Promise.all(processes.slice(1).map((process_) => stopProcess(process_)));
    await stopProcess(owner);
    for (const report of reports.values()) {
      report.fileSha256 = await sha256File(join(options.dir, `Peer${report.id}Dir`, fileName));
    }
    const peers = [...reports.values()];
    const ok =
      failure === undefined &&
      peers.length === options.peers &&
      peers.every((peer) => peer.complete && peer.fileSha256 === fileSha256);
    // biome-ignore lint/correctness/noUnsafeFinally: the result is built once every process is gone.
    return {
      fileSha256,
      elapsedMs: elapsed,
      ok,
      failure: ok ? undefined : (failure ?? 'a copy does not match'),
      chunks,
      peers,
    };
  }
}
