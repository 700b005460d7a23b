/**
 * The access links of the modelled network: each node's uplink serves its outgoing streams
 * round-robin at its upload capacity, cutting them into segments of random size; each segment
 * crosses the link's latency and waits for the receiver's downlink, which drains at its download
 * capacity. Now and then a delivered segment is held back and handed over merged with the next, so
 * receivers see arbitrary splits and merges. Connections (who talks to whom) are network.ts's job.
 */
import type { Random } from '../engine/random.ts';
import type { EventQueue } from './event-queue.ts';
import type { NetworkEvent, NetworkListener, NetworkNode } from './network.ts';

/**
 * A piece of a stream on its way. The segment is its own event on the queue, three times over: its
 * `kind` says which leg it is on (leaving the uplink, arriving, leaving the downlink), so a segment
 * costs one object, not one per leg.
 */
export interface Segment {
  kind: 'uplink-done' | 'arrive' | 'downlink-done';
  readonly stream: Stream;
  readonly parts: Uint8Array[];
  readonly lengthBytes: number;
  /** A FIN: the sender closed after everything before it. */
  readonly fin: boolean;
}

export interface Stream {
  readonly from: string;
  readonly to: string;
  readonly fromEndpoint: string;
  readonly toEndpoint: string;
  /** The two ends' access links and records, looked up once (capacities may change: read them live). */
  readonly sender: NetworkNode;
  readonly receiver: NetworkNode;
  readonly uplink: Uplink;
  readonly downlink: Downlink;
  readonly latencyUs: number;
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
  /** On its uplink's ready list. */
  ready: boolean;
  dead: boolean;
  /** The listener's own note on the receiving end (what `to`/`toEndpoint` resolve to), kept for it. */
  sink: unknown;
}

interface Uplink {
  readonly node: string;
  busyUntilUs: number;
  busy: boolean;
  /** Bytes the node has queued on all its streams, not yet on the wire. */
  queuedBytes: number;
  /** Streams with something to send, served round-robin. */
  readonly ready: Stream[];
}

interface Downlink {
  readonly node: string;
  busy: boolean;
  readonly queue: Segment[];
}

export interface LinkOptions {
  readonly maxSegmentBytes: number;
  readonly mergePercent: number;
}

export class Links {
  private readonly uplinks = new Map<string, Uplink>();
  private readonly downlinks = new Map<string, Downlink>();
  bytesDelivered = 0;
  /** Where merged segments are glued together; grows to the largest merge, reused for every one. */
  private mergeBuffer = new Uint8Array(0);

  constructor(
    private readonly queue: EventQueue<NetworkEvent | { kind: string }>,
    private readonly random: Random,
    private readonly options: LinkOptions,
    /** The nodes and their capacities, shared with the network (faults change them). */
    private readonly nodes: ReadonlyMap<string, NetworkNode>,
    private readonly listener: Pick<NetworkListener, 'data' | 'drained'>,
    private readonly now: () => number,
    /** A FIN reached `node`'s `endpoint`: everything before it is delivered. */
    private readonly finished: (node: string, endpoint: string) => void,
  ) {}

  addNode(id: string): void {
    this.uplinks.set(id, { node: id, busyUntilUs: 0, busy: false, queuedBytes: 0, ready: [] });
    this.downlinks.set(id, { node: id, busy: false, queue: [] });
  }

  /** A stream between two nodes added with `addNode`. */
  newStream(from: string, to: string, fromEndpoint: string, toEndpoint: string): Stream {
    return {
      from,
      to,
      fromEndpoint,
      toEndpoint,
      sender: this.nodes.get(from) as NetworkNode,
      receiver: this.nodes.get(to) as NetworkNode,
      uplink: this.uplinks.get(from) as Uplink,
      downlink: this.downlinks.get(to) as Downlink,
      latencyUs: this.latencyUs(from, to),
      queue: [],
      queuedBytes: 0,
      headOffset: 0,
      finQueued: false,
      finSent: false,
      held: [],
      heldSegments: 0,
      segmentsInFlight: 0,
      ready: false,
      dead: false,
      sink: undefined,
    };
  }

  /** Bytes a node has queued on all its streams but not yet put on its uplink. */
  queuedBytes(node: string): number {
    return this.uplinks.get(node)?.queuedBytes ?? 0;
  }

  /** Queues `bytes` on a live stream and wakes its uplink. */
  enqueue(stream: Stream, bytes: Uint8Array): void {
    stream.queue.push(bytes);
    stream.queuedBytes += bytes.length;
    stream.uplink.queuedBytes += bytes.length;
    this.makeReady(stream);
  }

  /** The sender closed: a FIN follows what is queued. */
  queueFin(stream: Stream): void {
    if (stream.finQueued) return;
    stream.finQueued = true;
    this.makeReady(stream);
  }

  /** A crashed node's uplink forgets every stream it was serving. */
  stopUplink(node: string): void {
    const uplink = this.uplinks.get(node);
    if (uplink === undefined) return;
    for (const stream of uplink.ready) stream.ready = false;
    uplink.ready.length = 0;
  }

  /** A dead stream sends nothing more: what it still had queued no longer counts against its node. */
  killStream(stream: Stream): void {
    if (stream.dead) return;
    stream.dead = true;
    stream.uplink.queuedBytes -= stream.queuedBytes;
    stream.queuedBytes = 0;
    stream.queue.length = 0;
  }

  private makeReady(stream: Stream): void {
    const uplink = stream.uplink;
    if (!stream.ready) {
      stream.ready = true;
      uplink.ready.push(stream);
    }
    this.pumpUplink(uplink);
  }

