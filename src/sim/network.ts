/**
 * The modelled network: reliable, ordered byte streams between nodes. Each node has an uplink that
 * serves its outgoing streams round-robin at its upload capacity and a downlink that drains arriving
 * segments at its download capacity; links add latency. Streams are cut into segments of random size
 * and, now and then, two segments are handed over together, so receivers see arbitrary splits and
 * merges. Pure and deterministic: time is virtual (microseconds), randomness comes from the seed.
 */
import type { Random } from '../engine/random.ts';
import type { EventQueue } from './event-queue.ts';

export interface NetworkNode {
  readonly id: string;
  uploadBytesPerSecond: number;
  downloadBytesPerSecond: number;
  latencyMs: number;
}

/** What the network tells the simulator. Endpoint ids are the ids engines use for connections. */
export interface NetworkListener {
  accepted(node: string, endpoint: string, remoteAddress: string): void;
  connected(node: string, endpoint: string): void;
  /** `bytes` are lent for the call only: a merged buffer is reused for the next merge. */
  data(node: string, endpoint: string, bytes: Uint8Array): void;
  closed(node: string, endpoint: string, reason: string): void;
  /** The node's uplink finished a segment: it may have room for more. */
  drained(node: string): void;
}

interface Segment {
  readonly stream: Stream;
  readonly parts: Uint8Array[];
  readonly lengthBytes: number;
  /** A FIN: the sender closed after everything before it. */
  readonly fin: boolean;
}

interface Stream {
  readonly from: string;
  readonly to: string;
  readonly fromEndpoint: string;
  readonly toEndpoint: string;
  readonly queue: Uint8Array[];
  queuedBytes: number;
  /** Offset into queue[0] already cut into segments. */
  headOffset: number;
  finQueued: boolean;
  finSent: boolean;
  /** Delivered segments held back to be merged with the next one. */
  held: Uint8Array[];
  /** How many segments `held` came from. */
  heldSegments: number;
  segmentsInFlight: number;
  dead: boolean;
}

interface Uplink {
  busyUntilUs: number;
  busy: boolean;
  /** Streams with something to send, served round-robin. */
  readonly ready: Stream[];
}

interface Downlink {
  busy: boolean;
  readonly queue: Segment[];
}

export type NetworkEvent =
  | {
      readonly kind: 'syn';
      readonly from: string;
      readonly fromEndpoint: string;
      readonly to: string;
      readonly address: string;
      readonly linkId: number;
    }
  | { readonly kind: 'syn-ack'; readonly linkId: number; readonly ok: boolean }
  | { readonly kind: 'uplink-done'; readonly node: string; readonly segment: Segment }
  | { readonly kind: 'arrive'; readonly segment: Segment }
  | { readonly kind: 'downlink-done'; readonly node: string; readonly segment: Segment }
  | {
      readonly kind: 'reset';
      readonly node: string;
      readonly endpoint: string;
      readonly linkId: number;
      readonly reason: string;
    };

interface Connection {
  readonly id: number;
  readonly clientNode: string;
  readonly clientEndpoint: string;
  serverNode: string;
  serverEndpoint: string;
  up: Stream | undefined;
  down: Stream | undefined;
  dead: boolean;
  established: boolean;
}

export interface NetworkOptions {
  readonly maxSegmentBytes: number;
  readonly mergePercent: number;
  /** Queued bytes above which an endpoint's reads are held back (backpressure). */
  readonly highWaterBytes: number;
}

export class Network {
  private readonly nodes = new Map<string, NetworkNode>();
  private readonly listeners = new Map<string, string>(); // address -> node
  private readonly uplinks = new Map<string, Uplink>();
  private readonly downlinks = new Map<string, Downlink>();
  private readonly connections = new Map<number, Connection>();
  private readonly byEndpoint = new Map<string, Connection>(); // `${node}/${endpoint}`
  private readonly partitions = new Set<string>();
  private nextLinkId = 1;
  private nextInboundId = 1;
  bytesDelivered = 0;
  /** Bytes each node has queued on all its streams, not yet on the wire. */
  private readonly nodeQueued = new Map<string, number>();
  /** Where merged segments are glued together; grows to the largest merge, reused for every one. */
  private mergeBuffer = new Uint8Array(0);

