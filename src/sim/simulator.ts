/**
 * The deterministic simulator: many engines over the modelled network and an in-memory disk, on one
 * event queue in virtual time. One master seed decides everything; the same scenario and seed give
 * the same trace, byte for byte, on any machine.
 */
import { createHash } from 'node:crypto';
import { type ActivityEvent, formatActivityLine } from '../engine/activity.ts';
import { Bitfield } from '../engine/bitfield.ts';
import { type Geometry, planChunks } from '../engine/chunking.ts';
import { type Effect, Engine, type EngineLimits, type PeerRole } from '../engine/engine.ts';
import { bytesEqual, type Sha1 } from '../engine/hash.ts';
import { createTorrent } from '../engine/metainfo.ts';
import { makePeerId } from '../engine/peer-id.ts';
import { deriveSeed, Random } from '../engine/random.ts';
import { EventQueue } from './event-queue.ts';
import { Network, type NetworkEvent } from './network.ts';
import { type PeerPlan, planPeers, type Scenario } from './scenario.ts';

export const sha1: Sha1 = (data) => new Uint8Array(createHash('sha1').update(data).digest());

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
  readonly kind: 'incomplete' | 'invariant' | 'time-limit';
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
  readonly address: string;
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
        accepted: (node, endpoint, remote) =>
          this.touch(node)?.handleAccepted(this.nowMs(), endpoint, remote),
        connected: (node, endpoint) => this.touch(node)?.handleConnected(this.nowMs(), endpoint),
        data: (node, endpoint, bytes) => this.touch(node)?.handleData(this.nowMs(), endpoint, bytes),
        closed: (node, endpoint, reason) => this.touch(node)?.handleClosed(this.nowMs(), endpoint, reason),
        drained: (node) => this.queue.push(this.nowUs, { kind: 'drained', node }),
      },
      () => this.nowUs,
    );
    this.build();
  }

  private nowMs(): number {
    return Math.floor(this.nowUs / 1000);
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
    // Who dials whom. Each pair is dialled from one side only, so no connection is made twice.
    const addressOf = (id: string): string => (this.nodes.get(id) as SimNode).address;
    for (const plan of plans) {
      const node = this.nodes.get(plan.id) as SimNode;
      node.peers.push({ address: owner.address, role: 'owner' });
      if (scenario.topology.kind === 'ring' && plan.downloadFrom !== undefined) {
        node.peers.push({ address: addressOf(plan.downloadFrom), role: 'download-neighbour' });
      }
    }
    if (scenario.topology.kind === 'full') {
      plans.forEach((plan, index) => {
        for (let j = 0; j < index; j++) {
          (this.nodes.get(plan.id) as SimNode).peers.push({
            address: addressOf((plans[j] as PeerPlan).id),
            role: 'neighbour',
          });
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
      ...(this.options.limits === undefined ? {} : { limits: this.options.limits }),
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
        this.network.connect(node.id, effect.connection, effect.address);
        return;
      case 'send':
        this.network.send(node.id, effect.connection, effect.bytes);
        return;
      case 'close':
        this.network.close(node.id, effect.connection);
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
        this.startEngine(node);
        return;
      }
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
        const canonical = this.canonical[event.index] as Uint8Array;
        // Identical chunks share the owner's buffer, so a 200-peer run does not hold 200 copies.
        const same = event.bytes.length === canonical.length && Buffer.compare(event.bytes, canonical) === 0;
        if (!same) {
          this.fail(
            'invariant',
            `${node.id} stored chunk ${event.index} with bytes that differ from the file`,
          );
        }
        node.disk.set(event.index, same ? canonical : event.bytes.slice());
        if (same) {
          const spare = this.bufferPool.get(event.bytes.length) ?? [];
          if (spare.length < 64) spare.push(event.bytes);
          this.bufferPool.set(event.bytes.length, spare);
        }
        node.engine.handleChunkWritten(this.nowMs(), event.index, undefined);
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

  private allComplete(): boolean {
    for (const id of this.peerIds)
      if ((this.nodes.get(id) as SimNode).completedAtMs === undefined) return false;
    return true;
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
      this.nowUs = next.timeUs;
      this.events++;
      this.handle(next.event);
    }
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

/** Undirected edges of a random graph where every node has at least `degree` neighbours. */
export function meshEdges(count: number, degree: number, random: Random): [number, number][] {
  const edges = new Set<string>();
  const out: [number, number][] = [];
  const wanted = Math.min(degree, count - 1);
  const neighbours: Set<number>[] = Array.from({ length: count }, () => new Set<number>());
  for (let node = 0; node < count; node++) {
    const others: number[] = [];
    for (let other = 0; other < count; other++)
      if (other !== node && !neighbours[node]?.has(other)) others.push(other);
    random.shuffle(others);
    for (const other of others) {
      if ((neighbours[node] as Set<number>).size >= wanted) break;
      const key = node < other ? `${node}-${other}` : `${other}-${node}`;
      if (edges.has(key)) continue;
      edges.add(key);
      out.push(node < other ? [node, other] : [other, node]);
      (neighbours[node] as Set<number>).add(other);
      (neighbours[other] as Set<number>).add(node);
    }
  }
  return out;
}

export function runScenario(scenario: Scenario, options: SimOptions = {}): SimResult {
  return new Simulator(scenario, options).run();
}
