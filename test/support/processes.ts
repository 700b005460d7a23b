/**
 * Test helpers for real processes on 127.0.0.1: temp folders, sample files, and a registry that
 * stops every process a test started, whatever happens.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventLine, killProcess, type SwarmProcess, spawnSwarm } from '../../src/app/processes.ts';
import { Random } from '../../src/engine/random.ts';

export class Workspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'swarm-test-'));
  private readonly processes: SwarmProcess[] = [];

  file(name: string, sizeBytes: number, seed = 1): string {
    const path = join(this.dir, name);
    writeFileSync(path, new Random(seed).bytes(sizeBytes));
    return path;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  spawn(args: readonly string[], onLine?: (line: EventLine) => void, json = true): SwarmProcess {
    const process_ = spawnSwarm(args, onLine, json);
    this.processes.push(process_);
    return process_;
  }

  /** Starts an owner on a free port and resolves with its port once it listens. */
  async owner(file: string, extra: readonly string[] = []): Promise<{ process: SwarmProcess; port: number }> {
    const process_ = this.spawn(['owner', '--file', file, ...this.listenArgs('OwnerDir'), ...extra]);
    const listening = await process_.waitFor((line) => line.event === 'listening');
    return { process: process_, port: Number(listening.port) };
  }

  peer(ownerPort: number, id: string, extra: readonly string[] = []): SwarmProcess {
    return this.spawn(['peer', '--owner', `127.0.0.1:${ownerPort}`, ...this.peerArgs(id), ...extra]);
  }

  /** A peer's own arguments: any free port, its id, and its folder `Peer<id>Dir` in the workspace. */
  peerArgs(id: string): string[] {
    return ['--port', '0', '--id', id, '--dir', this.path(`Peer${id}Dir`)];
  }

  /** Listen on any free port, keep chunks in `dir` inside the workspace. */
  private listenArgs(dir: string): string[] {
    return ['--port', '0', '--dir', this.path(dir)];
  }

  /** Kills every process still running and removes the folder. */
  async close(): Promise<void> {
    await Promise.all(this.processes.map((process_) => killProcess(process_)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `body` in a fresh workspace, closed afterwards (its processes stopped, its folder removed). */
export async function inWorkspace(body: (space: Workspace) => Promise<void>): Promise<void> {
  const space = new Workspace();
  try {
    await body(space);
  } finally {
    await space.close();
  }
}

/** A file seeded once, with the owner gone again: its .torrent names a tracker that is dead. */
export async function orphanedTorrent(space: Workspace, sizeBytes = 700_000): Promise<string> {
  const file = space.file('data.bin', sizeBytes);
  const { process: owner } = await space.owner(file);
  owner.child.kill('SIGKILL');
  await owner.exited;
  return file;
}

/** `peer --torrent FILE.torrent --dir DIR` and more: a peer of a file's swarm. */
export function torrentPeer(file: string, dir: string, ...extra: string[]): string[] {
  return ['peer', '--torrent', `${file}.torrent`, '--dir', dir, ...extra];
}

export function countEvents(process_: SwarmProcess, kind: string): number {
  return process_.lines.filter((line) => line.event === 'activity' && line.kind === kind).length;
}