  constructor(
    private readonly queue: EventQueue<NetworkEvent | { kind: string }>,
    private readonly random: Random,
    private readonly options: NetworkOptions,
    private readonly listener: NetworkListener,
    private readonly now: () => number,
  ) {}

  addNode(node: NetworkNode): void {
    this.nodes.set(node.id, node);
    this.uplinks.set(node.id, { busyUntilUs: 0, busy: false, ready: [] });
    this.downlinks.set(node.id, { busy: false, queue: [] });
  }

  listen(address: string, node: string): void {
    this.listeners.set(address, node);
  }

  unlisten(address: string): void {
    this.listeners.delete(address);
  }

  /** Cuts the two nodes apart (both directions) until `heal`. */
  partition(a: string, b: string): void {
    this.partitions.add(pairKey(a, b));
    for (const connection of [...this.connections.values()]) {
      const pair = pairKey(connection.clientNode, connection.serverNode);
      if (pair === pairKey(a, b)) this.resetConnection(connection, 'partition');
    }
  }

  heal(a: string, b: string): void {
    this.partitions.delete(pairKey(a, b));
  }

  private cut(a: string, b: string): boolean {
    return this.partitions.has(pairKey(a, b));
  }

  /**
   * Dials `address` (`<node>:<port>` in the simulator). Whether anything listens there is decided
   * when the SYN arrives, so a node that starts listening meanwhile is reached.
   */
  connect(node: string, endpoint: string, address: string): void {
    const host = address.slice(0, address.lastIndexOf(':'));
    const target = this.nodes.has(host) ? host : undefined;
    const linkId = this.nextLinkId++;
    const connection: Connection = {
      id: linkId,
      clientNode: node,
      clientEndpoint: endpoint,
      serverNode: target ?? '',
      serverEndpoint: '',
      up: undefined,
      down: undefined,
      dead: false,
      established: false,
    };
    this.connections.set(linkId, connection);
    this.byEndpoint.set(`${node}/${endpoint}`, connection);
    const latencyUs = this.latencyUs(node, target ?? node);
    this.queue.push(this.now() + latencyUs, {
      kind: 'syn',
      from: node,
      fromEndpoint: endpoint,
      to: target ?? '',
      address,
      linkId,
    });
  }

  handle(event: NetworkEvent): void {
    switch (event.kind) {
      case 'syn':
        this.onSyn(event.linkId, event.address);
        return;
      case 'syn-ack':
        this.onSynAck(event.linkId, event.ok);
        return;
      case 'uplink-done':
        this.onUplinkDone(event.node, event.segment);
        return;
      case 'arrive':
        this.onArrive(event.segment);
        return;
      case 'downlink-done':
        this.onDownlinkDone(event.node, event.segment);
        return;
      case 'reset':
        this.onReset(event.node, event.endpoint, event.linkId, event.reason);
        return;
    }
  }

  private onSyn(linkId: number, address: string): void {
    const connection = this.connections.get(linkId);
    if (connection === undefined || connection.dead) return;
    const target = this.listeners.get(address);
    const ok = target !== undefined && !this.cut(connection.clientNode, target);
    if (ok) connection.serverNode = target;
    const back = this.latencyUs(connection.clientNode, connection.serverNode || connection.clientNode);
    if (ok) {
      connection.serverEndpoint = `in:${this.nextInboundId++}`;
      connection.established = true;
      const up = this.newStream(
        connection.clientNode,
        connection.serverNode,
        connection.clientEndpoint,
        connection.serverEndpoint,
      );
      const down = this.newStream(
        connection.serverNode,
        connection.clientNode,
        connection.serverEndpoint,
        connection.clientEndpoint,
      );
      connection.up = up;
      connection.down = down;
      this.byEndpoint.set(`${connection.serverNode}/${connection.serverEndpoint}`, connection);
      this.listener.accepted(
        connection.serverNode,
        connection.serverEndpoint,
        `${connection.clientNode}:${linkId}`,
      );
    }
    this.queue.push(this.now() + back, { kind: 'syn-ack', linkId, ok });
  }

