/**
 * File I/O the store builds on: whole-buffer reads and writes (the OS may move fewer bytes than
 * asked per call) and placing a file atomically by temp file and rename.
 */
import type * as nodeFs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from './storage-error.ts';
import { tempName } from './store-names.ts';

/** The file-system calls `placeFile` makes (the store passes its own, which tests may replace). */
export type PlacingFs = Pick<typeof nodeFs, 'open' | 'rename' | 'unlink'>;

/** Fills `into` from `position`; a file that ends first is 'corrupt'. */
export async function readFully(
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

export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Writes `bytes` to a fresh temp name in `dir`, optionally datasyncs, renames to `name`: a file only
 * ever appears under its final name whole, which is what makes the store crash-safe.
 */
export async function placeFile(
  fs: PlacingFs,
  dir: string,
  name: string,
  bytes: Uint8Array,
  sync: boolean,
): Promise<void> {
  const temp = join(dir, tempName(name));
  let handle: FileHandle | undefined;
  try {
    handle = await fs.open(temp, 'wx', 0o644);
    await writeFully(handle, bytes, 0);
    if (sync) await handle.datasync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, join(dir, name));
  } catch (error) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    await fs.unlink(temp).catch(() => undefined);
    throw error;
  }
}
