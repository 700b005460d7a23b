/**
 * The simulator's in-memory disk. The scenario file is cut once into canonical chunk buffers
 * (`FileChunks`); every node's `MemoryDisk` holds those very buffers for the chunks it stored
 * correctly, so a 200-peer run does not hold 200 copies, and "holds the right chunk" is an identity
 * check. A disk can be made full for a while, as a fault.
 */
import { createHash } from 'node:crypto';
import { Bitfield } from '../engine/bitfield.ts';
import { type Geometry, planChunks } from '../engine/chunking.ts';
import { bytesEqual, type Sha1 } from '../engine/hash.ts';
import type { KnownContent } from '../engine/options.ts';
import { deriveSeed, Random } from '../engine/random.ts';
import { sha1 } from '../platform/sha1.ts';
import type { Scenario } from './scenario.ts';

/** Spare chunk buffers kept per chunk length for the engines to reuse. */
const MAXIMUM_SPARE_BUFFERS = 64;

/** The error a write gets while its disk is full. */
export const DISK_FULL_ERROR = 'disk full (ENOSPC)';

/** The file a scenario distributes: bytes drawn from its content seed. */
export function scenarioFile(scenario: Scenario): { bytes: Uint8Array; geometry: Geometry } {
  const plan = planChunks(scenario.file.sizeBytes, scenario.file.chunkSizeBytes);
  if (!plan.ok) throw new RangeError(plan.error.message);
  const bytes = new Random(deriveSeed(scenario.file.contentSeed ?? scenario.seed, 'file')).bytes(
    scenario.file.sizeBytes,
  );
  return { bytes, geometry: plan.geometry };
}

/** The scenario file as chunks: the canonical buffers, their hashes, a hashing shortcut and a buffer pool. */
export class FileChunks {
  readonly canonical: readonly Uint8Array[];
  readonly pieceHashes: readonly Uint8Array[];
  private readonly byFingerprint = new Map<number, number[]>();
  /** Spare chunk buffers handed back after a write, reused by the engines: less garbage. */
  private readonly bufferPool = new Map<number, Uint8Array[]>();

  constructor(bytes: Uint8Array, geometry: Geometry) {
    const canonical: Uint8Array[] = [];
    for (let i = 0; i < geometry.pieceCount; i++) {
      const start = i * geometry.pieceLengthBytes;
      canonical.push(bytes.subarray(start, Math.min(start + geometry.pieceLengthBytes, bytes.length)));
    }
    this.canonical = canonical;
    this.pieceHashes = canonical.map((chunk) => sha1(chunk));
    canonical.forEach((chunk, index) => {
      const key = fingerprint(chunk);
      const list = this.byFingerprint.get(key) ?? [];
      list.push(index);
      this.byFingerprint.set(key, list);
    });
  }

  /**
   * SHA-1 as the engines see it, with a shortcut: a buffer equal to a file chunk (a memory compare,
   * far cheaper than hashing) has that chunk's hash. Anything else is really hashed, so the result is
   * always the true SHA-1 and corrupt data is still caught.
   */
  readonly engineSha1: Sha1 = (data) => {
    for (const index of this.byFingerprint.get(fingerprint(data)) ?? []) {
      const chunk = this.canonical[index] as Uint8Array;
      if (chunk === data) return this.pieceHashes[index] as Uint8Array;
      if (chunk.length === data.length && Buffer.compare(chunk, data) === 0)
        return this.pieceHashes[index] as Uint8Array;
    }
    return sha1(data);
  };

  /**
   * The file as content the engines already hold: a block that arrives equal to the file's bytes is
   * kept as a view of the file, and a chunk made of such blocks is the canonical chunk itself, so a
   * peer's chunks under way cost no memory of their own. Anything else (corrupt data) is copied.
   */
  readonly knownContent: KnownContent = {
    block: (index, begin, block) => {
      const view = this.canonical[index]?.subarray(begin, begin + block.length);
      if (view === undefined || view.length !== block.length) return undefined;
      // A view of these very bytes (a block handed over as a view of what its sender read) is equal.
      if (block.buffer === view.buffer && block.byteOffset === view.byteOffset) return view;
      return Buffer.compare(view, block) === 0 ? view : undefined;
    },
    chunk: (index) => this.canonical[index] as Uint8Array,
  };