  private onSynAck(linkId: number, ok: boolean): void {
    const connection = this.connections.get(linkId);
    if (connection === undefined || connection.dead) return;
    if (!ok) {
      this.forgetConnection(connection);
      this.listener.closed(connection.clientNode, connection.clientEndpoint, 'connection refused');
      return;
    }
    this.listener.connected(connection.clientNode, connection.clientEndpoint);
  }

  private newStream(from: string, to: string, fromEndpoint: string, toEndpoint: string): Stream {
    return {
      from,
      to,
      fromEndpoint,
      toEndpoint,
      queue: [],
      queuedBytes: 0,
      headOffset: 0,
      finQueued: false,
      finSent: false,
      held: [],
      heldSegments: 0,
      segmentsInFlight: 0,
      dead: false,
    };
  }

  /** The link an endpoint belongs to, and whether the endpoint dialled it. */
  linkOf(node: string, endpoint: string): { readonly id: number; readonly client: boolean } | undefined {
    const connection = this.byEndpoint.get(`${node}/${endpoint}`);
    if (connection === undefined || connection.dead) return undefined;
    return {
      id: connection.id,
      client: connection.clientNode === node && connection.clientEndpoint === endpoint,
    };
  }

  isAlive(linkId: number): boolean {
    return this.connections.get(linkId)?.dead === false;
  }

  setUploadCapacity(node: string, bytesPerSecond: number): void {
    const entry = this.nodes.get(node);
    if (entry !== undefined) entry.uploadBytesPerSecond = bytesPerSecond;
  }

  uploadCapacity(node: string): number {
    return this.nodes.get(node)?.uploadBytesPerSecond ?? 0;
  }

  healAll(): void {
    this.partitions.clear();
  }

  private outgoing(node: string, endpoint: string): Stream | undefined {
    const connection = this.byEndpoint.get(`${node}/${endpoint}`);
    if (connection === undefined || connection.dead) return undefined;
    return connection.clientNode === node && connection.clientEndpoint === endpoint
      ? connection.up
      : connection.down;
  }

  /** Bytes a node has queued on all its connections but not yet put on its uplink. */
  queuedBytes(node: string): number {
    return this.nodeQueued.get(node) ?? 0;
  }

  private addQueued(node: string, bytes: number): void {
    this.nodeQueued.set(node, (this.nodeQueued.get(node) ?? 0) + bytes);
  }

  send(node: string, endpoint: string, bytes: Uint8Array): void {
    const stream = this.outgoing(node, endpoint);
    if (stream === undefined || stream.finQueued || stream.dead || bytes.length === 0) return;
    stream.queue.push(bytes);
    stream.queuedBytes += bytes.length;
    this.addQueued(node, bytes.length);
    this.makeReady(stream);
  }

  /** A graceful close: what is queued is still delivered, then the remote sees the close. */
  close(node: string, endpoint: string): void {
    const connection = this.byEndpoint.get(`${node}/${endpoint}`);
    this.byEndpoint.delete(`${node}/${endpoint}`);
    if (connection === undefined || connection.dead) return;
    if (!connection.established) {
      this.forgetConnection(connection);
      return;
    }
    const stream =
      connection.clientNode === node && connection.clientEndpoint === endpoint
        ? connection.up
        : connection.down;
    const incoming = stream === connection.up ? connection.down : connection.up;
    if (incoming !== undefined) this.killStream(incoming);
    if (stream === undefined || stream.dead) {
      // The remote closed first (and stopped listening): both ends are done with it.
      this.forgetConnection(connection);
      return;
    }
    if (!stream.finQueued) {
      stream.finQueued = true;
      this.makeReady(stream);
    }
  }

  /** An abrupt reset: queued data is lost and both ends see the close (the remote after latency). */
  resetEndpoint(node: string, endpoint: string, reason: string): void {
    const connection = this.byEndpoint.get(`${node}/${endpoint}`);
    if (connection !== undefined) this.resetConnection(connection, reason);
  }

