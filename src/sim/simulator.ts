/**
 * The deterministic simulator: many engines over the modelled network and an in-memory disk, on one
 * event queue in virtual time. One master seed decides everything; the same scenario and seed give
 * the same trace, byte for byte, on any machine.
 */
import { type ActivityEvent, formatActivityLine } from '../engine/activity.ts';
import type { Geometry } from '../engine/chunking.ts';
import { type Effect, Engine } from '../engine/engine.ts';
import { createTorrent } from '../engine/metainfo.ts';
import { deriveSeed, Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import { ActivityTrace } from './activity-trace.ts';
import { BlockReads, HIGH_WATER_BYTES } from './block-reads.ts';
import { Discovery, listenPortOf, nodeHost } from './discovery.ts';
import { EventQueue } from './event-queue.ts';
import { FaultInjector } from './fault-injection.ts';
import { describeFault, healTimeMs, planFaults } from './faults.ts';
import { DISK_FULL_ERROR, FileChunks, scenarioFile } from './memory-disk.ts';
import { Network, type NetworkEvent, type NetworkListener } from './network.ts';
import { engineOptionsFor } from './node-engine.ts';
import { type Fault, planPeers, type Scenario } from './scenario.ts';
import type { SimEvent } from './sim-event.ts';
import {
  everyChunkOnALivePeer,
  finishedWithWrongFile,
  firstWaitingPeer,
  unheldAdvertised,
} from './sim-invariants.ts';
import {
  createSimNode,
  localEndpoint,
  networkEndpoint,
  type SimNode,
  sendStream,
  streamSink,
  wireBytes,
} from './sim-node.ts';
import { PROGRESS_EVERY_EVENTS, type SimOptions } from './sim-options.ts';
import { fileSha256Of, lowerBoundMs, peerReport, type SimFailure, type SimResult } from './sim-result.ts';
import { wireTopology } from './topology-wiring.ts';
import { WireWatch } from './wire-watch.ts';

export { PROGRESS_EVERY_EVENTS, type SimOptions, type SimProgress } from './sim-options.ts';
export type { PeerReport, SimFailure, SimResult } from './sim-result.ts';

/** A request still unanswered (no piece, reject or cancel) this long on a live link is a bug. */
const UNANSWERED_AFTER_MS = 30_000;

export class Simulator {
  private readonly queue = new EventQueue<SimEvent>();
  private readonly network: Network;
  private readonly nodes = new Map<string, SimNode>();
  private readonly peerIds: string[] = [];
  /** The peers' nodes, in peerIds order. */
  private readonly peerNodes: SimNode[] = [];
  private readonly trace = new ActivityTrace();
  private readonly geometry: Geometry;
  private readonly file: FileChunks;
  private readonly infoHash: Uint8Array;
  private readonly touched = new Set<SimNode>();
  private nowUs = 0;
  private events = 0;
  private peersComplete = 0;
  private failure: SimFailure | undefined;
  private readonly faults: Fault[];
  private readonly faultInjector: FaultInjector;
  private readonly discovery: Discovery;
  private readonly healAtMs: number;
  private readonly watch: WireWatch | undefined;
  private readonly reads: BlockReads;
  readonly seed: number;

  constructor(
    readonly scenario: Scenario,
    private readonly options: SimOptions = {},
  ) {
    this.seed = options.seed ?? scenario.seed;
    const file = scenarioFile(scenario);
    this.geometry = file.geometry;
    this.file = new FileChunks(file.bytes, file.geometry);
    const torrent = createTorrent(
      {
        name: `${scenario.name ?? 'scenario'}.bin`,
        totalLengthBytes: this.geometry.totalLengthBytes,
        pieceLengthBytes: this.geometry.pieceLengthBytes,
        pieceHashes: this.file.pieceHashes,
      },
      sha1,
    );
    this.infoHash = torrent.metainfo.infoHash;
    this.network = new Network(
      this.queue as EventQueue<NetworkEvent | { kind: string }>,
      new Random(deriveSeed(this.seed, 'network')),
      {
        maxSegmentBytes: scenario.network.maxSegmentBytes,
        mergePercent: scenario.network.mergePercent,
        highWaterBytes: HIGH_WATER_BYTES,
      },
      this.networkListener(),
      () => this.nowUs,
    );
    this.faults = planFaults(
      scenario,
      this.seed,
      planPeers(scenario).map((peer) => peer.id),
    );
    this.healAtMs = healTimeMs(scenario, this.faults);
    this.faultInjector = new FaultInjector(this.faultHost());
    this.reads = new BlockReads(
      this.queue,
      (node) => this.network.queuedBytes(node),
      () => this.nowUs,
    );
    this.watch = scenario.invariants === 'full' ? new WireWatch(this.geometry) : undefined;
    this.discovery = this.build();
    for (const [index, fault] of this.faults.entries())
      this.queue.push(fault.atMs * 1000, { kind: 'fault', index });
    if (this.faults.length > 0) this.queue.push(this.healAtMs * 1000, { kind: 'heal' });
  }

  private nowMs(): number {
    return Math.floor(this.nowUs / 1000);
  }

  /** Network callbacks reach the engine of the endpoint's live incarnation, if any. */
  private networkListener(): NetworkListener {
    return {
      accepted: (node, endpoint, remote) => {
        const local = localEndpoint(this.nodes.get(node), endpoint);
        if (local !== undefined) this.touch(node)?.handleAccepted(this.nowMs(), local, remote);
      },
      connected: (node, endpoint) => {
        const local = localEndpoint(this.nodes.get(node), endpoint);
        if (local !== undefined) this.touch(node)?.handleConnected(this.nowMs(), local);
      },
      data: (stream, bytes) => {
        const sink = streamSink(stream, this.nodes);
        const engine = sink?.node.engine;
        if (sink?.local === undefined || engine === undefined) return;
        this.touched.add(sink.node);
        engine.handleData(this.nowMs(), sink.local, bytes);
      },
      closed: (node, endpoint, reason) => {
        const local = localEndpoint(this.nodes.get(node), endpoint);
        if (local !== undefined) this.touch(node)?.handleClosed(this.nowMs(), local, reason);
      },
      drained: (node) => this.reads.drained(this.nodes.get(node) as SimNode),
    };
  }

  private faultHost(): ConstructorParameters<typeof FaultInjector>[0] {
    return {
      nodes: this.nodes,
      network: this.network,
      queue: this.queue,
      ownerId: this.scenario.owner.id,
      nowUs: () => this.nowUs,
      nowMs: () => this.nowMs(),
      startEngine: (node) => this.startEngine(node),
      drain: (node) => this.drain(node),
      forget: (node) => this.touched.delete(node),
      everyChunkOnALivePeer: () => everyChunkOnALivePeer(this.peerNodes, this.geometry.pieceCount),
      trackerUp: () => this.discovery.trackerUp(),
    };
  }

  /** The node's engine, marking the node as having effects to carry out. */
  private touch(id: string): Engine | undefined {
    const node = this.nodes.get(id);
    if (node?.engine === undefined) return undefined;
    this.touched.add(node);
    return node.engine;
  }

  /** The nodes, who knows whom at the start (peers that know one live peer learn it at their join). */
  private build(): Discovery {
    const { scenario } = this;
    const plans = planPeers(scenario);
    const owner = this.addNode(scenario.owner.id, 'owner', undefined, scenario.owner);
    const topologyRandom = new Random(deriveSeed(this.seed, 'topology'));
    for (const plan of plans) {
      this.peerNodes.push(this.addNode(plan.id, 'peer', plan, plan));
      this.peerIds.push(plan.id);
    }
    const told = plans.filter((plan) => plan.knows === 'tracker');
    wireTopology(scenario.topology, told, owner, (id) => this.nodes.get(id) as SimNode, topologyRandom);
    const discovery = new Discovery(scenario, this.seed, owner, this.peerNodes);
    this.startEngine(owner);
    for (const plan of plans) this.queue.push(plan.joinAtMs * 1000, { kind: 'join', node: plan.id });
    return discovery;
  }

  private addNode(
    id: string,
    role: 'owner' | 'peer',
    plan: SimNode['plan'],
    capacities: { uploadBytesPerSecond: number; downloadBytesPerSecond: number; latencyMs: number },
  ): SimNode {
    const host = nodeHost(this.scenario, this.nodes.size, id);
    const node = createSimNode(id, role, plan, capacities.uploadBytesPerSecond, this.file, host);
    node.mayLie = this.faults.some((fault) => fault.kind === 'corrupt' && fault.node === id);
    this.nodes.set(id, node);
    this.network.addNode({ id, ...(host === id ? {} : { host }), ...capacities });
    return node;
  }

  private startEngine(node: SimNode): void {
    const random = new Random(deriveSeed(this.seed, `node:${node.id}:${node.generation}`));
    node.engine = new Engine(
      engineOptionsFor(node, random, {
        scenario: this.scenario,
        file: this.file,
        infoHash: this.infoHash,
        geometry: this.geometry,
        peerCount: this.peerIds.length || planPeers(this.scenario).length,
        ...(this.options.limits === undefined ? {} : { limits: this.options.limits }),
      }),
    );
    this.network.listen(node.address, node.id);
    if (this.scenario.policies.peerExchange)
      node.engine.handleListening(this.nowMs(), listenPortOf(node), [node.address]);
    if (node.peers.length > 0) node.engine.handlePeers(this.nowMs(), node.peers);
    this.drain(node);
  }

  /** Carries out every effect the node's engine produced, then re-arms its timer. */
  private drain(node: SimNode): void {
    const engine = node.engine;
    if (engine === undefined) return;
    for (const effect of engine.pollEffects()) this.apply(node, effect);
    if (this.scenario.invariants !== 'off') {
      const broken = engine.checkInvariants(this.scenario.invariants === 'full');
      if (broken !== undefined) this.fail('invariant', `engine-limits: ${node.id}: ${broken}`);
    }
    const wake = engine.pollTimeout();
    if (wake !== undefined && wake !== node.timerAtMs) {
      node.timerAtMs = wake;
      this.queue.push(Math.max(wake * 1000, this.nowUs), {
        kind: 'timer',
        node: node.id,
        generation: node.generation,
      });
    }
  }

  private apply(node: SimNode, effect: Effect): void {
    switch (effect.kind) {
      case 'connect':
        this.network.connect(node.id, networkEndpoint(node, effect.connection), effect.address);
        return;
      case 'send': {
        const bytes = wireBytes(node, effect.connection, effect.bytes);
        if (this.watch !== undefined) {
          const link = this.network.linkOf(node.id, networkEndpoint(node, effect.connection));
          const broken =
            link === undefined ? undefined : this.watch.sent(link.id, link.client, bytes, this.nowMs());
          if (broken !== undefined) this.fail('invariant', `${node.id}: ${broken}`);
        }
        const stream = sendStream(node, effect.connection, this.network);
        if (stream !== undefined) this.network.sendOn(stream, bytes);
        return;
      }
      case 'close':
        this.network.close(node.id, networkEndpoint(node, effect.connection));
        return;
      case 'read-block':
        this.reads.request(node, effect);
        return;
      case 'write-chunk':
        this.queue.push(this.nowUs, {
          kind: 'write-done',
          node: node.id,
          generation: node.generation,
          index: effect.index,
          bytes: effect.bytes,
        });
        return;
      case 'activity':
        this.onActivity(node, effect.event);
        if (effect.event.kind === 'list-sent' && this.scenario.invariants !== 'off') {
          const broken = unheldAdvertised(node, effect.event.list, this.geometry.pieceCount);
          if (broken !== undefined) this.fail('invariant', broken);
        }
        return;
      case 'complete':
        if (node.completedAtMs === undefined && node.role === 'peer') this.peersComplete++;
        node.completedAtMs ??= this.nowMs();
        return;
    }
  }

  private onActivity(node: SimNode, event: ActivityEvent): void {
    if (event.kind === 'chunk-received') {
      if (event.fromOwner) node.totals.chunksFromOwner++;
      else node.totals.chunksFromPeers++;
    }
    const line = formatActivityLine(this.nowMs(), node.id, event);
    this.trace.record(event.kind, line);
    this.options.onLine?.(line);
    this.options.onActivity?.(this.nowMs(), node.id, event);
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'join': {
        const node = this.nodes.get(event.node) as SimNode;
        node.joined = true;
        this.discovery.joining(node);
        if (!node.crashed) this.startEngine(node);
        return;
      }
      case 'fault':
        this.faultInjector.start(this.faults[event.index] as Fault, event.index);
        return;
      case 'fault-over':
        this.faultInjector.end(this.faults[event.index] as Fault);
        return;
      case 'restart': {
        const node = this.nodes.get(event.node) as SimNode;
        if (node.crashed && !node.left) this.faultInjector.restart(node, event.move);
        return;
      }
      case 'heal':
        this.faultInjector.heal();
        return;
      case 'timer': {
        const node = this.nodes.get(event.node);
        if (node?.engine === undefined || event.generation !== node.generation) return;
        if (node.timerAtMs === undefined || node.timerAtMs * 1000 > this.nowUs) return;
        node.timerAtMs = undefined;
        node.engine.handleTimeout(this.nowMs());
        this.drain(node);
        return;
      }
      case 'drained': {
        const node = this.nodes.get(event.node);
        if (node !== undefined) this.reads.pump(node);
        return;
      }
      case 'read-done': {
        const node = this.nodes.get(event.node);
        if (node?.engine === undefined || event.generation !== node.generation) return;
        const bytes = node.disk.read(event.index, event.begin, event.length);
        node.engine.handleBlockRead(this.nowMs(), event.connection, event.index, event.begin, bytes);
        this.reads.done(node);
        this.drain(node);
        this.reads.pump(node);
        return;
      }
      case 'write-done':
        this.finishWrite(event);
        return;
      default: {
        this.network.handle(event);
        for (const node of this.touched) this.drain(node);
        this.touched.clear();
      }
    }
  }

  /** A chunk write reaches the node's disk: stored and acknowledged, or refused while the disk is full. */
  private finishWrite(event: SimEvent & { kind: 'write-done' }): void {
    const node = this.nodes.get(event.node);
    if (node?.engine === undefined || event.generation !== node.generation) return;
    const written = node.disk.write(this.nowMs(), event.index, event.bytes);
    if (!written.stored) {
      node.engine.handleChunkWritten(this.nowMs(), event.index, DISK_FULL_ERROR);
      this.drain(node);
      return;
    }
    if (!written.matches) {
      this.fail(
        'invariant',
        `unverified-chunk-stored: ${node.id} stored chunk ${event.index} with bytes that differ from the file`,
      );
    }
    node.engine.handleChunkWritten(this.nowMs(), event.index, undefined);
    // Only once the engine is done with the buffer may another chunk reuse it.
    if (written.matches) this.file.recycle(event.index, event.bytes);
    this.drain(node);
  }

  private fail(kind: SimFailure['kind'], message: string): void {
    this.failure ??= { kind, message, atMs: this.nowMs() };
  }

  /** At the end: every honest peer holds the exact file, and no request went unanswered. */
  private finalChecks(): void {
    if (this.scenario.invariants === 'off' || this.failure !== undefined) return;
    const wrong = finishedWithWrongFile(this.peerNodes, this.geometry.pieceCount);
    if (wrong !== undefined) {
      this.fail('invariant', `wrong-file: ${wrong.node.id} finished without the exact chunk ${wrong.index}`);
      return;
    }
    const broken = this.watch?.unanswered(this.nowMs(), UNANSWERED_AFTER_MS, (link) =>
      this.network.isAlive(link),
    );
    if (broken !== undefined) this.fail('invariant', broken);
  }

  run(): SimResult {
    const limitUs = this.scenario.maxSimulatedMs * 1000;
    let waiting = 0;
    for (;;) {
      waiting = firstWaitingPeer(this.peerNodes, waiting);
      if (this.failure !== undefined || waiting === this.peerNodes.length) break;
      const timeUs = this.queue.peekTimeUs();
      if (timeUs === undefined) {
        this.fail('incomplete', 'nothing left to happen, but some peers are not complete');
        break;
      }
      if (timeUs > limitUs) {
        this.nowUs = limitUs;
        this.fail('time-limit', `not complete after ${this.scenario.maxSimulatedMs} ms of simulated time`);
        break;
      }
      const livenessDeadlineUs = (this.healAtMs + this.scenario.livenessBoundMs) * 1000;
      if (this.faults.length > 0 && timeUs > livenessDeadlineUs) {
        this.nowUs = livenessDeadlineUs;
        this.fail(
          'liveness',
          `liveness: not every live peer finished within ${this.scenario.livenessBoundMs} ms of healing at ${this.healAtMs} ms`,
        );
        break;
      }
      const event = this.queue.pop() as SimEvent;
      this.nowUs = timeUs;
      this.events++;
      this.handle(event);
      if (this.events % PROGRESS_EVERY_EVENTS === 0) this.reportProgress();
    }
    this.finalChecks();
    return this.report();
  }

  private reportProgress(): void {
    const { events, peersComplete } = this;
    this.options.onProgress?.({
      simulatedMs: this.nowMs(),
      events,
      peersComplete,
      peers: this.peerNodes.length,
    });
  }

  private report(): SimResult {
    const fileSha256OfFile = fileSha256Of(this.file);
    const peers = this.peerIds.map((id) => peerReport(this.nodes.get(id) as SimNode, fileSha256OfFile));
    const plans = planPeers(this.scenario);
    const ownerNode = this.nodes.get(this.scenario.owner.id) as SimNode;
    return {
      scenario: this.scenario.name ?? 'scenario',
      seed: this.seed,
      digest: this.trace.digest(),
      simulatedMs: Math.max(0, ...peers.map((peer) => peer.completedAtMs ?? this.nowMs())),
      lowerBoundMs: lowerBoundMs(
        this.geometry.totalLengthBytes,
        this.scenario.owner.uploadBytesPerSecond,
        plans,
      ),
      fileSha256: fileSha256OfFile,
      peers,
      owner: { bytesUp: ownerNode.engine?.getStats().bytesUp ?? 0 },
      activityCounts: { ...this.trace.counts },
      events: this.events,
      faults: this.faults.map(describeFault),
      failure: this.failure,
    };
  }
}

export function runScenario(scenario: Scenario, options: SimOptions = {}): SimResult {
  return new Simulator(scenario, options).run();
}
