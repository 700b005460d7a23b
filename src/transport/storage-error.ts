/** Storage failures as a typed error: a full disk is told apart from every other I/O failure. */

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
