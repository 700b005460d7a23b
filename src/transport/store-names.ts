/**
 * The names in a store's folder: `chunk_<id>` files, hidden temp files that become them by rename,
 * the summary, and the checks a hostile combined-file name must pass.
 */
import { randomBytes } from 'node:crypto';
import { SUMMARY_FILE_NAME } from './summary-file.ts';

const MAXIMUM_NAME_BYTES = 255;
const TEMP_SUFFIX = /\.tmp-[0-9a-f]{16}$/;
/** A chunk file's name: no leading zeros, at most seven digits (below MAXIMUM_CHUNK_COUNT). */
export const CHUNK_NAME = /^chunk_(0|[1-9][0-9]{0,6})$/;

export function chunkFileName(index: number): string {
  return `chunk_${index}`;
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
export function reservedNameReason(name: string): string | undefined {
  if (name === SUMMARY_FILE_NAME) return 'is the summary file';
  if (/^chunk_[0-9]+$/.test(name)) return 'is a chunk file name';
  if (name.startsWith('.') && TEMP_SUFFIX.test(name)) return 'is a temporary file name';
  return undefined;
}

/** A fresh hidden temp name beside `base`, for write-then-rename. */
export function tempName(base: string): string {
  return `.${base}.tmp-${randomBytes(8).toString('hex')}`;
}

/** A temp file left by a crash mid-write: deleted on open. */
export function isStrayTemp(name: string): boolean {
  return name.startsWith('.') && TEMP_SUFFIX.test(name);
}