  /** A chunk buffer for an engine: a spare one when there is one. */
  readonly allocateChunk = (lengthBytes: number): Uint8Array =>
    this.bufferPool.get(lengthBytes)?.pop() ?? new Uint8Array(lengthBytes);

  /** True when `bytes` are exactly the file's chunk `index`. */
  isChunk(index: number, bytes: Uint8Array): boolean {
    const canonical = this.canonical[index] as Uint8Array;
    if (bytes === canonical) return true;
    return bytes.length === canonical.length && Buffer.compare(bytes, canonical) === 0;
  }

  /** Takes back a chunk buffer the engine is done with, for reuse (never the file's own chunks). */
  recycle(index: number, bytes: Uint8Array): void {
    if (bytes === this.canonical[index]) return;
    const spare = this.bufferPool.get(bytes.length) ?? [];
    if (spare.length < MAXIMUM_SPARE_BUFFERS) spare.push(bytes);
    this.bufferPool.set(bytes.length, spare);
  }
}

/** One node's disk: chunk index to bytes, the file's own buffers for correct chunks. */
export class MemoryDisk {
  readonly chunks = new Map<number, Uint8Array>();
  /** Writes fail with ENOSPC until this time. */
  fullUntilMs = 0;

  constructor(private readonly file: FileChunks) {}

  /** The owner's disk: the whole file. */
  fillWithFile(): void {
    for (const [index, chunk] of this.file.canonical.entries()) this.chunks.set(index, chunk);
  }

  /**
   * Stores a written chunk, unless the disk is full. Bytes equal to the file's chunk are stored as
   * the file's own buffer (`matches`); anything else is kept as a copy.
   */
  write(
    nowMs: number,
    index: number,
    bytes: Uint8Array,
  ): { stored: false } | { stored: true; matches: boolean } {
    if (nowMs < this.fullUntilMs) return { stored: false };
    const matches = this.file.isChunk(index, bytes);
    this.chunks.set(index, matches ? (this.file.canonical[index] as Uint8Array) : bytes.slice());
    return { stored: true, matches };
  }

  /** `length` bytes at `begin` of a stored chunk, or undefined when it is not stored. */
  read(index: number, begin: number, length: number): Uint8Array | undefined {
    return this.chunks.get(index)?.subarray(begin, begin + length);
  }

  /** True when the disk holds the file's exact chunk `index`. */
  holdsExact(index: number): boolean {
    return this.chunks.get(index) === this.file.canonical[index];
  }

  /**
   * The SHA-256 of the file this disk holds, or null when chunks are missing. A disk holding the
   * file's own chunk buffers holds the file (`sha256OfFile`); anything else is hashed.
   */
  fileSha256(sha256OfFile: string): string | null {
    const count = this.file.canonical.length;
    if (this.chunks.size !== count) return null;
    if (this.file.canonical.every((chunk, index) => this.chunks.get(index) === chunk)) return sha256OfFile;
    const hash = createHash('sha256');
    for (let i = 0; i < count; i++) hash.update(this.chunks.get(i) as Uint8Array);
    return hash.digest('hex');
  }

  /**
   * The stored chunks whose SHA-1 matches the torrent, as a restarted engine finds them. The file's
   * own chunk buffer has the torrent's hash by construction; anything else is hashed.
   */
  verifiedChunks(): Bitfield {
    const have = new Bitfield(this.file.canonical.length);
    for (const [index, bytes] of this.chunks)
      if (
        bytes === this.file.canonical[index] ||
        bytesEqual(sha1(bytes), this.file.pieceHashes[index] as Uint8Array)
      )
        have.set(index);
    return have;
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