  /** Every connection of a node is reset; a crashed node itself is told nothing (it is gone). */
  resetNode(node: string, reason: string, crashed: boolean): void {
    for (const connection of [...this.connections.values()]) {
      if (connection.clientNode !== node && connection.serverNode !== node) continue;
      if (crashed) {
        const local = connection.clientNode === node ? connection.clientEndpoint : connection.serverEndpoint;
        this.byEndpoint.delete(`${node}/${local}`);
      }
      this.resetConnection(connection, reason, crashed ? node : undefined);
    }
    if (!crashed) return;
    const uplink = this.uplinks.get(node);
    if (uplink !== undefined) uplink.ready.length = 0;
  }

  private resetConnection(connection: Connection, reason: string, silentNode?: string): void {
    if (connection.dead) return;
    this.forgetConnection(connection);
    const ends: [string, string][] = [[connection.clientNode, connection.clientEndpoint]];
    if (connection.established) ends.push([connection.serverNode, connection.serverEndpoint]);
    for (const [node, endpoint] of ends) {
      if (node === silentNode) continue;
      const other = node === connection.clientNode ? connection.serverNode : connection.clientNode;
      const delayUs = node === silentNode ? 0 : this.latencyUs(node, other || node);
      this.queue.push(this.now() + delayUs, { kind: 'reset', node, endpoint, linkId: connection.id, reason });
    }
  }

  private onReset(node: string, endpoint: string, _linkId: number, reason: string): void {
    this.byEndpoint.delete(`${node}/${endpoint}`);
    this.listener.closed(node, endpoint, reason);
  }

  private forgetConnection(connection: Connection): void {
    connection.dead = true;
    for (const stream of [connection.up, connection.down]) {
      if (stream !== undefined) this.killStream(stream);
    }
    this.connections.delete(connection.id);
  }

  /** A dead stream sends nothing more: what it still had queued no longer counts against its node. */
  private killStream(stream: Stream): void {
    if (stream.dead) return;
    stream.dead = true;
    this.addQueued(stream.from, -stream.queuedBytes);
    stream.queuedBytes = 0;
    stream.queue.length = 0;
  }

  private makeReady(stream: Stream): void {
    const uplink = this.uplinks.get(stream.from);
    if (uplink === undefined) return;
    if (!uplink.ready.includes(stream)) uplink.ready.push(stream);
    this.pumpUplink(stream.from, uplink);
  }

  private pumpUplink(node: string, uplink: Uplink): void {
    while (!uplink.busy && uplink.ready.length > 0) {
      const stream = uplink.ready.shift() as Stream;
      if (stream.dead) continue;
      const segment = this.cutSegment(stream);
      if (segment === undefined) continue;
      if (stream.queuedBytes > 0 || (stream.finQueued && !stream.finSent)) uplink.ready.push(stream);
      const capacity = this.nodes.get(node)?.uploadBytesPerSecond ?? 1;
      const durationUs = Math.ceil((segment.lengthBytes * 1_000_000) / capacity);
      uplink.busy = true;
      uplink.busyUntilUs = this.now() + durationUs;
      stream.segmentsInFlight++;
      this.queue.push(uplink.busyUntilUs, { kind: 'uplink-done', node, segment });
    }
  }

  private cutSegment(stream: Stream): Segment | undefined {
    if (stream.queuedBytes === 0) {
      if (stream.finQueued && !stream.finSent) {
        stream.finSent = true;
        return { stream, parts: [], lengthBytes: 0, fin: true };
      }
      return undefined;
    }
    // At most 50 ms of the uplink's time, so a stalled node (1 B/s) is not stuck behind one huge
    // segment after it recovers.
    const capacity = this.nodes.get(stream.from)?.uploadBytesPerSecond ?? 1;
    const cap = Math.max(1, Math.min(this.options.maxSegmentBytes, Math.floor(capacity / 20)));
    const size = Math.min(stream.queuedBytes, 1 + this.random.nextInt(cap));
    const parts: Uint8Array[] = [];
    let remaining = size;
    while (remaining > 0) {
      const head = stream.queue[0] as Uint8Array;
      const available = head.length - stream.headOffset;
      const take = Math.min(available, remaining);
      parts.push(head.subarray(stream.headOffset, stream.headOffset + take));
      remaining -= take;
      if (take === available) {
        stream.queue.shift();
        stream.headOffset = 0;
      } else {
        stream.headOffset += take;
      }
    }
    stream.queuedBytes -= size;
    this.addQueued(stream.from, -size);
    return { stream, parts, lengthBytes: size, fin: false };
  }

