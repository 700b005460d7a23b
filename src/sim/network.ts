/**
 * The modelled network: reliable, ordered byte streams between nodes. This file is its face and
 * keeps the connections: dialling, accepting, graceful close (a FIN after the queued bytes), resets
 * and partitions. The bytes themselves travel over the nodes' access links (links.ts), with their
 * capacities, latency and random splits and merges. Pure and deterministic: time is virtual
 * (microseconds), randomness comes from the seed.
 */
import type { Random } from '../engine/random.ts';
import type { EventQueue } from './event-queue.ts';
import { type LinkOptions, Links, type Segment, type Stream } from './links.ts';

/** Ephemeral ports (RFC 6335) for connections from a node with an IP address. */
const EPHEMERAL_FIRST_PORT = 49152;
const EPHEMERAL_PORTS = 16384;

export type { Stream } from './links.ts';

export interface NetworkNode {
  readonly id: string;
  /** The host part of the node's addresses: its id, unless the run gives nodes IP addresses (PEX). */
  readonly host?: string;
  uploadBytesPerSecond: number;
  downloadBytesPerSecond: number;
  latencyMs: number;
}

/** What the network tells the simulator. Endpoint ids are the ids engines use for connections. */
export interface NetworkListener {
  accepted(node: string, endpoint: string, remoteAddress: string): void;
  connected(node: string, endpoint: string): void;
  /**
   * Bytes for `stream.to`'s endpoint `stream.toEndpoint`. `bytes` are lent for the call only: a
   * merged buffer is reused for the next merge. The listener may keep a note in `stream.sink`.
   */
  data(stream: Stream, bytes: Uint8Array): void;
  closed(node: string, endpoint: string, reason: string): void;
  /** The node's uplink finished a segment: it may have room for more. */
  drained(node: string): void;
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
  | Segment
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

export interface NetworkOptions extends LinkOptions {
  /** Queued bytes above which an endpoint's reads are held back (backpressure). */
  readonly highWaterBytes: number;
}

export class Network {
  private readonly nodes = new Map<string, NetworkNode>();
  /** Host part of an address -> node id. */
  private readonly hosts = new Map<string, string>();
  private readonly queue: EventQueue<NetworkEvent | { kind: string }>;
  private readonly listeners = new Map<string, string>(); // address -> node
  private readonly connections = new Map<number, Connection>();
  private readonly byEndpoint = new Map<string, Connection>(); // `${node}/${endpoint}`
  private readonly partitions = new Set<string>();
  private nextLinkId = 1;
  private nextInboundId = 1;
  private readonly links: Links;

  constructor(
    queue: EventQueue<NetworkEvent | { kind: string }>,
    random: Random,
    options: NetworkOptions,
    private readonly listener: NetworkListener,
    private readonly now: () => number,
  ) {
    this.queue = queue;
    this.links = new Links(queue, random, options, this.nodes, listener, now, (node, endpoint) =>
      this.finished(node, endpoint),
    );
  }

