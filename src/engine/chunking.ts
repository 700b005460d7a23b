/**
 * How a file is cut into chunks (BitTorrent pieces): 102400-byte chunks, the last one shorter, and
 * never fewer than five. A file too small for five 102400-byte chunks gets the largest chunk size
 * that still yields five or more.
 */

export const DEFAULT_CHUNK_SIZE_BYTES = 102400;
export const MINIMUM_CHUNK_COUNT = 5;
/** Keeps chunk buffers bounded: no chunk we make or accept is larger than 16 MiB. */
export const MAXIMUM_CHUNK_SIZE_BYTES = 16 * 1024 * 1024;
/** Bounds per-chunk state (bitfields, hash lists) for files from untrusted sources. */
export const MAXIMUM_CHUNK_COUNT = 1 << 20;

export interface Geometry {
  readonly pieceCount: number;
  readonly pieceLengthBytes: number;
  readonly totalLengthBytes: number;
}

export type ChunkingError =
  | { readonly code: 'file-too-small'; readonly message: string }
  | { readonly code: 'bad-chunk-size'; readonly message: string }
  | { readonly code: 'too-many-chunks'; readonly message: string };

export type ChunkingResult =
  | { readonly ok: true; readonly geometry: Geometry }
  | { readonly ok: false; readonly error: ChunkingError };

/**
 * Chooses the chunk size for a file of `totalLengthBytes`. With `chunkSizeBytes` given, that size is
 * used as long as it still gives at least five chunks.
 */
export function planChunks(totalLengthBytes: number, chunkSizeBytes?: number): ChunkingResult {
  if (!Number.isSafeInteger(totalLengthBytes) || totalLengthBytes < MINIMUM_CHUNK_COUNT) {
    return fail(
      'file-too-small',
      `a file must hold at least ${MINIMUM_CHUNK_COUNT} bytes to make ${MINIMUM_CHUNK_COUNT} chunks (got ${totalLengthBytes})`,
    );
  }
  let pieceLengthBytes: number;
  if (chunkSizeBytes !== undefined) {
    if (
      !Number.isSafeInteger(chunkSizeBytes) ||
      chunkSizeBytes < 1 ||
      chunkSizeBytes > MAXIMUM_CHUNK_SIZE_BYTES
    ) {
      return fail(
        'bad-chunk-size',
        `chunk size must be an integer from 1 to ${MAXIMUM_CHUNK_SIZE_BYTES} bytes (got ${chunkSizeBytes})`,
      );
    }
    if (Math.ceil(totalLengthBytes / chunkSizeBytes) < MINIMUM_CHUNK_COUNT) {
      return fail(
        'bad-chunk-size',
        `a chunk size of ${chunkSizeBytes} bytes gives fewer than ${MINIMUM_CHUNK_COUNT} chunks for ${totalLengthBytes} bytes`,
      );
    }
    pieceLengthBytes = chunkSizeBytes;
  } else if (Math.ceil(totalLengthBytes / DEFAULT_CHUNK_SIZE_BYTES) >= MINIMUM_CHUNK_COUNT) {
    pieceLengthBytes = DEFAULT_CHUNK_SIZE_BYTES;
  } else {
    // ceil(L / s) >= 5 holds exactly when s < L / 4, so the largest such s is ceil(L / 4) - 1.
    pieceLengthBytes = Math.ceil(totalLengthBytes / 4) - 1;
  }
  const pieceCount = Math.ceil(totalLengthBytes / pieceLengthBytes);
  if (pieceCount > MAXIMUM_CHUNK_COUNT) {
    return fail('too-many-chunks', `${pieceCount} chunks is more than the limit of ${MAXIMUM_CHUNK_COUNT}`);
  }
  return { ok: true, geometry: { pieceCount, pieceLengthBytes, totalLengthBytes } };
}

/** The length of chunk `index`: the chunk size, or what is left for the last chunk. */
export function chunkLength(geometry: Geometry, index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= geometry.pieceCount) {
    throw new RangeError(`chunk index ${index} outside 0..${geometry.pieceCount - 1}`);
  }
  const start = index * geometry.pieceLengthBytes;
  return Math.min(geometry.pieceLengthBytes, geometry.totalLengthBytes - start);
}

/** Byte offset of chunk `index` within the file. */
export function chunkOffset(geometry: Geometry, index: number): number {
  return index * geometry.pieceLengthBytes;
}

function fail(code: ChunkingError['code'], message: string): ChunkingResult {
  return { ok: false, error: { code, message } };
}
