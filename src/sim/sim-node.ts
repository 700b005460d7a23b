/**
 * One simulated node's state as the simulator keeps it: its engine (absent while crashed), its
 * in-memory disk, its place in the topology, the faults it is under, and its running totals.
 */
import { Bitfield } from '../engine/bitfield.ts';
import type { Effect, Engine, PeerRole } from '../engine/engine.ts';
import { type FileChunks, MemoryDisk } from './memory-disk.ts';
import type { Network, Stream } from './network.ts';
import type { PeerPlan } from './scenario.ts';

/** The port every node starts on; a moved node takes the next ones. */
export const FIRST_PORT = 6881;

export interface SimNode {
  readonly id: string;
  readonly role: 'owner' | 'peer';
  /** The host part of its addresses: its id, or an IP when the run speaks peer exchange. */
  readonly host: string;
  address: string;
  /** Down after a crash, until it restarts; `left` for good (the owner leaving). */
  crashed: boolean;
  left: boolean;
  /** A lying peer: every block it uploads is corrupted on the way out. */
  corrupt: boolean;
  /** A `corrupt` fault names it: its sends are watched for blocks (others' never need to be). */
  mayLie: boolean;
  /** Per connection: the last thing sent was a piece header, so the next send is a block. */
  readonly blockNext: Map<string, boolean>;
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
  readonly disk: MemoryDisk;
  readonly fromOwner: Bitfield;
  /** Block reads waiting, in arrival order, for the node's uplink queue to have room. */
  readonly pendingReads: (Effect & { kind: 'read-block' })[];
  readonly peers: { address: string; role: PeerRole }[];
  completedAtMs: number | undefined;
  readsInFlight: number;
  readonly totals: { chunksFromOwner: number; chunksFromPeers: number; bytesUp: number; bytesDown: number };
  /** The stream each engine connection sends on, looked up once per incarnation (see `sendStream`). */
  readonly sendStreams: Map<string, Stream>;
  sendStreamsGeneration: number;
  /** The node's 'drained' event, one object pushed again each time (it carries nothing else). */
  readonly drainedEvent: { readonly kind: 'drained'; readonly node: string };
}

/** A node before its engine starts: nobody known yet, an empty disk (the owner's holds the file). */
export function createSimNode(
  id: string,
  role: 'owner' | 'peer',
  plan: PeerPlan | undefined,
  uploadBytesPerSecond: number,
  file: FileChunks,
  host: string = id,
): SimNode {
  const disk = new MemoryDisk(file);
  if (role === 'owner') disk.fillWithFile();
  return {
    id,
    role,
    host,
    address: `${host}:${FIRST_PORT}`,
    plan,
    crashed: false,
    left: false,
    corrupt: false,
    mayLie: false,
    blockNext: new Map(),
    moves: 0,
    joined: role === 'owner',
    dialledBy: [],
    normalUploadBytesPerSecond: uploadBytesPerSecond,
    engine: undefined,
    generation: 0,
    timerAtMs: undefined,
    disk,
    fromOwner: new Bitfield(file.canonical.length),
    pendingReads: [],
    peers: [],
    completedAtMs: undefined,
    readsInFlight: 0,
    totals: { chunksFromOwner: 0, chunksFromPeers: 0, bytesUp: 0, bytesDown: 0 },
    sendStreams: new Map(),
    sendStreamsGeneration: 0,
    drainedEvent: { kind: 'drained', node: id },
  };
}

/**
 * The bytes a node puts on the wire for `connection`. A piece message's 13-byte header goes alone,
 * so the send after it is the block, which a lying node corrupts (its first byte flipped).
 */
export function wireBytes(node: SimNode, connection: string, bytes: Uint8Array): Uint8Array {
  if (!node.mayLie) return bytes;
  // Set, never deleted: a flag flipped per message would grow and shrink a set's table every time.
  const isBlock = node.blockNext.get(connection) === true;
  node.blockNext.set(connection, bytes.length === 13 && bytes[4] === 7);
  if (!isBlock || !node.corrupt || bytes.length === 0) return bytes;
  const corrupted = bytes.slice();
  corrupted[0] = (corrupted[0] as number) ^ 0xff;
  return corrupted;
}

/**
 * Network endpoint names carry the node's incarnation: a restarted engine reuses its connection
 * ids ("out:1"), and the dead incarnation's late resets and bytes must never reach the new one.
 * Inbound ids come from the network and are unique already.
 */
export function networkEndpoint(node: SimNode, connection: string): string {
  return connection.startsWith('in:') ? connection : `${node.generation}/${connection}`;
}

/** The engine's connection id for a network endpoint of `node`'s live incarnation, if it is one. */
export function localEndpoint(node: SimNode | undefined, endpoint: string): string | undefined {
  const slash = endpoint.indexOf('/');
  if (slash < 0) return endpoint;
  return node !== undefined && endpoint.slice(0, slash) === String(node.generation)
    ? endpoint.slice(slash + 1)
    : undefined;
}

/**
 * The stream `node`'s engine connection sends on, remembered for the incarnation: a connection id
 * names one network endpoint for its whole life, and a stream once closed or dead takes nothing
 * more, so a remembered stream behaves as a fresh lookup would.
 */
export function sendStream(
  node: SimNode,
  connection: string,
  network: Pick<Network, 'outgoing'>,
): Stream | undefined {
  if (node.sendStreamsGeneration !== node.generation) {
    node.sendStreams.clear();
    node.sendStreamsGeneration = node.generation;
  }
  let stream = node.sendStreams.get(connection);
  if (stream === undefined) {
    stream = network.outgoing(node.id, networkEndpoint(node, connection));
    if (stream !== undefined) node.sendStreams.set(connection, stream);
  }
  return stream;
}

/** Where a stream's bytes go: the receiving node and its engine's connection id (undefined: a dead incarnation's). */
export interface StreamSink {
  readonly node: SimNode;
  readonly generation: number;
  readonly local: string | undefined;
}

/** The stream's receiving end, worked out once per incarnation of the receiver and kept on the stream. */
export function streamSink(stream: Stream, nodes: ReadonlyMap<string, SimNode>): StreamSink | undefined {
  const cached = stream.sink as StreamSink | undefined;
  if (cached !== undefined && cached.generation === cached.node.generation) return cached;
  const node = nodes.get(stream.to);
  if (node === undefined) return undefined;
  const sink = { node, generation: node.generation, local: localEndpoint(node, stream.toEndpoint) };
  stream.sink = sink;
  return sink;
}
