/** Piece hashes of a file on disk, streamed: the owner hashes its source before making a torrent. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { MAXIMUM_CHUNK_SIZE_BYTES } from '../engine/chunking.ts';
import type { Sha1 } from '../engine/hash.ts';
import { toStorageError } from './storage-error.ts';

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
