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
 * and `readBlock` reads just the requested bytes through a small cache of open file handles.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { Bitfield, formatIndices } from '../engine/bitfield.ts';
import {
  chunkLength,
  type Geometry,
  MAXIMUM_CHUNK_COUNT,
  MAXIMUM_CHUNK_SIZE_BYTES,
} from '../engine/chunking.ts';
import { bytesEqual, type Sha1 } from '../engine/hash.ts';

export const SUMMARY_FILE_NAME = 'summary.txt';
/** How long the summary may lag the chunk files. */
export const SUMMARY_DELAY_MS = 100;
/** Open read handles kept for `readBlock` by default (least recently used is closed first). */
export const DEFAULT_READ_HANDLE_CACHE_SIZE = 64;
/** Chunk files hashed at once by `open()`: each holds one chunk-sized buffer. */
const VERIFY_CONCURRENCY = 4;
/** A summary larger than this is not ours (1M chunks written as alternating ids stay well below). */
const MAXIMUM_SUMMARY_BYTES = 32 * 1024 * 1024;
const MAXIMUM_NAME_BYTES = 255;
const TEMP_SUFFIX = /\.tmp-[0-9a-f]{16}$/;
const CHUNK_NAME = /^chunk_(0|[1-9][0-9]{0,6})$/;

export function chunkFileName(index: number): string {
  return `chunk_${index}`;
}

export type StorageErrorCode = 'disk-full' | 'io' | 'corrupt' | 'bad-path';

export class StorageError extends Error {
  override readonly name = 'StorageError';

  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Wraps a file-system failure: ENOSPC / EDQUOT become 'disk-full', anything else 'io'. */
export function toStorageError(error: unknown, context: string): StorageError {
  if (error instanceof StorageError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StorageError('disk-full', `${context}: disk full (${detail})`, { cause: error });
  }
  return new StorageError('io', `${context}: ${detail}`, { cause: error });
}

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
  /** Test seam: replaces individual file-system calls. */
  readonly fs?: Partial<StoreFs>;
}

export interface OpenResult {
  readonly have: Bitfield;
  readonly fromOwner: Bitfield;
  /** Chunk files that failed verification (wrong size or hash) and were deleted. */
  readonly discarded: number[];
}

interface HandleEntry {
  readonly handle: Promise<FileHandle>;
  users: number;
  evicted: boolean;
}

/** Why `name` cannot be created as a file of its own in a folder, or undefined when it can. */
export function unsafeFileNameReason(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return 'is a relative directory reference';
  if (name.includes('/') || name.includes('\\')) return 'contains a path separator';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we refuse
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains a control character';
  if (/^[A-Za-z]:/.test(name)) return 'is an absolute or drive-relative Windows path';
  if (Buffer.byteLength(name, 'utf8') > MAXIMUM_NAME_BYTES)
    return `is longer than ${MAXIMUM_NAME_BYTES} bytes`;
  return undefined;
}

/** Names the store itself uses in its folder; the combined file may not take them. */
function reservedNameReason(name: string): string | undefined {
  if (name === SUMMARY_FILE_NAME) return 'is the summary file';
  if (/^chunk_[0-9]+$/.test(name)) return 'is a chunk file name';
  if (name.startsWith('.') && TEMP_SUFFIX.test(name)) return 'is a temporary file name';
  return undefined;
}

function tempName(base: string): string {
  return `.${base}.tmp-${randomBytes(8).toString('hex')}`;
}

