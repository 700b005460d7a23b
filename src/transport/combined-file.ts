/**
 * The combined file, built while the chunks arrive: each verified chunk is also written at its
 * offset in one hidden temp file, so that finishing is a read-back for the SHA-256 and a rename
 * rather than a second pass over every chunk file. Chunks that did not pass through `put` (held
 * from an earlier run, or a put that failed) are copied in from their chunk files, re-verified, when
 * the file is finished. The temp file only becomes `<fileName>` by rename once whole; one left by a
 * crash is a stray temp that the store deletes when it next opens the folder.
 */
import { createHash } from 'node:crypto';
import type * as nodeFs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Bitfield } from '../engine/bitfield.ts';
import { chunkLength, type Geometry } from '../engine/chunking.ts';
import { readFully, writeFully } from './file-io.ts';
import { StorageError } from './storage-error.ts';
import { tempName } from './store-names.ts';

/** Bytes read back at a time to hash the finished file. */
const HASH_READ_BYTES = 1024 * 1024;

export type CombinedFs = Pick<typeof nodeFs, 'open' | 'rename' | 'unlink'>;

export interface CombinedFileOptions {
  readonly fs: CombinedFs;
  readonly dir: string;
  readonly fileName: string;
  readonly geometry: Geometry;
  /** `datasync` the file before it is renamed into place. */
  readonly sync: boolean;
}

export class CombinedFile {
  private temp: string | undefined;
  private handle: Promise<FileHandle> | undefined;
  private written: Bitfield;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly options: CombinedFileOptions) {
    this.written = new Bitfield(options.geometry.pieceCount);
  }

  /**
   * Writes verified chunk `index` at its place in the temp file. Best effort: a failure here only
   * means `finish` copies this chunk from its chunk file instead.
   */
  put(index: number, bytes: Uint8Array): Promise<void> {
    const { geometry } = this.options;
    const writing = this.open()
      .then((handle) => writeFully(handle, bytes, index * geometry.pieceLengthBytes))
      .then(
        () => this.written.set(index),
        () => this.written.clear(index),
      );
    this.pending.add(writing);
    return writing.finally(() => this.pending.delete(writing));
  }

  /**
   * Completes the file: copies in every chunk `put` did not write (`copy` reads and verifies it),
   * syncs, hashes what is on disk, and renames it to `<dir>/<fileName>`. On failure the temp file
   * is removed and a later call starts afresh.
   */
  async finish(
    copy: (index: number, into: Uint8Array) => Promise<void>,
  ): Promise<{ path: string; sha256: string }> {
    const { geometry, dir, fileName, fs } = this.options;
    await Promise.all([...this.pending]);
    try {
      const handle = await this.open();
      const buffer = Buffer.allocUnsafe(geometry.pieceLengthBytes);
      for (let index = 0; index < geometry.pieceCount; index++) {
        if (this.written.has(index)) continue;
        const bytes = buffer.subarray(0, chunkLength(geometry, index));
        await copy(index, bytes);
        await writeFully(handle, bytes, index * geometry.pieceLengthBytes);
        this.written.set(index);
      }
      if (this.options.sync) await handle.datasync();
      const sha256 = await hashFile(handle, geometry.totalLengthBytes);
      await handle.close();
      this.handle = undefined;
      const path = join(dir, fileName);
      await fs.rename(this.temp as string, path);
      this.temp = undefined;
      return { path, sha256 };
    } catch (error) {
      await this.discard();
      throw error;
    }
  }

  /** Closes and removes the temp file, if any (a stopped or failed run leaves no litter). */
  async discard(): Promise<void> {
    await Promise.all([...this.pending]);
    const handle = this.handle;
    const temp = this.temp;
    this.handle = undefined;
    this.temp = undefined;
    this.written = new Bitfield(this.options.geometry.pieceCount);
    if (handle !== undefined) await handle.then((h) => h.close()).catch(() => undefined);
    if (temp !== undefined) await this.options.fs.unlink(temp).catch(() => undefined);
  }

  private open(): Promise<FileHandle> {
    if (this.handle === undefined) {
      this.temp = join(this.options.dir, tempName(this.options.fileName));
      this.handle = this.options.fs.open(this.temp, 'wx+', 0o644);
    }
    return this.handle;
  }
}

/** SHA-256 of the first `lengthBytes` of the file; a file that ends early is 'corrupt'. */
async function hashFile(handle: FileHandle, lengthBytes: number): Promise<string> {
  const sha256 = createHash('sha256');
  const buffer = Buffer.allocUnsafe(Math.min(HASH_READ_BYTES, Math.max(1, lengthBytes)));
  for (let position = 0; position < lengthBytes; position += buffer.length) {
    const part = buffer.subarray(0, Math.min(buffer.length, lengthBytes - position));
    await readFully(handle, part, position, 'the combined file');
    sha256.update(part);
  }
  if ((await handle.stat()).size !== lengthBytes)
    throw new StorageError('corrupt', `the combined file is not ${lengthBytes} bytes`);
  return sha256.digest('hex');
}
