/**
 * A tiny in-memory driver for engine tests: connects engines directly, hands bytes across at once
 * (optionally in pieces), serves reads from memory and jumps time to the next wake-up.
 */
import { Bitfield } from '../../src/engine/bitfield.ts';
import { planChunks } from '../../src/engine/chunking.ts';
import { type Effect, Engine, type EngineOptions } from '../../src/engine/engine.ts';
import { makePeerId } from '../../src/engine/peer-id.ts';
import { Random } from '../../src/engine/random.ts';
import { sha1 } from '../../src/platform/sha1.ts';

export interface TestFile {
  readonly bytes: Uint8Array;
  readonly chunks: Uint8Array[];
  readonly hashes: Uint8Array[];
  readonly options: Pick<EngineOptions, 'infoHash' | 'pieceHashes' | 'geometry' | 'sha1'>;
}

export function makeFile(sizeBytes: number, seed = 7, chunkSizeBytes?: number): TestFile {
  const plan = planChunks(sizeBytes, chunkSizeBytes);
  if (!plan.ok) throw new Error(plan.error.message);
  const bytes = new Random(seed).bytes(sizeBytes);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < plan.geometry.pieceCount; i++) {
    const start = i * plan.geometry.pieceLengthBytes;
    chunks.push(bytes.subarray(start, Math.min(start + plan.geometry.pieceLengthBytes, sizeBytes)));
  }
  const hashes = chunks.map(sha1);
  const infoHash = sha1(new TextEncoder().encode(`test-file-${seed}-${sizeBytes}`));
  return { bytes, chunks, hashes, options: { infoHash, pieceHashes: hashes, geometry: plan.geometry, sha1 } };
}

export interface Node {
  readonly name: string;
  readonly engine: Engine;
  readonly disk: Map<number, Uint8Array>;
  readonly log: Effect[];
  readonly address: string;
}

/**
 * Runs engines to quiescence. Connections are matched by address; each `send` is delivered to the
 * other side in pieces cut by `split` (identity by default).
 */
export class Harness {
  readonly nodes = new Map<string, Node>();
  private readonly links = new Map<string, { node: Node; connection: string }>();
  private nextInbound = 1;
  nowMs = 0;
  corrupt: ((from: string, bytes: Uint8Array) => Uint8Array) | undefined;
  /** Asked before every chunk write; true makes that write fail as a full disk would. */
  failWrite: (() => boolean) | undefined;

  constructor(
    readonly file: TestFile,
    private readonly split: (bytes: Uint8Array) => Uint8Array[] = (bytes) => [bytes],
  ) {}

  add(name: string, options: Partial<EngineOptions> & { role: 'owner' | 'peer' }): Node {
    const random = new Random(name.length * 977 + name.charCodeAt(name.length - 1));
    const engine = new Engine({
      name,
      peerId: makePeerId(name, random),
      random,
      ...this.file.options,
      ...options,
    });
    const disk = new Map<number, Uint8Array>();
    if (options.role === 'owner') {
      for (const [index, chunk] of this.file.chunks.entries()) disk.set(index, chunk);
    }
    const node: Node = { name, engine, disk, log: [], address: `${name}:1` };
    this.nodes.set(node.address, node);
    return node;
  }

  /** Delivers every pending effect until nothing moves, advancing time to timers if asked. */
  run(options: { untilMs?: number; stop?: () => boolean } = {}): void {
    const untilMs = options.untilMs ?? 0;
    for (let guard = 0; guard < 1_000_000; guard++) {
      let moved = false;
      for (const node of this.nodes.values()) {
        const effects = node.engine.pollEffects();
        for (const effect of effects) {
          moved = true;
          node.log.push(effect);
          this.apply(node, effect);
        }
      }
      if (options.stop?.() === true) return;
      if (moved) continue;
      let next: number | undefined;
      for (const node of this.nodes.values()) {
        const wake = node.engine.pollTimeout();
        if (wake !== undefined && (next === undefined || wake < next)) next = wake;
      }
      if (next === undefined || next > untilMs) return;
      this.nowMs = Math.max(this.nowMs, next);
      for (const node of this.nodes.values()) {
        const wake = node.engine.pollTimeout();
        if (wake !== undefined && wake <= this.nowMs) node.engine.handleTimeout(this.nowMs);
      }
    }
    throw new Error('harness did not settle');
  }

  private apply(node: Node, effect: Effect): void {
    switch (effect.kind) {
      case 'connect': {
        const target = this.nodes.get(effect.address);
        if (target === undefined) {
          node.engine.handleClosed(this.nowMs, effect.connection, 'refused');
          return;
        }
        const inbound = `in:${this.nextInbound++}`;
        this.links.set(`${node.address}/${effect.connection}`, { node: target, connection: inbound });
        this.links.set(`${target.address}/${inbound}`, { node, connection: effect.connection });
        target.engine.handleAccepted(this.nowMs, inbound, `${node.name}:9`);
        node.engine.handleConnected(this.nowMs, effect.connection);
        return;
      }
      case 'send': {
        const peer = this.links.get(`${node.address}/${effect.connection}`);
        if (peer === undefined) return;
        const bytes = this.corrupt === undefined ? effect.bytes : this.corrupt(node.name, effect.bytes);
        for (const piece of this.split(bytes))
          peer.node.engine.handleData(this.nowMs, peer.connection, piece);
        return;
      }
      case 'close': {
        const peer = this.links.get(`${node.address}/${effect.connection}`);
        this.links.delete(`${node.address}/${effect.connection}`);
        if (peer === undefined) return;
        this.links.delete(`${peer.node.address}/${peer.connection}`);
        peer.node.engine.handleClosed(this.nowMs, peer.connection, 'closed by remote');
        return;
      }
      case 'read-block': {
        const chunk = node.disk.get(effect.index);
        node.engine.handleBlockRead(
          this.nowMs,
          effect.connection,
          effect.index,
          effect.begin,
          chunk?.subarray(effect.begin, effect.begin + effect.length),
        );
        return;
      }
      case 'write-chunk':
        if (this.failWrite?.() === true) {
          node.engine.handleChunkWritten(this.nowMs, effect.index, 'disk full (ENOSPC)');
          return;
        }
        node.disk.set(effect.index, effect.bytes.slice());
        node.engine.handleChunkWritten(this.nowMs, effect.index, undefined);
        return;
      default:
        return;
    }
  }
}

export function activities(node: Node): string[] {
  return node.log.flatMap((effect) => (effect.kind === 'activity' ? [effect.event.kind] : []));
}

export function full(size: number): Bitfield {
  return Bitfield.full(size);
}
