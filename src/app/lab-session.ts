/**
 * One lab run's processes, once its network stands: the owner and each peer started as `swarm`
 * inside their namespaces, the fault timeline carried out, activity collected, and the run ended
 * when every peer holds the file (or at the deadline, a process dying, or an interrupt). Stops
 * only the processes it started, by PID.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from '../sim/scenario.ts';
import { RunFailure } from './command.ts';
import { addAddress, dropAddress, resetConnections, setIsland } from './lab-net.ts';
import { LAB_PORT, type LabAction, type LabNode, type LabPlan } from './lab-plan.ts';
import { type EventLine, killProcess, type SwarmProcess, spawnSwarm, stopProcess } from './processes.ts';

/** How often waits (the owner's coverage, the end of the run) look again. */
const POLL_MS = 50;

export interface LabFiles {
  readonly workDir: string;
  readonly filePath: string;
  readonly fileName: string;
}

export interface LabPeerState {
  readonly node: LabNode;
  /** Addresses the peer has had, in order (the lab gives them; a move adds one). */
  readonly addresses: string[];
  /** Addresses the peer announced itself after noticing a change (its `address-changed` events). */
  readonly announced: string[];
  process: SwarmProcess | undefined;
  /** The current incarnation reported its verified file. */
  complete: boolean;
  /** When it last completed, ms from the run's start. */
  completedAtMs: number | null;
  restarts: number;
  /** The current process is listening. */
  listening: boolean;
  /** When each restarted process was listening, ms from the start. */
  readonly listeningAtMs: number[];
  readonly chunks: Set<number>;
}

export interface SessionOutcome {
  /** The start (every peer may trade) to the last peer complete. */
  readonly realMs: number | null;
  readonly failure: string | undefined;
  readonly peers: readonly LabPeerState[];
}

export class LabSession {
  private readonly origin = Date.now();
  private owner: SwarmProcess | undefined;
  private ownerLeft = false;
  private stopping = false;
  private startMs: number | undefined;
  private failure: string | undefined;
  private readonly peers: LabPeerState[];

  constructor(
    private readonly plan: LabPlan,
    private readonly scenario: Scenario,
    private readonly files: LabFiles,
    private readonly signal: AbortSignal,
  ) {
    this.peers = plan.peers.map((node) => ({
      node,
      addresses: [node.addresses[0] as string],
      announced: [],
      process: undefined,
      complete: false,
      completedAtMs: null,
      restarts: 0,
      listening: false,
      listeningAtMs: [],
      chunks: new Set(),
    }));
  }

  /** Runs to the end; every process is stopped before it resolves. */
  async run(): Promise<SessionOutcome> {
    const onAbort = (): void => this.fail(String(this.signal.reason));
    this.signal.addEventListener('abort', onAbort);
    try {
      await this.start();
      await this.carryOutTimeline();
      await this.until(() => this.peers.every((peer) => peer.complete));
    } catch (error) {
      this.fail((error as Error).message);
    } finally {
      this.signal.removeEventListener('abort', onAbort);
      await this.stopAll();
    }
    const times = this.peers.map((peer) => peer.completedAtMs);
    const realMs = times.every((time) => time !== null) ? Math.max(...(times as number[])) : null;
    return { realMs, failure: this.failure, peers: this.peers };
  }

  private now(): number {
    return Date.now() - this.origin;
  }

  private fail(why: string): void {
    this.failure ??= why;
  }

