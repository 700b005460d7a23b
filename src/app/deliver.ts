/** Where `swarm get` puts the verified file. */
import { copyFile, constants as fsConstants, link, unlink } from 'node:fs/promises';

/**
 * Puts the combined file at `target` without ever replacing a file there: a hard link (atomic, and
 * it fails if `target` exists) where the folders share a file system, otherwise an exclusive copy.
 */
export async function deliverFile(combinedPath: string, target: string): Promise<void> {
  try {
    await link(combinedPath, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM') throw error;
    await copyFile(combinedPath, target, fsConstants.COPYFILE_EXCL);
  }
  await unlink(combinedPath).catch(() => undefined);
}