  addNode(node: NetworkNode): void {
    this.nodes.set(node.id, node);
    this.hosts.set(node.host ?? node.id, node.id);
    this.links.addNode(node.id);
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
   * Dials `address` (`<host>:<port>`, the host a node id or the IP a run gave the node). Whether
   * anything listens there is decided when the SYN arrives, so a node that starts listening
   * meanwhile is reached.
   */
  connect(node: string, endpoint: string, address: string): void {
    const target = this.hosts.get(address.slice(0, address.lastIndexOf(':')));
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
    const latencyUs = this.links.latencyUs(node, target ?? node);
    this.queue.push(this.now() + latencyUs, {
      kind: 'syn',
      from: node,
      fromEndpoint: endpoint,
      to: target ?? '',
      address,
      linkId,
    });
  }

  /**
   * The address an accepted connection comes from. A node named by its id shows the link id as its
   * port; one with an IP address shows a valid ephemeral port, as a peer exchange needs a real one.
   */
  private remoteAddress(connection: Connection): string {
    const host = this.nodes.get(connection.clientNode)?.host;
    if (host === undefined) return `${connection.clientNode}:${connection.id}`;
    return `${host}:${EPHEMERAL_FIRST_PORT + (connection.id % EPHEMERAL_PORTS)}`;
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
        this.links.onUplinkDone(event);
        return;
      case 'arrive':
        this.links.onArrive(event);
        return;
      case 'downlink-done':
        this.links.onDownlinkDone(event);
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
    const back = this.links.latencyUs(connection.clientNode, connection.serverNode || connection.clientNode);
    if (ok) {
      connection.serverEndpoint = `in:${this.nextInboundId++}`;
      connection.established = true;
      const up = this.links.newStream(
        connection.clientNode,
        connection.serverNode,
        connection.clientEndpoint,
        connection.serverEndpoint,
      );
      const down = this.links.newStream(
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
        this.remoteAddress(connection),
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

  /**
   * The stream an endpoint sends on, for `sendOn`; undefined while there is none. Once a stream is
   * dead or closed, sending on it does nothing, so a caller may keep it for the endpoint's life.
   */
  outgoing(node: string, endpoint: string): Stream | undefined {
    const connection = this.byEndpoint.get(`${node}/${endpoint}`);
    if (connection === undefined || connection.dead) return undefined;
    return connection.clientNode === node && connection.clientEndpoint === endpoint
      ? connection.up
      : connection.down;
  }

  /** Bytes a node has queued on all its connections but not yet put on its uplink. */
  queuedBytes(node: string): number {
    return this.links.queuedBytes(node);
  }

  send(node: string, endpoint: string, bytes: Uint8Array): void {
    const stream = this.outgoing(node, endpoint);
    if (stream !== undefined) this.sendOn(stream, bytes);
  }

  /** Sends on a stream `outgoing` gave. */
  sendOn(stream: Stream, bytes: Uint8Array): void {
    if (stream.finQueued || stream.dead || bytes.length === 0) return;
    this.links.enqueue(stream, bytes);
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
    if (incoming !== undefined) this.links.killStream(incoming);
    if (stream === undefined || stream.dead) {
      // The remote closed first (and stopped listening): both ends are done with it.
      this.forgetConnection(connection);
      return;
    }
    this.links.queueFin(stream);
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
    if (crashed) this.links.stopUplink(node);
  }

  private resetConnection(connection: Connection, reason: string, silentNode?: string): void {
    if (connection.dead) return;
    this.forgetConnection(connection);
    const ends: [string, string][] = [[connection.clientNode, connection.clientEndpoint]];
    if (connection.established) ends.push([connection.serverNode, connection.serverEndpoint]);
    for (const [node, endpoint] of ends) {
      if (node === silentNode) continue;
      const other = node === connection.clientNode ? connection.serverNode : connection.clientNode;
      const delayUs = node === silentNode ? 0 : this.links.latencyUs(node, other || node);
      this.queue.push(this.now() + delayUs, { kind: 'reset', node, endpoint, linkId: connection.id, reason });
    }
  }

  private onReset(node: string, endpoint: string, _linkId: number, reason: string): void {
    this.byEndpoint.delete(`${node}/${endpoint}`);
    this.listener.closed(node, endpoint, reason);
  }

  /** A FIN arrived: the connection is over at both ends, and the receiver hears of it. */
  private finished(node: string, endpoint: string): void {
    const connection = this.byEndpoint.get(`${node}/${endpoint}`);
    this.byEndpoint.delete(`${node}/${endpoint}`);
    if (connection !== undefined) this.forgetConnection(connection);
    this.listener.closed(node, endpoint, 'closed by remote');
  }

  private forgetConnection(connection: Connection): void {
    connection.dead = true;
    for (const stream of [connection.up, connection.down]) {
      if (stream !== undefined) this.links.killStream(stream);
    }
    this.connections.delete(connection.id);
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