  /** Resolves once `done` holds; rejects at the deadline or an interrupt, or when the run failed. */
  private async until(done: () => boolean): Promise<void> {
    const deadline = this.origin + this.plan.deadlineMs;
    while (!done()) {
      if (this.signal.aborted) throw new RunFailure(String(this.signal.reason));
      if (this.failure !== undefined) throw new RunFailure(this.failure);
      if (Date.now() >= deadline)
        throw new RunFailure(
          `not every peer finished within the lab's deadline of ${this.plan.deadlineMs} ms`,
        );
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private async start(): Promise<void> {
    const { plan } = this;
    this.owner = spawnSwarm(this.ownerArgs(), undefined, true, ['ip', 'netns', 'exec', plan.owner.namespace]);
    const owner = this.owner;
    this.keepLog(plan.owner.id, owner);
    void owner.exited.then((code) => {
      if (!this.ownerLeft) this.fail(`the owner exited early (code ${code}): ${owner.stderr.join(' | ')}`);
    });
    await this.until(() => owner.lines.some((line) => line.event === 'listening'));
    // Every peer starts now and waits (--start-on-signal) until all listen: a process takes a
    // second or more to start on a busy machine, and peers starting one by one are not what the
    // simulator models. The run starts at the go; a peer that joins later gets its go then.
    for (const peer of this.peers) this.spawnPeer(peer, true);
    await this.until(() => this.peers.every((peer) => peer.listening));
    this.startMs = this.now();
    for (const peer of this.peers) if (peer.node.joinAtMs === 0) this.go(peer);
  }

  private go(peer: LabPeerState): void {
    peer.process?.child.kill('SIGUSR2');
  }

  /** Joins and faults, each at its time after the start. */
  private async carryOutTimeline(): Promise<void> {
    const joins = this.peers
      .filter((peer) => peer.node.joinAtMs > 0)
      .map((peer) => ({ atMs: peer.node.joinAtMs, join: peer }));
    const steps = [...joins, ...this.plan.timeline];
    steps.sort((a, b) => a.atMs - b.atMs);
    for (const step of steps) {
      const at = (this.startMs as number) + step.atMs;
      await this.until(() => this.now() >= at);
      if ('join' in step) this.go(step.join);
      else await this.act(step.action);
    }
  }

  private async act(action: LabAction): Promise<void> {
    switch (action.kind) {
      case 'drop-address':
        return dropAddress(this.peer(action.node).node, action.address);
      case 'add-address': {
        const peer = this.peer(action.node);
        await addAddress(peer.node, action.address);
        peer.addresses.push(action.address);
        return;
      }
      case 'kill': {
        const peer = this.peer(action.node);
        const process_ = peer.process;
        peer.process = undefined;
        peer.complete = false;
        if (process_ !== undefined) await killProcess(process_);
        return;
      }
      case 'restart': {
        const peer = this.peer(action.node);
        peer.restarts++;
        this.spawnPeer(peer);
        return;
      }
      case 'owner-leave':
        return this.ownerLeaves();
      case 'partition':
      case 'heal':
        return setIsland(
          this.plan,
          action.nodes.map((id) => this.node(id)),
          action.kind === 'partition',
        );
      case 'reset':
        return resetConnections(this.node(action.node));
    }
  }

  /** As in the simulator: the owner leaves once every chunk is held by some live peer. */
  private async ownerLeaves(): Promise<void> {
    const chunks = Number(this.owner?.lines.find((line) => line.event === 'listening')?.chunks);
    await this.until(() => {
      const held = new Set<number>();
      for (const peer of this.peers)
        if (peer.process !== undefined) for (const chunk of peer.chunks) held.add(chunk);
      return held.size >= chunks;
    });
    this.ownerLeft = true;
    if (this.owner !== undefined) await stopProcess(this.owner);
  }

  /** Every line a process printed, then its stderr, in logs/NAME.jsonl of the run's folder (--keep). */
  private keepLog(name: string, process_: SwarmProcess): void {
    void process_.exited.then(() => {
      const dir = join(this.files.workDir, 'logs');
      mkdirSync(dir, { recursive: true });
      const lines = [...process_.lines.map((line) => JSON.stringify(line)), ...process_.stderr];
      writeFileSync(join(dir, `${name}.jsonl`), `${lines.join('\n')}\n`);
    });
  }

  private peer(id: string): LabPeerState {
    const peer = this.peers.find((one) => one.node.id === id);
    if (peer === undefined) throw new Error(`no peer "${id}" in the lab plan`);
    return peer;
  }

  private node(id: string): LabNode {
    return id === this.plan.owner.id ? this.plan.owner : this.peer(id).node;
  }

  /** Starts the peer's process (`held`: it waits for its go before it trades). */
  private spawnPeer(peer: LabPeerState, held = false): void {
    peer.listening = false;
    const process_ = spawnSwarm(
      [...this.peerArgs(peer.node, peer.restarts > 0), ...(held ? ['--start-on-signal'] : [])],
      (line) => this.onPeerLine(peer, line),
      true,
      ['ip', 'netns', 'exec', peer.node.namespace],
    );
    peer.process = process_;
    this.keepLog(`${peer.node.id}.${peer.restarts}`, process_);
    void process_.exited.then((code) => {
      // Killed by the lab (a crash) or stopped at the end: expected; anything else fails the run.
      if (peer.process === process_ && !this.stopping)
        this.fail(`peer ${peer.node.id} exited early (code ${code}): ${process_.stderr.join(' | ')}`);
    });
  }

  private onPeerLine(peer: LabPeerState, line: EventLine): void {
    if (line.event === 'listening') {
      peer.listening = true;
      if (this.startMs !== undefined) peer.listeningAtMs.push(this.now() - this.startMs);
    } else if (line.event === 'activity' && line.kind === 'chunk-received')
      peer.chunks.add(Number(line.chunk));
    else if (line.event === 'complete') {
      peer.complete = true;
      peer.completedAtMs = Number(line.completedAtMs) - (this.startMs ?? 0);
    } else if (line.event === 'address-changed' && line.announced === true) {
      const addresses = line.addresses as string[];
      peer.announced.push(...addresses.filter((address) => !peer.announced.includes(address)));
    }
  }

  /** Peers first (they may still announce), then the owner; each by its PID. */
  private async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.peers.map((peer) => (peer.process === undefined ? undefined : stopProcess(peer.process))),
    );
    if (this.owner !== undefined) {
      this.ownerLeft = true;
      await stopProcess(this.owner);
    }
  }