  private onUplinkDone(node: string, segment: Segment): void {
    const uplink = this.uplinks.get(node);
    if (uplink === undefined) return;
    uplink.busy = false;
    this.listener.drained(node);
    if (!segment.stream.dead) {
      const latencyUs = this.latencyUs(segment.stream.from, segment.stream.to);
      this.queue.push(this.now() + latencyUs, { kind: 'arrive', segment });
    }
    this.pumpUplink(node, uplink);
  }

  private onArrive(segment: Segment): void {
    if (segment.stream.dead) return;
    const downlink = this.downlinks.get(segment.stream.to);
    if (downlink === undefined) return;
    downlink.queue.push(segment);
    this.pumpDownlink(segment.stream.to, downlink);
  }

  private pumpDownlink(node: string, downlink: Downlink): void {
    if (downlink.busy) return;
    const segment = downlink.queue.shift();
    if (segment === undefined) return;
    const capacity = this.nodes.get(node)?.downloadBytesPerSecond ?? 1;
    downlink.busy = true;
    this.queue.push(this.now() + Math.ceil((segment.lengthBytes * 1_000_000) / capacity), {
      kind: 'downlink-done',
      node,
      segment,
    });
  }

  private onDownlinkDone(node: string, segment: Segment): void {
    const downlink = this.downlinks.get(node);
    if (downlink !== undefined) downlink.busy = false;
    const stream = segment.stream;
    stream.segmentsInFlight--;
    if (!stream.dead) {
      this.bytesDelivered += segment.lengthBytes;
      if (segment.fin) {
        this.deliverHeld(node, stream);
        this.killStream(stream);
        const connection = this.byEndpoint.get(`${node}/${stream.toEndpoint}`);
        this.byEndpoint.delete(`${node}/${stream.toEndpoint}`);
        if (connection !== undefined) this.forgetConnection(connection);
        this.listener.closed(node, stream.toEndpoint, 'closed by remote');
      } else {
        stream.held.push(...segment.parts);
        stream.heldSegments++;
        // Hold this segment back, now and then, so the receiver gets it merged with the next one.
        const more = stream.segmentsInFlight > 0;
        if (!more || !this.random.chance(this.options.mergePercent, 100)) this.deliverHeld(node, stream);
      }
    }
    if (downlink !== undefined) this.pumpDownlink(node, downlink);
  }

  /**
   * Hands the held bytes to the receiver: as one merged buffer when they came in several segments
   * (so frames arrive glued together), else piece by piece as they were sent, which saves a copy.
   */
  private deliverHeld(node: string, stream: Stream): void {
    const parts = stream.held;
    stream.held = [];
    if (parts.length === 0) return;
    if (stream.heldSegments > 1) {
      stream.heldSegments = 0;
      this.listener.data(node, stream.toEndpoint, this.merge(parts));
      return;
    }
    stream.heldSegments = 0;
    for (const part of parts) this.listener.data(node, stream.toEndpoint, part);
  }

  /** The parts glued together in the reused merge buffer: valid until the next merge. */
  private merge(parts: readonly Uint8Array[]): Uint8Array {
    let totalBytes = 0;
    for (const part of parts) totalBytes += part.length;
    if (totalBytes > this.mergeBuffer.length)
      this.mergeBuffer = new Uint8Array(Math.max(totalBytes, 2 * this.mergeBuffer.length));
    let offset = 0;
    for (const part of parts) {
      this.mergeBuffer.set(part, offset);
      offset += part.length;
    }
    return this.mergeBuffer.subarray(0, totalBytes);
  }

  private latencyUs(a: string, b: string): number {
    const left = this.nodes.get(a)?.latencyMs ?? 0;
    const right = this.nodes.get(b)?.latencyMs ?? 0;
    return Math.round(((left + right) / 2) * 1000);
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