function isStrayTemp(name: string): boolean {
  return name.startsWith('.') && TEMP_SUFFIX.test(name);
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
  private readonly handleCacheSize: number;
  private have: Bitfield;
  private fromOwner: Bitfield;
  private readonly handles = new Map<number, HandleEntry>();
  private readonly closing = new Set<Promise<void>>();
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
    this.handleCacheSize = Math.max(
      1,
      Math.floor(options.readHandleCacheSize ?? DEFAULT_READ_HANDLE_CACHE_SIZE),
    );
    this.fs = { ...nodeFs, ...options.fs } as StoreFs;
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
    this.dropHandles();
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
    const summary = await this.readSummary();
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
    this.dropHandles();
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
        await this.placeFile(chunkFileName(index), bytes, false);
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
    const entry = this.acquire(index);
    try {
      const handle = await entry.handle;
      const out = new Uint8Array(length);
      await readFully(handle, out, begin, `chunk ${index}`);
      return out;
    } catch (error) {
      throw toStorageError(error, `cannot read chunk ${index}`);
    } finally {
      this.release(entry);
    }
  }

  /**
   * Stores a verified chunk: temp file in the same folder, datasync (unless `sync: false`), rename
   * to `chunk_<index>`, then the summary rewritten atomically. Resolves once both are in place.
   * A failed summary rewrite rejects, but the chunk file itself is valid and stays held.
   */
  async writeChunk(index: number, bytes: Uint8Array, fromOwner: boolean): Promise<void> {
    this.checkIndex(index);
    const size = chunkLength(this.geometry, index);
    if (bytes.length !== size) {
      throw new StorageError('corrupt', `chunk ${index} is ${bytes.length} bytes, expected ${size}`);
    }
    this.checkHash(index, bytes, `chunk ${index} does not match its hash`);
    if (this.closed) throw new StorageError('io', 'the chunk store is closed');
    await this.placeFile(chunkFileName(index), bytes, this.sync).catch((error: unknown) => {
      throw toStorageError(error, `cannot store chunk ${index}`);
    });
    // A cached read handle would still see the old file (same bytes, but let it go).
    this.invalidateHandle(index);
    this.have.set(index);
    if (fromOwner) this.fromOwner.set(index);
    else this.fromOwner.clear(index);
    this.writeSummaryLater();
  }

  /**
   * Streams every chunk, in order and re-hashed, into `<dir>/<fileName>` through a temp file and a
   * rename, computing the file's SHA-256 on the way. One chunk in memory.
   */
  async combine(): Promise<{ path: string; sha256: string }> {
    const reserved = reservedNameReason(this.fileName);
    if (reserved !== undefined) {
      throw new StorageError('bad-path', `file name ${JSON.stringify(this.fileName)} ${reserved}`);
    }
    const missing = this.geometry.pieceCount - this.have.count;
    if (missing > 0) throw new StorageError('io', `cannot combine: ${missing} chunks are missing`);
    const fs = this.fs;
    const finalPath = join(this.dir, this.fileName);
    const temp = join(this.dir, tempName(this.fileName));
    const sha256 = createHash('sha256');
    const buffer = Buffer.allocUnsafe(this.geometry.pieceLengthBytes);
    let out: FileHandle | undefined;
    try {
      out = await fs.open(temp, 'wx', 0o644);
      for (let index = 0; index < this.geometry.pieceCount; index++) {
        const length = chunkLength(this.geometry, index);
        const bytes = buffer.subarray(0, length);
        const name = join(this.dir, chunkFileName(index));
        const input = await fs.open(name, 'r');
        try {
          const actual = (await input.stat()).size;
          if (actual !== length) {
            throw new StorageError(
              'corrupt',
              `chunk ${index} is ${actual} bytes on disk, expected ${length}`,
            );
          }
          await readFully(input, bytes, 0, `chunk ${index}`);
        } finally {
          await input.close().catch(() => undefined);
        }
        this.checkHash(index, bytes, `chunk ${index} on disk no longer matches its hash`);
        sha256.update(bytes);
        await writeFully(out, bytes, index * this.geometry.pieceLengthBytes);
      }
      if (this.sync) await out.datasync();
      await out.close();
      out = undefined;
      await fs.rename(temp, finalPath);
    } catch (error) {
      if (out !== undefined) await out.close().catch(() => undefined);
      await fs.unlink(temp).catch(() => undefined);
      throw toStorageError(error, `cannot combine into ${finalPath}`);
    }
    return { path: finalPath, sha256: sha256.digest('hex') };
  }

  /** Waits for pending summary writes and closes every cached handle. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushSummary().catch(() => undefined);
    this.dropHandles();
    await Promise.all([...this.closing]);
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
   * Rewrites the summary once more after every earlier request. Writes never overlap; requests made
   * while one is queued (not yet started) share it, and it snapshots the state when it starts.
   */
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

  private writeSummarySoon(): Promise<void> {
    if (this.summaryQueued !== undefined) return this.summaryQueued;
    const queued = this.summaryChain
      .catch(() => undefined)
      .then(() => {
        this.summaryQueued = undefined;
        const text = this.summaryText();
        return this.placeFile(SUMMARY_FILE_NAME, Buffer.from(text, 'utf8'), this.sync).catch(
          (error: unknown) => {
            throw toStorageError(error, 'cannot write the summary');
          },
        );
      });
    this.summaryQueued = queued;
    this.summaryChain = queued;
    return queued;
  }

  private async readSummary(): Promise<ParsedSummary | undefined> {
    let handle: FileHandle | undefined;
    try {
      handle = await this.fs.open(join(this.dir, SUMMARY_FILE_NAME), 'r');
      const size = (await handle.stat()).size;
      if (size > MAXIMUM_SUMMARY_BYTES) return undefined;
      const text = Buffer.alloc(size);
      await readFully(handle, text, 0, SUMMARY_FILE_NAME);
      const parsed = parseSummaryDetailed(text.toString('utf8'));
      if (parsed === undefined) return undefined;
      // A summary from another torrent (or a different cut of it) says nothing about ours.
      if (parsed.infoHashHex !== this.infoHashHex.toLowerCase()) return undefined;
      if (parsed.chunks !== this.geometry.pieceCount) return undefined;
      return parsed;
    } catch {
      return undefined;
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  // --- files --------------------------------------------------------------------------------------

  /** Writes `bytes` to a fresh temp name in the folder, optionally datasyncs, renames to `name`. */
  private async placeFile(name: string, bytes: Uint8Array, sync: boolean): Promise<void> {
    const fs = this.fs;
    const temp = join(this.dir, tempName(name));
    let handle: FileHandle | undefined;
    try {
      handle = await fs.open(temp, 'wx', 0o644);
      await writeFully(handle, bytes, 0);
      if (sync) await handle.datasync();
      await handle.close();
      handle = undefined;
      await fs.rename(temp, join(this.dir, name));
    } catch (error) {
      if (handle !== undefined) await handle.close().catch(() => undefined);
      await fs.unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  /** True when chunk_<index> has the right size and hash. */
  private async verifyChunkFile(index: number, buffer: Buffer): Promise<boolean> {
    const length = chunkLength(this.geometry, index);
    let handle: FileHandle | undefined;
    try {
      handle = await this.fs.open(join(this.dir, chunkFileName(index)), 'r');
      const stats = await handle.stat();
      if (!stats.isFile() || stats.size !== length) return false;
      const bytes = buffer.subarray(0, length);
      await readFully(handle, bytes, 0, `chunk ${index}`);
      return bytesEqual(this.sha1(bytes), this.pieceHashes[index] as Uint8Array);
    } catch {
      return false;
    } finally {
      await handle?.close().catch(() => undefined);
    }
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

  // --- read handle cache (LRU; a handle in use is closed only when its last read finishes) ---------

  private acquire(index: number): HandleEntry {
    let entry = this.handles.get(index);
    if (entry !== undefined) {
      this.handles.delete(index);
      this.handles.set(index, entry);
    } else {
      const handle = this.fs.open(join(this.dir, chunkFileName(index)), 'r');
      const created: HandleEntry = { handle, users: 0, evicted: false };
      handle.catch(() => {
        if (this.handles.get(index) === created) this.handles.delete(index);
        created.evicted = true;
      });
      entry = created;
      this.handles.set(index, entry);
      for (const [oldest, old] of this.handles) {
        if (this.handles.size <= this.handleCacheSize) break;
        this.handles.delete(oldest);
        this.retire(old);
      }
    }
    entry.users++;
    return entry;
  }

  private release(entry: HandleEntry): void {
    entry.users--;
    if (entry.evicted && entry.users === 0) this.closeEntry(entry);
  }

  private invalidateHandle(index: number): void {
    const entry = this.handles.get(index);
    if (entry === undefined) return;
    this.handles.delete(index);
    this.retire(entry);
  }

  private dropHandles(): void {
    for (const entry of this.handles.values()) this.retire(entry);
    this.handles.clear();
  }

  private retire(entry: HandleEntry): void {
    if (entry.evicted) return;
    entry.evicted = true;
    if (entry.users === 0) this.closeEntry(entry);
  }

  private closeEntry(entry: HandleEntry): void {
    const closing = entry.handle.then(
      (handle) => handle.close(),
      () => undefined,
    );
    const tracked = closing.catch(() => undefined).finally(() => this.closing.delete(tracked));
    this.closing.add(tracked);
  }
}

// --- helpers ----------------------------------------------------------------------------------------

async function readFully(
  handle: FileHandle,
  into: Uint8Array,
  position: number,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new StorageError('corrupt', `${what}: file ends early`);
    done += bytesRead;
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * SHA-1 of each `pieceLengthBytes` piece of the file at `path`, streaming: with no `sha1` given,
 * node:crypto hashes each piece incrementally; with one, a piece is gathered (one piece in memory).
 */
export async function hashFileChunks(
  path: string,
  pieceLengthBytes: number,
  sha1?: Sha1,
): Promise<{ totalLengthBytes: number; pieceHashes: Uint8Array[] }> {
  if (
    !Number.isSafeInteger(pieceLengthBytes) ||
    pieceLengthBytes < 1 ||
    pieceLengthBytes > MAXIMUM_CHUNK_SIZE_BYTES
  ) {
    throw new RangeError(`bad piece length ${pieceLengthBytes}`);
  }
  const pieceHashes: Uint8Array[] = [];
  let totalLengthBytes = 0;
  let filled = 0;
  let hasher = createHash('sha1');
  const piece = sha1 === undefined ? undefined : Buffer.allocUnsafe(pieceLengthBytes);
  const finishPiece = (): void => {
    if (piece !== undefined && sha1 !== undefined) pieceHashes.push(sha1(piece.subarray(0, filled)));
    else {
      pieceHashes.push(new Uint8Array(hasher.digest()));
      hasher = createHash('sha1');
    }
    filled = 0;
  };
  try {
    const stream = createReadStream(path, {
      highWaterMark: Math.min(1024 * 1024, Math.max(64 * 1024, pieceLengthBytes)),
    });
    for await (const data of stream as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < data.length) {
        const take = Math.min(pieceLengthBytes - filled, data.length - offset);
        const part = data.subarray(offset, offset + take);
        if (piece !== undefined) piece.set(part, filled);
        else hasher.update(part);
        filled += take;
        offset += take;
        totalLengthBytes += take;
        if (filled === pieceLengthBytes) finishPiece();
      }
    }
  } catch (error) {
    throw toStorageError(error, `cannot read ${path}`);
  }
  if (filled > 0) finishPiece();
  return { totalLengthBytes, pieceHashes };
}

// --- summary format -----------------------------------------------------------------------------------

export interface SummaryFacts {
  readonly label: string;
  readonly infoHashHex: string;
  readonly chunks: number;
  readonly held: readonly number[];
  readonly fromOwner: readonly number[];
}

/** One fact per line; ids as compact ascending ranges (`0-4,7,9`), `none` when empty. */
export function formatSummary(facts: SummaryFacts): string {
  return [
    `# swarm summary for ${facts.label}: chunk IDs held (from-owner marks those the owner sent)`,
    `info-hash ${facts.infoHashHex.toLowerCase()}`,
    `chunks ${facts.chunks}`,
    `held ${formatIndices(facts.held)}`,
    `from-owner ${formatIndices(facts.fromOwner)}`,
    '',
  ].join('\n');
}

interface ParsedSummary {
  readonly infoHashHex: string | undefined;
  readonly chunks: number | undefined;
  readonly held: number[];
  readonly fromOwner: number[];
}

/**
 * Reads a summary. Anything malformed (unknown or repeated lines, ids out of order or beyond
 * bounds, from-owner ids that are not held) gives undefined; it never throws.
 */
export function parseSummary(text: string): { held: number[]; fromOwner: number[] } | undefined {
  const parsed = parseSummaryDetailed(text);
  return parsed === undefined ? undefined : { held: parsed.held, fromOwner: parsed.fromOwner };
}

function parseSummaryDetailed(text: string): ParsedSummary | undefined {
  try {
    if (typeof text !== 'string' || text.length > MAXIMUM_SUMMARY_BYTES) return undefined;
    const seen = new Set<string>();
    let infoHashHex: string | undefined;
    let chunks: number | undefined;
    let held: number[] | undefined;
    let fromOwner: number[] | undefined;
    for (const raw of text.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.trim() === '' || line.startsWith('#')) continue;
      const space = line.indexOf(' ');
      if (space <= 0) return undefined;
      const key = line.slice(0, space);
      const value = line.slice(space + 1).trim();
      if (seen.has(key)) return undefined;
      seen.add(key);
      switch (key) {
        case 'info-hash':
          if (!/^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/.test(value)) return undefined;
          infoHashHex = value.toLowerCase();
          break;
        case 'chunks':
          if (!/^(0|[1-9][0-9]{0,6})$/.test(value)) return undefined;
          chunks = Number(value);
          if (chunks > MAXIMUM_CHUNK_COUNT) return undefined;
          break;
        case 'held':
          held = parseIndexList(value);
          if (held === undefined) return undefined;
          break;
        case 'from-owner':
          fromOwner = parseIndexList(value);
          if (fromOwner === undefined) return undefined;
          break;
        default:
          return undefined;
      }
    }
    if (held === undefined) return undefined;
    fromOwner ??= [];
    const limit = chunks ?? MAXIMUM_CHUNK_COUNT;
    if ((held.at(-1) ?? -1) >= limit || (fromOwner.at(-1) ?? -1) >= limit) return undefined;
    const heldSet = new Set(held);
    if (!fromOwner.every((index) => heldSet.has(index))) return undefined;
    return { infoHashHex, chunks, held, fromOwner };
  } catch {
    return undefined;
  }
}

/** `none`, or ascending, non-overlapping ids and ranges `a-b`, each below MAXIMUM_CHUNK_COUNT. */
function parseIndexList(value: string): number[] | undefined {
  if (value === 'none') return [];
  const out: number[] = [];
  let previous = -1;
  for (const part of value.split(',')) {
    const match = /^(0|[1-9][0-9]{0,6})(?:-(0|[1-9][0-9]{0,6}))?$/.exec(part);
    if (match === null) return undefined;
    const start = Number(match[1]);
    const end = match[2] === undefined ? start : Number(match[2]);
    if (start <= previous || end < start || end >= MAXIMUM_CHUNK_COUNT) return undefined;
    for (let index = start; index <= end; index++) out.push(index);
    previous = end;
  }
  return out;
}