  private ownerArgs(): string[] {
    const { scenario, plan, files } = this;
    return [
      'owner',
      '--file',
      files.filePath,
      '--host',
      plan.owner.addresses[0] as string,
      '--port',
      String(LAB_PORT),
      '--dir',
      join(files.workDir, 'owner'),
      '--torrent',
      join(files.workDir, `${files.fileName}.torrent`),
      '--peers',
      String(plan.peers.length),
      '--advertise',
      scenario.policies.ownerAdvertising,
      '--announce-interval',
      '1',
      ...(scenario.file.chunkSizeBytes === undefined
        ? []
        : ['--chunk-size', String(scenario.file.chunkSizeBytes)]),
      '--clock-origin',
      String(this.origin),
    ];
  }

  /**
   * A restart of a mesh or full peer reads the torrent the owner wrote, since the owner may have
   * left: it dials the addresses in its peers.txt and asks the tracker if there still is one. A ring
   * or star peer needs its owner (the tracker names its neighbours).
   */
  private peerArgs(node: LabNode, restart: boolean): string[] {
    const { scenario, plan, files } = this;
    const at = (id: string): string => `${this.node(id).addresses[0]}:${LAB_PORT}`;
    const { topology, policies } = scenario;
    const fromFile = restart && (topology.kind === 'mesh' || topology.kind === 'full');
    return [
      'peer',
      ...(fromFile
        ? ['--torrent', join(files.workDir, `${files.fileName}.torrent`)]
        : ['--owner', at(plan.owner.id)]),
      // Every address the namespace will have: a move must not need a new listening socket.
      '--host',
      '0.0.0.0',
      '--port',
      String(LAB_PORT),
      '--id',
      node.id,
      '--dir',
      join(this.files.workDir, node.id),
      '--topology',
      topology.kind,
      ...(topology.degree === undefined ? [] : ['--degree', String(topology.degree)]),
      '--picker',
      policies.picker,
      '--phases',
      policies.phases,
      // As in the simulator, peer exchange only where the scenario asks for it.
      ...(policies.peerExchange ? [] : ['--no-pex']),
      ...(node.downloadFrom === undefined ? [] : ['--download-from', at(node.downloadFrom)]),
      '--clock-origin',
      String(this.origin),
    ];
  }
}