  private pumpUplink(uplink: Uplink): void {
    while (!uplink.busy && uplink.ready.length > 0) {
      const stream = uplink.ready.shift() as Stream;
      stream.ready = false;
      if (stream.dead) continue;
      const segment = this.cutSegment(stream);
      if (segment === undefined) continue;
      if (stream.queuedBytes > 0 || (stream.finQueued && !stream.finSent)) {
        stream.ready = true;
        uplink.ready.push(stream);
      }
      const durationUs = Math.ceil((segment.lengthBytes * 1_000_000) / stream.sender.uploadBytesPerSecond);
      uplink.busy = true;
      uplink.busyUntilUs = this.now() + durationUs;
      stream.segmentsInFlight++;
      this.queue.push(uplink.busyUntilUs, segment);
    }
  }

  private cutSegment(stream: Stream): Segment | undefined {
    if (stream.queuedBytes === 0) {
      if (stream.finQueued && !stream.finSent) {
        stream.finSent = true;
        return { kind: 'uplink-done', stream, parts: [], lengthBytes: 0, fin: true };
      }
      return undefined;
    }
    // At most 50 ms of the uplink's time, so a stalled node (1 B/s) is not stuck behind one huge
    // segment after it recovers.
    const capacity = stream.sender.uploadBytesPerSecond;
    const cap = Math.max(1, Math.min(this.options.maxSegmentBytes, Math.floor(capacity / 20)));
    const size = Math.min(stream.queuedBytes, 1 + this.random.nextInt(cap));
    // The first part in an array literal: most segments have one part, and a first push onto an
    // empty array reserves room for many.
    const parts = [this.takePart(stream, size)];
    let remaining = size - (parts[0] as Uint8Array).length;
    while (remaining > 0) {
      const part = this.takePart(stream, remaining);
      parts.push(part);
      remaining -= part.length;
    }
    stream.queuedBytes -= size;
    stream.uplink.queuedBytes -= size;
    return { kind: 'uplink-done', stream, parts, lengthBytes: size, fin: false };
  }

  /** Up to `maxBytes` from the head of the stream's queue. */
  private takePart(stream: Stream, maxBytes: number): Uint8Array {
    const head = stream.queue[0] as Uint8Array;
    const available = head.length - stream.headOffset;
    const take = Math.min(available, maxBytes);
    // A whole buffer goes as it is: a view of it would be one more object per segment.
    const part = take === head.length ? head : head.subarray(stream.headOffset, stream.headOffset + take);
    if (take === available) {
      stream.queue.shift();
      stream.headOffset = 0;
    } else {
      stream.headOffset += take;
    }
    return part;
  }

  onUplinkDone(segment: Segment): void {
    const stream = segment.stream;
    const uplink = stream.uplink;
    uplink.busy = false;
    this.listener.drained(uplink.node);
    if (!stream.dead) {
      segment.kind = 'arrive';
      this.queue.push(this.now() + stream.latencyUs, segment);
    }
    this.pumpUplink(uplink);
  }

  onArrive(segment: Segment): void {
    if (segment.stream.dead) return;
    const downlink = segment.stream.downlink;
    downlink.queue.push(segment);
    this.pumpDownlink(downlink);
  }

  private pumpDownlink(downlink: Downlink): void {
    if (downlink.busy) return;
    const segment = downlink.queue.shift();
    if (segment === undefined) return;
    const capacity = segment.stream.receiver.downloadBytesPerSecond;
    downlink.busy = true;
    segment.kind = 'downlink-done';
    this.queue.push(this.now() + Math.ceil((segment.lengthBytes * 1_000_000) / capacity), segment);
  }

  onDownlinkDone(segment: Segment): void {
    const stream = segment.stream;
    const downlink = stream.downlink;
    const node = downlink.node;
    downlink.busy = false;
    stream.segmentsInFlight--;
    if (!stream.dead) {
      this.bytesDelivered += segment.lengthBytes;
      if (segment.fin) {
        this.deliverHeld(stream);
        this.killStream(stream);
        this.finished(node, stream.toEndpoint);
      } else {
        // Hold this segment back, now and then, so the receiver gets it merged with the next one.
        const more = stream.segmentsInFlight > 0;
        if (more && this.random.chance(this.options.mergePercent, 100)) {
          for (const part of segment.parts) stream.held.push(part);
          stream.heldSegments++;
        } else if (stream.heldSegments === 0) {
          // Nothing held: delivered piece by piece as it was sent, which saves a copy.
          for (const part of segment.parts) this.listener.data(stream, part);
        } else {
          for (const part of segment.parts) stream.held.push(part);
          stream.heldSegments++;
          this.deliverHeld(stream);
        }
      }
    }
    this.pumpDownlink(downlink);
  }

  /**
   * Hands the held bytes to the receiver: as one merged buffer when they came in several segments
   * (so frames arrive glued together), else piece by piece as they were sent.
   */
  private deliverHeld(stream: Stream): void {
    const parts = stream.held;
    if (parts.length === 0) return;
    if (stream.heldSegments > 1) {
      const merged = this.merge(parts);
      parts.length = 0;
      stream.heldSegments = 0;
      this.listener.data(stream, merged);
      return;
    }
    stream.held = [];
    stream.heldSegments = 0;
    for (const part of parts) this.listener.data(stream, part);
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

  latencyUs(a: string, b: string): number {
    const left = this.nodes.get(a)?.latencyMs ?? 0;
    const right = this.nodes.get(b)?.latencyMs ?? 0;
    return Math.round(((left + right) / 2) * 1000);
  }
}
