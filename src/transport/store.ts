/**
 * Chunks on disk (design §4): one `chunk_<id>` file per verified chunk, a human-readable
 * `summary.txt`, and the combined file once every chunk is held.
 *
 * Crash safety rests on three rules:
 * - a chunk file only ever appears under its final name by `rename` of a fully written temp file in
 *   the same folder, and only after its bytes matched the torrent's SHA-1;
 * - the summary is rewritten the same way (temp + rename), after the chunk it names is in place;
 * - `open()` trusts nothing it finds: every chunk file is re-hashed, and the summary only contributes
 *   its from-owner marks, for chunks that verified.
 * So a kill -9 (or a power cut) at any moment loses at most the chunks in flight.
 *
 * Memory never grows with the file: imports, verification and combining move one chunk at a time,
 * and `readBlock` serves blocks from whole chunks read once, kept under a byte limit.
 */
import type { FileHandle } from 'node:fs/promises';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { Bitfield } from '../engine/bitfield.ts';
import {
  chunkLength,
  type Geometry,
  MAXIMUM_CHUNK_COUNT,
  MAXIMUM_CHUNK_SIZE_BYTES,
} from '../engine/chunking.ts';
import { bytesEqual, type Sha1 } from '../engine/hash.ts';
import { ChunkReadCache } from './chunk-read-cache.ts';
import { CombinedFile } from './combined-file.ts';
import { placeFile, readFully } from './file-io.ts';
import { ReadHandleCache } from './read-handle-cache.ts';
import { StorageError, toStorageError } from './storage-error.ts';
import {
  CHUNK_NAME,
  chunkFileName,
  isStrayTemp,
  reservedNameReason,
  unsafeFileNameReason,
} from './store-names.ts';
import { formatSummary, readSummaryFile, SUMMARY_FILE_NAME } from './summary-file.ts';

/** How long the summary may lag the chunk files. */
export const SUMMARY_DELAY_MS = 100;
/** Open read handles kept for `readBlock` by default (least recently used is closed first). */
export const DEFAULT_READ_HANDLE_CACHE_SIZE = 64;
/** Bytes of whole chunks `readBlock` keeps in memory by default: 40 chunks of 100 KiB. */
export const DEFAULT_READ_CACHE_BYTES = 4 * 1024 * 1024;
/** Chunk files hashed at once by `open()`: each holds one chunk-sized buffer. */
const VERIFY_CONCURRENCY = 4;

/** The `node:fs/promises` calls the store makes; tests replace some to inject failures. */
export type StoreFs = Pick<typeof nodeFs, 'open' | 'rename' | 'unlink' | 'readdir' | 'mkdir' | 'stat'>;

export interface ChunkStoreOptions {
  readonly dir: string;
  readonly geometry: Geometry;
  readonly pieceHashes: readonly Uint8Array[];
  readonly sha1: Sha1;
  /** The combined file's name: from a torrent, so hostile; must be one safe path component. */
  readonly fileName: string;
  readonly infoHashHex: string;
  /** Who this store belongs to, for the summary's comment line (e.g. `peer2`). */
  readonly label: string;
  /**
   * `datasync` a chunk (and the summary) before renaming it into place (default true). Not needed
   * against kill -9 (the page cache survives the process) nor for correctness (open() re-hashes),
   * only to keep finished chunks across a power cut.
   */
  readonly sync?: boolean;
  /** How many chunk files `readBlock` keeps open (default 64). */
  readonly readHandleCacheSize?: number;
  /** Bytes of whole chunks `readBlock` keeps in memory (default 4 MiB). */
  readonly readCacheBytes?: number;
  /** Test seam: replaces individual file-system calls. */
  readonly fs?: Partial<StoreFs>;
}

export interface OpenResult {
  readonly have: Bitfield;
  readonly fromOwner: Bitfield;
  /** Chunk files that failed verification (wrong size or hash) and were deleted. */
  readonly discarded: number[];
}

