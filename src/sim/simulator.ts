/**
 * The deterministic simulator: many engines over the modelled network and an in-memory disk, on one
 * event queue in virtual time. One master seed decides everything; the same scenario and seed give
 * the same trace, byte for byte, on any machine.
 */
import { createHash } from 'node:crypto';
import { type ActivityEvent, formatActivityLine, type ListSummary } from '../engine/activity.ts';
import { Bitfield } from '../engine/bitfield.ts';
import { type Geometry, planChunks } from '../engine/chunking.ts';
import { type Effect, Engine, type EngineLimits, type PeerRole } from '../engine/engine.ts';
import { bytesEqual, type Sha1 } from '../engine/hash.ts';
import { createTorrent } from '../engine/metainfo.ts';
import { makePeerId } from '../engine/peer-id.ts';
import { deriveSeed, Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import { EventQueue } from './event-queue.ts';
import { describeFault, faultEndMs, healTimeMs, planFaults } from './faults.ts';
import { meshEdges } from './mesh.ts';
import { Network, type NetworkEvent } from './network.ts';
import { type Fault, type PeerPlan, planPeers, type Scenario } from './scenario.ts';
import { WireWatch } from './wire-watch.ts';

export interface PeerReport {
  readonly id: string;
  readonly complete: boolean;
  readonly fileSha256: string | null;
  readonly completedAtMs: number | null;
  readonly chunksFromOwner: number;
  readonly chunksFromPeers: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export interface SimFailure {
  readonly kind: 'incomplete' | 'invariant' | 'time-limit' | 'liveness';
  readonly message: string;
  readonly atMs: number;
}

export interface SimResult {
  readonly scenario: string;
  readonly seed: number;
  readonly digest: string;
  readonly simulatedMs: number;
  readonly lowerBoundMs: number;
  readonly fileSha256: string;
  readonly peers: PeerReport[];
  readonly owner: { readonly bytesUp: number };
  readonly activityCounts: Record<string, number>;
  readonly events: number;
  /** The fault plan, one line per fault, as it ran. */
  readonly faults: readonly string[];
  readonly failure: SimFailure | undefined;
}

export interface SimOptions {
  /** Overrides the scenario's seed for the run (not for the file's bytes). */
  readonly seed?: number;
  /** Called with every activity line, in order. */
  readonly onLine?: (line: string) => void;
  readonly limits?: Partial<EngineLimits>;
}

type SimEvent =
  | NetworkEvent
  | { readonly kind: 'join'; readonly node: string }
  | { readonly kind: 'timer'; readonly node: string; readonly generation: number }
  | { readonly kind: 'drained'; readonly node: string }
  | {
      readonly kind: 'read-done';
      readonly node: string;
      readonly generation: number;
      readonly connection: string;
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | { readonly kind: 'fault'; readonly index: number }
  | { readonly kind: 'fault-over'; readonly index: number }
  | { readonly kind: 'restart'; readonly node: string; readonly move: boolean }
  | { readonly kind: 'heal' }
  | {
      readonly kind: 'write-done';
      readonly node: string;
      readonly generation: number;
      readonly index: number;
      readonly bytes: Uint8Array;
    };

interface SimNode {
  readonly id: string;
  readonly role: 'owner' | 'peer';
  address: string;
  /** Down after a crash, until it restarts; `left` for good (the owner leaving). */
  crashed: boolean;
  left: boolean;
  /** A lying peer: every block it uploads is corrupted on the way out. */
  corrupt: boolean;
  /** Writes fail with ENOSPC until this time. */
  diskFullUntilMs: number;
  /** Per connection: the last thing sent was a piece header, so the next send is a block. */
  readonly blockNext: Set<string>;
  moves: number;
  /** Its join time has come (a crash before then only delays its start). */
  joined: boolean;
  readonly normalUploadBytesPerSecond: number;
  /** The neighbours that dial this node; after a restart it dials them itself, as a tracker would tell it. */
  readonly dialledBy: string[];
  readonly plan: PeerPlan | undefined;
  engine: Engine | undefined;
  /** Bumped on every restart so events for a dead incarnation are dropped. */
  generation: number;
  timerAtMs: number | undefined;
  readonly disk: Map<number, Uint8Array>;
  readonly fromOwner: Bitfield;
  /** Block reads waiting, in arrival order, for the node's uplink queue to have room. */
  readonly pendingReads: (Effect & { kind: 'read-block' })[];
  readonly peers: { address: string; role: PeerRole }[];
  completedAtMs: number | undefined;
  readsInFlight: number;
  readonly totals: { chunksFromOwner: number; chunksFromPeers: number; bytesUp: number; bytesDown: number };
}

/**
 * Block reads wait while the node has this much queued for its uplink. Keeping the queue short
 * makes the uplink serve requests in arrival order, so a new chunk reaches its first requester at
 * full speed instead of trickling to every neighbour at once.
 */
const HIGH_WATER_BYTES = 32 * 1024;

/** A request still unanswered (no piece, reject or cancel) this long on a live link is a bug. */
const UNANSWERED_AFTER_MS = 30_000;

export function lowerBoundMs(
  fileBytes: number,
  ownerUploadBytesPerSecond: number,
  peers: readonly { uploadBytesPerSecond: number; downloadBytesPerSecond: number }[],
): number {
  const minDownload = Math.min(...peers.map((peer) => peer.downloadBytesPerSecond));
  const totalUpload =
    ownerUploadBytesPerSecond + peers.reduce((sum, peer) => sum + peer.uploadBytesPerSecond, 0);
  const seconds = Math.max(
    fileBytes / ownerUploadBytesPerSecond,
    fileBytes / minDownload,
    (peers.length * fileBytes) / totalUpload,
  );
  return Math.ceil(seconds * 1000);
}

/** The file a scenario distributes: bytes drawn from its content seed. */
export function scenarioFile(scenario: Scenario): { bytes: Uint8Array; geometry: Geometry } {
  const plan = planChunks(scenario.file.sizeBytes, scenario.file.chunkSizeBytes);
  if (!plan.ok) throw new RangeError(plan.error.message);
  const bytes = new Random(deriveSeed(scenario.file.contentSeed ?? scenario.seed, 'file')).bytes(
    scenario.file.sizeBytes,
  );
  return { bytes, geometry: plan.geometry };
}

export class Simulator {
  private readonly queue = new EventQueue<SimEvent>();
  private readonly network: Network;
  private readonly nodes = new Map<string, SimNode>();
  private readonly peerIds: string[] = [];
  private readonly trace = createHash('sha256');
  private readonly geometry: Geometry;
  private readonly canonical: Uint8Array[];
  private readonly pieceHashes: Uint8Array[];
  private readonly infoHash: Uint8Array;
  private readonly activityCounts: Record<string, number> = {};
  private readonly touched = new Set<SimNode>();
  private readonly byFingerprint = new Map<number, number[]>();
  /** Spare chunk buffers handed back after a write, reused by the engines: less garbage. */
  private readonly bufferPool = new Map<number, Uint8Array[]>();

  /**
   * SHA-1 as the engines see it, with a shortcut: a buffer equal to a file chunk (a memory compare,
   * far cheaper than hashing) has that chunk's hash. Anything else is really hashed, so the result is
   * always the true SHA-1 and corrupt data is still caught.
   */
  private readonly engineSha1: Sha1 = (data) => {
    for (const index of this.byFingerprint.get(fingerprint(data)) ?? []) {
      const chunk = this.canonical[index] as Uint8Array;
      if (chunk.length === data.length && Buffer.compare(chunk, data) === 0)
        return this.pieceHashes[index] as Uint8Array;
    }
    return sha1(data);
  };

  private readonly allocateChunk = (lengthBytes: number): Uint8Array =>
    this.bufferPool.get(lengthBytes)?.pop() ?? new Uint8Array(lengthBytes);
  private nowUs = 0;
  private events = 0;
  private failure: SimFailure | undefined;
  private readonly faults: Fault[];
  private readonly healAtMs: number;
  private readonly watch: WireWatch | undefined;
  readonly seed: number;

  constructor(
    readonly scenario: Scenario,
    private readonly options: SimOptions = {},
  ) {
    this.seed = options.seed ?? scenario.seed;
    const file = scenarioFile(scenario);
    this.geometry = file.geometry;
    this.canonical = [];
    for (let i = 0; i < this.geometry.pieceCount; i++) {
      const start = i * this.geometry.pieceLengthBytes;
      this.canonical.push(
        file.bytes.subarray(start, Math.min(start + this.geometry.pieceLengthBytes, file.bytes.length)),
      );
    }
    this.pieceHashes = this.canonical.map((chunk) => sha1(chunk));
    this.canonical.forEach((chunk, index) => {
      const key = fingerprint(chunk);
      const list = this.byFingerprint.get(key) ?? [];
      list.push(index);
      this.byFingerprint.set(key, list);
    });
    const torrent = createTorrent(
      {
        name: `${scenario.name ?? 'scenario'}.bin`,
        totalLengthBytes: this.geometry.totalLengthBytes,
        pieceLengthBytes: this.geometry.pieceLengthBytes,
        pieceHashes: this.pieceHashes,
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
      {
        accepted: (node, endpoint, remote) => {
          const local = this.localEndpoint(node, endpoint);
          if (local !== undefined) this.touch(node)?.handleAccepted(this.nowMs(), local, remote);
        },
        connected: (node, endpoint) => {
          const local = this.localEndpoint(node, endpoint);
          if (local !== undefined) this.touch(node)?.handleConnected(this.nowMs(), local);
        },
        data: (node, endpoint, bytes) => {
          const local = this.localEndpoint(node, endpoint);
          if (local !== undefined) this.touch(node)?.handleData(this.nowMs(), local, bytes);
        },
        closed: (node, endpoint, reason) => {
          const local = this.localEndpoint(node, endpoint);
          if (local !== undefined) this.touch(node)?.handleClosed(this.nowMs(), local, reason);
        },
        drained: (node) => this.queue.push(this.nowUs, { kind: 'drained', node }),
      },
      () => this.nowUs,
    );
    this.faults = planFaults(
      scenario,
      this.seed,
      planPeers(scenario).map((peer) => peer.id),
    );
    this.healAtMs = healTimeMs(scenario, this.faults);
    this.watch = scenario.invariants === 'full' ? new WireWatch(this.geometry) : undefined;
    this.build();
    for (const [index, fault] of this.faults.entries())
      this.queue.push(fault.atMs * 1000, { kind: 'fault', index });
    if (this.faults.length > 0) this.queue.push(this.healAtMs * 1000, { kind: 'heal' });
  }

  private nowMs(): number {
    return Math.floor(this.nowUs / 1000);
  }

  /**
   * Network endpoint names carry the node's incarnation: a restarted engine reuses its connection
   * ids ("out:1"), and the dead incarnation's late resets and bytes must never reach the new one.
   * Inbound ids come from the network and are unique already.
   */
  private networkEndpoint(node: SimNode, connection: string): string {
    return connection.startsWith('in:') ? connection : `${node.generation}/${connection}`;
  }

  private localEndpoint(id: string, endpoint: string): string | undefined {
    const slash = endpoint.indexOf('/');
    if (slash < 0) return endpoint;
    const node = this.nodes.get(id);
    return node !== undefined && endpoint.slice(0, slash) === String(node.generation)
      ? endpoint.slice(slash + 1)
      : undefined;
  }

  /** The node's engine, marking the node as having effects to carry out. */
  private touch(id: string): Engine | undefined {
    const node = this.nodes.get(id);
    if (node?.engine === undefined) return undefined;
    this.touched.add(node);
    return node.engine;
  }

  private build(): void {
    const { scenario } = this;
    const plans = planPeers(scenario);
    const owner = this.addNode(scenario.owner.id, 'owner', undefined, scenario.owner);
    const topologyRandom = new Random(deriveSeed(this.seed, 'topology'));
    for (const plan of plans) {
      this.addNode(plan.id, 'peer', plan, plan);
      this.peerIds.push(plan.id);
    }
    // Who knows whom: both ends of every edge, as a tracker's peer list would tell them, so either
    // end can reconnect after a fault. Both may dial; the engines keep one connection per pair.
    const addressOf = (id: string): string => (this.nodes.get(id) as SimNode).address;
    for (const plan of plans) {
      const node = this.nodes.get(plan.id) as SimNode;
      node.peers.push({ address: owner.address, role: 'owner' });
      if (scenario.topology.kind === 'ring' && plan.downloadFrom !== undefined) {
        node.peers.push({ address: addressOf(plan.downloadFrom), role: 'download-neighbour' });
        (this.nodes.get(plan.downloadFrom) as SimNode).dialledBy.push(plan.id);
      }
    }
    if (scenario.topology.kind === 'full') {
      plans.forEach((plan, index) => {
        for (let j = 0; j < index; j++) {
          (this.nodes.get(plan.id) as SimNode).peers.push({
            address: addressOf((plans[j] as PeerPlan).id),
            role: 'neighbour',
          });
          (this.nodes.get((plans[j] as PeerPlan).id) as SimNode).dialledBy.push(plan.id);
        }
      });
    }
    if (scenario.topology.kind === 'mesh') {
      for (const [a, b] of meshEdges(plans.length, scenario.topology.degree ?? 4, topologyRandom)) {
        // The later joiner dials the earlier one, which is then already listening.
        const [dialer, target] =
          (plans[a] as PeerPlan).joinAtMs >= (plans[b] as PeerPlan).joinAtMs ? [a, b] : [b, a];
        (this.nodes.get((plans[dialer] as PeerPlan).id) as SimNode).peers.push({
          address: addressOf((plans[target] as PeerPlan).id),
          role: 'neighbour',
        });
        (this.nodes.get((plans[target] as PeerPlan).id) as SimNode).dialledBy.push(
          (plans[dialer] as PeerPlan).id,
        );
      }
    }
    for (const plan of plans) {
      const node = this.nodes.get(plan.id) as SimNode;
      for (const id of node.dialledBy) {
        if (!node.peers.some((peer) => peer.address === addressOf(id))) {
          node.peers.push({ address: addressOf(id), role: 'neighbour' });
        }
      }
    }
    this.startEngine(owner);
    for (const plan of plans) this.queue.push(plan.joinAtMs * 1000, { kind: 'join', node: plan.id });
  }

  private addNode(
    id: string,
    role: 'owner' | 'peer',
    plan: PeerPlan | undefined,
    capacities: { uploadBytesPerSecond: number; downloadBytesPerSecond: number; latencyMs: number },
  ): SimNode {
    const node: SimNode = {
      id,
      role,
      address: `${id}:6881`,
      plan,
      crashed: false,
      left: false,
      corrupt: false,
      diskFullUntilMs: 0,
      blockNext: new Set(),
      moves: 0,
      joined: role === 'owner',
      dialledBy: [],
      normalUploadBytesPerSecond: capacities.uploadBytesPerSecond,
      engine: undefined,
      generation: 0,
      timerAtMs: undefined,
      disk: new Map(),
      fromOwner: new Bitfield(this.geometry.pieceCount),
      pendingReads: [],
      peers: [],
      completedAtMs: undefined,
      readsInFlight: 0,
      totals: { chunksFromOwner: 0, chunksFromPeers: 0, bytesUp: 0, bytesDown: 0 },
    };
    if (role === 'owner') {
      for (const [index, chunk] of this.canonical.entries()) node.disk.set(index, chunk);
    }
    this.nodes.set(id, node);
    this.network.addNode({ id, ...capacities });
    return node;
  }

  private startEngine(node: SimNode): void {
    const random = new Random(deriveSeed(this.seed, `node:${node.id}:${node.generation}`));
    const have = new Bitfield(this.geometry.pieceCount);
    for (const [index, bytes] of node.disk)
      if (bytesEqual(sha1(bytes), this.pieceHashes[index] as Uint8Array)) have.set(index);
    const policies = this.scenario.policies;
    const peerCount = this.peerIds.length || planPeers(this.scenario).length;
    node.engine = new Engine({
      role: node.role,
      name: node.id,
      peerId: makePeerId(node.id, random),
      infoHash: this.infoHash,
      pieceHashes: this.pieceHashes,
      geometry: this.geometry,
      sha1: this.engineSha1,
      ...(this.scenario.testing?.disableChunkVerification === true ? { unsafeSkipVerification: true } : {}),
      allocateChunk: this.allocateChunk,
      random,
      have,
      fromOwner: node.fromOwner,
      topology: this.scenario.topology.kind,
      picker: policies.picker,
      phases: policies.phases,
      endgame: policies.endgame,
      ownerAdvertising: policies.ownerAdvertising,
      ownerShareChunks:
        policies.ownerShareChunks ?? Math.ceil(this.geometry.pieceCount / Math.max(1, peerCount)),
      ...(node.role === 'owner' && policies.ownerUploadSlots !== undefined
        ? { uploadSlots: policies.ownerUploadSlots }
        : {}),
      ...(node.role === 'peer' && policies.uploadSlots !== undefined
        ? { uploadSlots: policies.uploadSlots }
        : {}),
      ...(this.options.limits === undefined && policies.requestQueueMs === undefined
        ? {}
        : {
            limits: {
              ...(policies.requestQueueMs === undefined ? {} : { requestQueueMs: policies.requestQueueMs }),
              ...this.options.limits,
            },
          }),
    });
    this.network.listen(node.address, node.id);
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
        this.network.connect(node.id, this.networkEndpoint(node, effect.connection), effect.address);
        return;
      case 'send': {
        let bytes = effect.bytes;
        const isBlock = node.blockNext.delete(effect.connection);
        if (bytes.length === 13 && bytes[4] === 7) node.blockNext.add(effect.connection);
        if (isBlock && node.corrupt && bytes.length > 0) {
          bytes = bytes.slice();
          bytes[0] = (bytes[0] as number) ^ 0xff;
        }
        if (this.watch !== undefined) {
          const link = this.network.linkOf(node.id, this.networkEndpoint(node, effect.connection));
          const broken =
            link === undefined ? undefined : this.watch.sent(link.id, link.client, bytes, this.nowMs());
          if (broken !== undefined) this.fail('invariant', `${node.id}: ${broken}`);
        }
        this.network.send(node.id, this.networkEndpoint(node, effect.connection), bytes);
        return;
      }
      case 'close':
        this.network.close(node.id, this.networkEndpoint(node, effect.connection));
        return;
      case 'read-block':
        node.pendingReads.push(effect);
        this.pumpReads(node);
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
          this.checkAdvertised(node, effect.event.list);
        }
        return;
      case 'complete':
        node.completedAtMs ??= this.nowMs();
        return;
    }
  }

  /** Answers waiting block reads, oldest first, while the node's uplink queue has room. */
  private pumpReads(node: SimNode): void {
    while (
      node.pendingReads.length > 0 &&
      node.readsInFlight === 0 &&
      this.network.queuedBytes(node.id) < HIGH_WATER_BYTES
    ) {
      const effect = node.pendingReads.shift() as Effect & { kind: 'read-block' };
      node.readsInFlight++;
      this.queue.push(this.nowUs, {
        ...effect,
        kind: 'read-done',
        node: node.id,
        generation: node.generation,
      });
    }
  }

  private onActivity(node: SimNode, event: ActivityEvent): void {
    this.activityCounts[event.kind] = (this.activityCounts[event.kind] ?? 0) + 1;
    if (event.kind === 'chunk-received') {
      if (event.fromOwner) node.totals.chunksFromOwner++;
      else node.totals.chunksFromPeers++;
    }
    const line = formatActivityLine(this.nowMs(), node.id, event);
    this.trace.update(line);
    this.trace.update('\n');
    this.options.onLine?.(line);
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'join': {
        const node = this.nodes.get(event.node) as SimNode;
        node.joined = true;
        if (!node.crashed) this.startEngine(node);
        return;
      }
      case 'fault':
        this.startFault(this.faults[event.index] as Fault, event.index);
        return;
      case 'fault-over':
        this.endFault(this.faults[event.index] as Fault);
        return;
      case 'restart': {
        const node = this.nodes.get(event.node) as SimNode;
        if (node.crashed && !node.left) this.restart(node, event.move);
        return;
      }
      case 'heal':
        this.heal();
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
        if (node !== undefined) this.pumpReads(node);
        return;
      }
      case 'read-done': {
        const node = this.nodes.get(event.node);
        if (node?.engine === undefined || event.generation !== node.generation) return;
        const chunk = node.disk.get(event.index);
        const bytes = chunk?.subarray(event.begin, event.begin + event.length);
        node.engine.handleBlockRead(this.nowMs(), event.connection, event.index, event.begin, bytes);
        node.readsInFlight--;
        this.drain(node);
        this.pumpReads(node);
        return;
      }
      case 'write-done': {
        const node = this.nodes.get(event.node);
        if (node?.engine === undefined || event.generation !== node.generation) return;
        if (this.nowMs() < node.diskFullUntilMs) {
          node.engine.handleChunkWritten(this.nowMs(), event.index, 'disk full (ENOSPC)');
          this.drain(node);
          return;
        }
        const canonical = this.canonical[event.index] as Uint8Array;
        // Identical chunks share the owner's buffer, so a 200-peer run does not hold 200 copies.
        const same = event.bytes.length === canonical.length && Buffer.compare(event.bytes, canonical) === 0;
        if (!same) {
          this.fail(
            'invariant',
            `unverified-chunk-stored: ${node.id} stored chunk ${event.index} with bytes that differ from the file`,
          );
        }
        node.disk.set(event.index, same ? canonical : event.bytes.slice());
        node.engine.handleChunkWritten(this.nowMs(), event.index, undefined);
        // Only once the engine is done with the buffer may another chunk reuse it.
        if (same) {
          const spare = this.bufferPool.get(event.bytes.length) ?? [];
          if (spare.length < 64) spare.push(event.bytes);
          this.bufferPool.set(event.bytes.length, spare);
        }
        this.drain(node);
        return;
      }
      default: {
        this.network.handle(event);
        for (const node of this.touched) this.drain(node);
        this.touched.clear();
      }
    }
  }

  private fail(kind: SimFailure['kind'], message: string): void {
    this.failure ??= { kind, message, atMs: this.nowMs() };
  }

  /** Every honest peer has the file (a lying peer need not finish). */
  private allComplete(): boolean {
    for (const id of this.peerIds) {
      const node = this.nodes.get(id) as SimNode;
      if (!node.corrupt && node.completedAtMs === undefined) return false;
    }
    return true;
  }

  // ---- faults --------------------------------------------------------------------------------

  private startFault(fault: Fault, index: number): void {
    const end = faultEndMs(fault);
    switch (fault.kind) {
      case 'reset':
        this.network.resetNode(fault.node, 'connection reset', false);
        return;
      case 'crash':
      case 'move': {
        const node = this.nodes.get(fault.node) as SimNode;
        if (node.crashed) return;
        this.crash(node);
        if (end !== undefined) {
          this.queue.push(end * 1000, { kind: 'restart', node: node.id, move: fault.kind === 'move' });
        }
        return;
      }
      case 'owner-leave': {
        const owner = this.nodes.get(this.scenario.owner.id) as SimNode;
        if (owner.left) return;
        if (!this.everyChunkOnALivePeer()) {
          // Not yet: the owner leaves only once the swarm holds every chunk.
          this.queue.push(this.nowUs + 100_000, { kind: 'fault', index });
          return;
        }
        owner.left = true;
        this.crash(owner);
        return;
      }
      case 'partition': {
        const group = new Set(fault.nodes);
        for (const a of group)
          for (const b of this.nodes.keys()) if (!group.has(b)) this.network.partition(a, b);
        break;
      }
      case 'slow':
        this.network.setUploadCapacity(fault.node, fault.uploadBytesPerSecond);
        break;
      case 'corrupt':
        (this.nodes.get(fault.node) as SimNode).corrupt = true;
        return;
      case 'disk-full': {
        const node = this.nodes.get(fault.node) as SimNode;
        node.diskFullUntilMs = Math.max(node.diskFullUntilMs, end ?? Number.POSITIVE_INFINITY);
        return;
      }
    }
    if (end !== undefined) this.queue.push(end * 1000, { kind: 'fault-over', index });
  }

  private endFault(fault: Fault): void {
    if (fault.kind === 'partition') {
      const group = new Set(fault.nodes);
      for (const a of group) for (const b of this.nodes.keys()) if (!group.has(b)) this.network.heal(a, b);
    } else if (fault.kind === 'slow') {
      const node = this.nodes.get(fault.node) as SimNode;
      this.network.setUploadCapacity(node.id, node.normalUploadBytesPerSecond);
    }
  }

  /** The faulty phase is over: partitions heal, capacities and disks recover, the crashed restart. */
  private heal(): void {
    this.network.healAll();
    for (const node of this.nodes.values()) {
      this.network.setUploadCapacity(node.id, node.normalUploadBytesPerSecond);
      if (node.diskFullUntilMs > this.nowMs()) node.diskFullUntilMs = 0;
      if (node.crashed && !node.left) this.restart(node, false);
    }
  }

  /** Memory is lost, the disk is kept; its connections are reset under the others' feet. */
  private crash(node: SimNode): void {
    const stats = node.engine?.getStats();
    node.totals.bytesUp += stats?.bytesUp ?? 0;
    node.totals.bytesDown += stats?.bytesDown ?? 0;
    node.engine = undefined;
    node.crashed = true;
    node.generation++;
    node.timerAtMs = undefined;
    node.pendingReads.length = 0;
    node.readsInFlight = 0;
    node.blockNext.clear();
    this.touched.delete(node);
    this.network.unlisten(node.address);
    this.network.resetNode(node.id, 'connection reset', true);
  }

  /** Starts the node again from its disk; after a move, on a new port the others are told of. */
  private restart(node: SimNode, move: boolean): void {
    node.crashed = false;
    if (move) {
      const old = node.address;
      node.moves++;
      node.address = `${node.id}:${6881 + node.moves}`;
      for (const other of this.nodes.values()) {
        const entry = other.peers.find((peer) => peer.address === old);
        if (entry === undefined) continue;
        entry.address = node.address;
        if (other.engine === undefined) continue;
        other.engine.handlePeers(this.nowMs(), [{ address: node.address, role: entry.role }]);
        this.drain(other);
      }
    }
    if (!node.joined) return;
    this.startEngine(node);
    // Neighbours that finished dial nobody, so the restarted node reaches out (a tracker's peer list).
    const inbound = node.dialledBy.map((id) => ({
      address: (this.nodes.get(id) as SimNode).address,
      role: 'neighbour' as const,
    }));
    if (inbound.length > 0 && node.engine !== undefined) {
      node.engine.handlePeers(this.nowMs(), inbound);
      this.drain(node);
    }
  }

  private everyChunkOnALivePeer(): boolean {
    for (let index = 0; index < this.geometry.pieceCount; index++) {
      let held = false;
      for (const id of this.peerIds) {
        const node = this.nodes.get(id) as SimNode;
        if (!node.crashed && !node.corrupt && node.disk.get(index) === this.canonical[index]) {
          held = true;
          break;
        }
      }
      if (!held) return false;
    }
    return true;
  }

  // ---- invariants ----------------------------------------------------------------------------

  /** Nothing is advertised that is not verified and on the node's disk. */
  private checkAdvertised(node: SimNode, list: ListSummary): void {
    let indices: readonly number[] = [];
    if (list.form === 'have') indices = [list.chunk];
    else if (list.form === 'bitfield') indices = list.chunks;
    else if (list.form === 'have-all') indices = this.canonical.map((_, index) => index);
    for (const index of indices) {
      if (node.disk.get(index) !== this.canonical[index]) {
        this.fail(
          'invariant',
          `unverified-chunk-advertised: ${node.id} advertised chunk ${index} it does not hold`,
        );
        return;
      }
    }
  }

  /** At the end: every honest peer holds the exact file, and no request went unanswered. */
  private finalChecks(): void {
    if (this.scenario.invariants === 'off' || this.failure !== undefined) return;
    for (const id of this.peerIds) {
      const node = this.nodes.get(id) as SimNode;
      if (node.corrupt || node.completedAtMs === undefined) continue;
      for (let index = 0; index < this.geometry.pieceCount; index++) {
        if (node.disk.get(index) !== this.canonical[index]) {
          this.fail('invariant', `wrong-file: ${id} finished without the exact chunk ${index}`);
          return;
        }
      }
    }
    const broken = this.watch?.unanswered(this.nowMs(), UNANSWERED_AFTER_MS, (link) =>
      this.network.isAlive(link),
    );
    if (broken !== undefined) this.fail('invariant', broken);
  }

  run(): SimResult {
    const limitUs = this.scenario.maxSimulatedMs * 1000;
    while (this.failure === undefined && !this.allComplete()) {
      const next = this.queue.pop();
      if (next === undefined) {
        this.fail('incomplete', 'nothing left to happen, but some peers are not complete');
        break;
      }
      if (next.timeUs > limitUs) {
        this.nowUs = limitUs;
        this.fail('time-limit', `not complete after ${this.scenario.maxSimulatedMs} ms of simulated time`);
        break;
      }
      const livenessDeadlineUs = (this.healAtMs + this.scenario.livenessBoundMs) * 1000;
      if (this.faults.length > 0 && next.timeUs > livenessDeadlineUs) {
        this.nowUs = livenessDeadlineUs;
        this.fail(
          'liveness',
          `liveness: not every live peer finished within ${this.scenario.livenessBoundMs} ms of healing at ${this.healAtMs} ms`,
        );
        break;
      }
      this.nowUs = next.timeUs;
      this.events++;
      this.handle(next.event);
    }
    this.finalChecks();
    return this.report();
  }

  private report(): SimResult {
    const fileHash = createHash('sha256');
    for (const chunk of this.canonical) fileHash.update(chunk);
    const fileSha256OfFile = fileHash.digest('hex');
    const peers: PeerReport[] = this.peerIds.map((id) => {
      const node = this.nodes.get(id) as SimNode;
      const stats = node.engine?.getStats();
      let fileSha256: string | null = null;
      if (node.disk.size === this.geometry.pieceCount) {
        // A disk holding the file's own chunk buffers holds the file; anything else is hashed.
        const shared = this.canonical.every((chunk, index) => node.disk.get(index) === chunk);
        if (shared) fileSha256 = fileSha256OfFile;
        else {
          const hash = createHash('sha256');
          for (let i = 0; i < this.geometry.pieceCount; i++) hash.update(node.disk.get(i) as Uint8Array);
          fileSha256 = hash.digest('hex');
        }
      }
      return {
        id,
        complete: node.completedAtMs !== undefined,
        fileSha256,
        completedAtMs: node.completedAtMs ?? null,
        chunksFromOwner: node.totals.chunksFromOwner,
        chunksFromPeers: node.totals.chunksFromPeers,
        bytesUp: node.totals.bytesUp + (stats?.bytesUp ?? 0),
        bytesDown: node.totals.bytesDown + (stats?.bytesDown ?? 0),
      };
    });
    const plans = planPeers(this.scenario);
    const ownerNode = this.nodes.get(this.scenario.owner.id) as SimNode;
    return {
      scenario: this.scenario.name ?? 'scenario',
      seed: this.seed,
      digest: this.trace.copy().digest('hex'),
      simulatedMs: Math.max(0, ...peers.map((peer) => peer.completedAtMs ?? this.nowMs())),
      lowerBoundMs: lowerBoundMs(
        this.geometry.totalLengthBytes,
        this.scenario.owner.uploadBytesPerSecond,
        plans,
      ),
      fileSha256: fileSha256OfFile,
      peers,
      owner: { bytesUp: ownerNode.engine?.getStats().bytesUp ?? 0 },
      activityCounts: { ...this.activityCounts },
      events: this.events,
      faults: this.faults.map(describeFault),
      failure: this.failure,
    };
  }
}

/** A cheap key for a chunk-sized buffer: its length and first four bytes. */
function fingerprint(data: Uint8Array): number {
  const head =
    data.length >= 4
      ? ((data[0] as number) | ((data[1] as number) << 8) | ((data[2] as number) << 16)) +
        (data[3] as number) * 0x1000000
      : 0;
  return data.length * 0x100000000 + head;
}

export function runScenario(scenario: Scenario, options: SimOptions = {}): SimResult {
  return new Simulator(scenario, options).run();
}