export class ChunkStore {
  readonly dir: string;
  private readonly geometry: Geometry;
  private readonly pieceHashes: readonly Uint8Array[];
  private readonly sha1: Sha1;
  private readonly fileName: string;
  private readonly infoHashHex: string;
  private readonly label: string;
  private readonly sync: boolean;
  private readonly fs: StoreFs;
  private have: Bitfield;
  private fromOwner: Bitfield;
  private readonly handles: ReadHandleCache;
  private readonly chunks: ChunkReadCache;
  private readonly combined: CombinedFile;
  /** A summary write that has been asked for but not started: later requests join it. */
  private summaryQueued: Promise<void> | undefined;
  private summaryChain: Promise<void> = Promise.resolve();
  private summaryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: ChunkStoreOptions) {
    const { geometry, pieceHashes } = options;
    if (pieceHashes.length !== geometry.pieceCount) {
      throw new RangeError(`${pieceHashes.length} piece hashes for ${geometry.pieceCount} chunks`);
    }
    if (
      !Number.isSafeInteger(geometry.pieceLengthBytes) ||
      geometry.pieceLengthBytes < 1 ||
      geometry.pieceLengthBytes > MAXIMUM_CHUNK_SIZE_BYTES ||
      !Number.isSafeInteger(geometry.pieceCount) ||
      geometry.pieceCount > MAXIMUM_CHUNK_COUNT
    ) {
      throw new RangeError('chunk geometry out of bounds');
    }
    if (!/^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/.test(options.infoHashHex)) {
      throw new RangeError(`info hash ${JSON.stringify(options.infoHashHex)} is not 40 or 64 hex digits`);
    }
    const why = unsafeFileNameReason(options.fileName);
    if (why !== undefined) {
      throw new StorageError('bad-path', `file name ${JSON.stringify(options.fileName)} ${why}`);
    }
    this.dir = options.dir;
    this.geometry = geometry;
    this.pieceHashes = pieceHashes;
    this.sha1 = options.sha1;
    this.fileName = options.fileName;
    this.infoHashHex = options.infoHashHex;
    // The label lands in a comment line: keep it on that line.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we strip
    this.label = options.label.replace(/[\u0000-\u001f\u007f]/g, '?');
    this.sync = options.sync ?? true;
    this.fs = { ...nodeFs, ...options.fs } as StoreFs;
    this.handles = new ReadHandleCache(
      Math.max(1, Math.floor(options.readHandleCacheSize ?? DEFAULT_READ_HANDLE_CACHE_SIZE)),
      (index) => this.fs.open(join(this.dir, chunkFileName(index)), 'r'),
    );
    this.combined = new CombinedFile({
      fs: this.fs,
      dir: this.dir,
      fileName: this.fileName,
      geometry,
      sync: this.sync,
    });
    this.chunks = new ChunkReadCache(
      Math.max(0, options.readCacheBytes ?? DEFAULT_READ_CACHE_BYTES),
      (index) => this.readChunk(index),
    );
    this.have = new Bitfield(geometry.pieceCount);
    this.fromOwner = new Bitfield(geometry.pieceCount);
  }

  /** Verified chunks on disk (a copy). */
  held(): Bitfield {
    return this.have.copy();
  }

  /** Held chunks that the owner sent (a copy). */
  fromOwnerField(): Bitfield {
    return this.fromOwner.copy();
  }

  /**
   * Creates the folder, re-verifies every chunk file (size and SHA-1; failures are deleted), removes
   * leftover temp files, keeps the summary's from-owner marks for verified chunks, and rewrites the
   * summary.
   */
  async open(): Promise<OpenResult> {
    this.closed = false;
    this.dropReads();
    await this.combined.discard();
    const fs = this.fs;
    try {
      await fs.mkdir(this.dir, { recursive: true });
    } catch (error) {
      throw toStorageError(error, `cannot create ${this.dir}`);
    }
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (error) {
      throw toStorageError(error, `cannot list ${this.dir}`);
    }
    const candidates: number[] = [];
    await Promise.all(
      names.map(async (name) => {
        if (isStrayTemp(name)) {
          await fs.unlink(join(this.dir, name)).catch(() => undefined);
          return;
        }
        const match = CHUNK_NAME.exec(name);
        if (match === null) return;
        const index = Number(match[1]);
        if (index < this.geometry.pieceCount) candidates.push(index);
      }),
    );
    candidates.sort((a, b) => a - b);

    const have = new Bitfield(this.geometry.pieceCount);
    const discarded: number[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      const buffer = Buffer.allocUnsafe(this.geometry.pieceLengthBytes);
      while (next < candidates.length) {
        const index = candidates[next++] as number;
        if (await this.verifyChunkFile(index, buffer)) have.set(index);
        else discarded.push(index);
      }
    };
    await Promise.all(Array.from({ length: Math.min(VERIFY_CONCURRENCY, candidates.length) }, worker));
    discarded.sort((a, b) => a - b);

    const fromOwner = new Bitfield(this.geometry.pieceCount);
    const summary = await readSummaryFile(this.fs, this.dir, this.infoHashHex, this.geometry.pieceCount);
    if (summary !== undefined) {
      for (const index of summary.fromOwner)
        if (index < fromOwner.size && have.has(index)) fromOwner.set(index);
    }
    this.have = have;
    this.fromOwner = fromOwner;
    // The new summary (which names none of the discarded chunks) goes first, then the bad files.
    await this.writeSummarySoon();
    for (const index of discarded) {
      await fs.unlink(join(this.dir, chunkFileName(index))).catch(() => undefined);
    }
    return { have: have.copy(), fromOwner: fromOwner.copy(), discarded };
  }

  /**
   * Owner side: cuts `sourcePath` into chunk files, one chunk in memory at a time, checking each
   * against the piece hashes (the source may have changed since it was hashed: 'corrupt').
   * Chunk files are not synced: the source file itself is the durable copy.
   */
  async importFrom(sourcePath: string): Promise<void> {
    this.closed = false;
    this.dropReads();
    await this.combined.discard();
    const fs = this.fs;
    try {
      await fs.mkdir(this.dir, { recursive: true });
      for (const name of await fs.readdir(this.dir)) {
        if (isStrayTemp(name)) await fs.unlink(join(this.dir, name)).catch(() => undefined);
      }
    } catch (error) {
      throw toStorageError(error, `cannot prepare ${this.dir}`);
    }
    let source: FileHandle;
    try {
      source = await fs.open(sourcePath, 'r');
    } catch (error) {
      throw toStorageError(error, `cannot open ${sourcePath}`);
    }
    const have = new Bitfield(this.geometry.pieceCount);
    try {
      const size = (await source.stat()).size;
      if (size !== this.geometry.totalLengthBytes) {
        throw new StorageError(
          'corrupt',
          `${sourcePath} is ${size} bytes, the torrent says ${this.geometry.totalLengthBytes}`,
        );
      }
      const buffer = Buffer.allocUnsafe(this.geometry.pieceLengthBytes);
      for (let index = 0; index < this.geometry.pieceCount; index++) {
        const length = chunkLength(this.geometry, index);
        const bytes = buffer.subarray(0, length);
        await readFully(
          source,
          bytes,
          index * this.geometry.pieceLengthBytes,
          `${sourcePath} chunk ${index}`,
        );
        this.checkHash(index, bytes, `${sourcePath} changed since it was hashed`);
        await placeFile(this.fs, this.dir, chunkFileName(index), bytes, false);
        have.set(index);
      }
    } catch (error) {
      throw toStorageError(error, `cannot import ${sourcePath}`);
    } finally {
      await source.close().catch(() => undefined);
    }
    this.have = have;
    this.fromOwner = new Bitfield(this.geometry.pieceCount);
    await this.writeSummarySoon();
  }

  /** Reads `length` bytes at `begin` of a held chunk, and nothing more. */
  async readBlock(index: number, begin: number, length: number): Promise<Uint8Array> {
    this.checkIndex(index);
    const size = chunkLength(this.geometry, index);
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(length) || begin < 0 || length < 1) {
      throw new RangeError(`bad block ${begin}+${length} of chunk ${index}`);
    }
    if (begin + length > size) {
      throw new RangeError(`block ${begin}+${length} runs past the end of chunk ${index} (${size} bytes)`);
    }
    if (this.closed) throw new StorageError('io', 'the chunk store is closed');
    if (!this.have.has(index)) throw new StorageError('io', `chunk ${index} is not held`);
    const chunk = await this.chunks.get(index, size);
    return chunk.subarray(begin, begin + length);
  }

  /** The whole of held chunk `index`, read through a cached handle (for the read cache). */
  private async readChunk(index: number): Promise<Uint8Array> {
    const entry = this.handles.acquire(index);
    try {
      const handle = await entry.handle;
      const out = new Uint8Array(chunkLength(this.geometry, index));
      await readFully(handle, out, 0, `chunk ${index}`);
      return out;
    } catch (error) {
      throw toStorageError(error, `cannot read chunk ${index}`);
    } finally {
      this.handles.release(entry);
    }
  }

  private dropReads(): void {
    this.handles.dropAll();
    this.chunks.clear();
  }

  /**
   * Stores a verified chunk: temp file in the same folder, datasync (unless `sync: false`), rename
   * to `chunk_<index>`, then the summary rewritten atomically. Resolves once both are in place.
   * A failed summary rewrite rejects, but the chunk file itself is valid and stays held. The bytes
   * are hashed here unless the caller says they were `verified` already (the engine verifies every
   * chunk before it hands it over, so the driver says so and each chunk is hashed once). The store
   * keeps `bytes` to serve from (see ChunkReadCache.put): the caller must not change them after.
   */
  async writeChunk(index: number, bytes: Uint8Array, fromOwner: boolean, verified = false): Promise<void> {
    this.checkIndex(index);
    const size = chunkLength(this.geometry, index);
    if (bytes.length !== size) {
      throw new StorageError('corrupt', `chunk ${index} is ${bytes.length} bytes, expected ${size}`);
    }
    if (!verified) this.checkHash(index, bytes, `chunk ${index} does not match its hash`);
    if (this.closed) throw new StorageError('io', 'the chunk store is closed');
    // The combined file takes its copy now, while the bytes are in memory (never fails: see put).
    const placing = placeFile(this.fs, this.dir, chunkFileName(index), bytes, this.sync);
    await Promise.all([placing, this.combined.put(index, bytes)]).catch((error: unknown) => {
      throw toStorageError(error, `cannot store chunk ${index}`);
    });
    // A cached read handle would still see the old file (same bytes, but let it go).
    this.handles.invalidate(index);
    this.chunks.put(index, bytes);
    this.have.set(index);
    if (fromOwner) this.fromOwner.set(index);
    else this.fromOwner.clear(index);
    this.writeSummaryLater();
  }

  /**
   * Finishes `<dir>/<fileName>`: built while the chunks arrived (see CombinedFile), with the chunks
   * held from an earlier run copied in and re-hashed, then its SHA-256 read back from disk.
   */
  async combine(): Promise<{ path: string; sha256: string }> {
    const reserved = reservedNameReason(this.fileName);
    if (reserved !== undefined) {
      throw new StorageError('bad-path', `file name ${JSON.stringify(this.fileName)} ${reserved}`);
    }
    const missing = this.geometry.pieceCount - this.have.count;
    if (missing > 0) throw new StorageError('io', `cannot combine: ${missing} chunks are missing`);
    try {
      return await this.combined.finish((index, into) => this.copyChunk(index, into));
    } catch (error) {
      throw toStorageError(error, `cannot combine into ${join(this.dir, this.fileName)}`);
    }
  }

  /** Reads chunk file `index` into `into` (its exact length), checking its size and hash. */
  private async copyChunk(index: number, into: Uint8Array): Promise<void> {
    const input = await this.fs.open(join(this.dir, chunkFileName(index)), 'r');
    try {
      const stats = await input.stat();
      const actual = stats.isFile() ? stats.size : -1;
      if (actual !== into.length)
        throw new StorageError(
          'corrupt',
          `chunk ${index} is ${actual} bytes on disk, expected ${into.length}`,
        );
      await readFully(input, into, 0, `chunk ${index}`);
    } finally {
      await input.close().catch(() => undefined);
    }
    this.checkHash(index, into, `chunk ${index} on disk no longer matches its hash`);
  }

  /** Waits for pending summary writes and closes every cached handle. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushSummary().catch(() => undefined);
    this.dropReads();
    await Promise.all([this.handles.settled(), this.combined.discard()]);
  }

  // --- summary ------------------------------------------------------------------------------------

  /** The summary text for the current state. */
  summaryText(): string {
    return formatSummary({
      label: this.label,
      infoHashHex: this.infoHashHex,
      chunks: this.geometry.pieceCount,
      held: this.have.indices(),
      fromOwner: this.fromOwner.indices(),
    });
  }

  /**
   * After a chunk is stored the summary is rewritten within SUMMARY_DELAY_MS, once for all the
   * chunks stored meanwhile: a rewrite per chunk doubled the file work of every write. The summary
   * may lag the chunk files by that much (a crash then loses only from-owner marks; the files
   * themselves are re-verified on start), but it never names a chunk that is not in place.
   */
  private writeSummaryLater(): void {
    if (this.summaryTimer !== undefined) return;
    this.summaryTimer = setTimeout(() => {
      this.summaryTimer = undefined;
      this.writeSummarySoon().catch(() => undefined);
    }, SUMMARY_DELAY_MS);
  }

  /** Writes any summary rewrite still waiting, now. */
  async flushSummary(): Promise<void> {
    if (this.summaryTimer !== undefined) {
      clearTimeout(this.summaryTimer);
      this.summaryTimer = undefined;
      await this.writeSummarySoon();
      return;
    }
    await this.summaryChain;
  }

  /**
   * Rewrites the summary once more after every earlier request. Writes never overlap; requests made
   * while one is queued (not yet started) share it, and it snapshots the state when it starts.
   */
  private writeSummarySoon(): Promise<void> {
    if (this.summaryQueued !== undefined) return this.summaryQueued;
    const queued = this.summaryChain
      .catch(() => undefined)
      .then(() => {
        this.summaryQueued = undefined;
        const text = this.summaryText();
        return placeFile(this.fs, this.dir, SUMMARY_FILE_NAME, Buffer.from(text, 'utf8'), this.sync).catch(
          (error: unknown) => {
            throw toStorageError(error, 'cannot write the summary');
          },
        );
      });
    this.summaryQueued = queued;
    this.summaryChain = queued;
    return queued;
  }

  // --- files --------------------------------------------------------------------------------------

  /** True when chunk_<index> has the right size and hash. */
  private async verifyChunkFile(index: number, buffer: Buffer): Promise<boolean> {
    const bytes = buffer.subarray(0, chunkLength(this.geometry, index));
    return this.copyChunk(index, bytes).then(
      () => true,
      () => false,
    );
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.geometry.pieceCount) {
      throw new RangeError(`chunk index ${index} outside 0..${this.geometry.pieceCount - 1}`);
    }
  }

  private checkHash(index: number, bytes: Uint8Array, message: string): void {
    if (!bytesEqual(this.sha1(bytes), this.pieceHashes[index] as Uint8Array)) {
      throw new StorageError('corrupt', message);
    }
  }
}
