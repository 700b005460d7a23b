/**
 * Spare piece bodies (chunk index, offset, then a block of at most BLOCK_LENGTH_BYTES), shared by
 * every decoder and every chunk assembly. A decoder fills one with a piece whose block arrives split
 * across pushes, and the assembly keeps that very body as its copy of the block, or fills a spare
 * one itself. Every byte of a reused body is overwritten before it is
 * read, so reuse changes no result.
 */
import { BLOCK_LENGTH_BYTES } from './messages.ts';

export const PIECE_BODY_BYTES = 8 + BLOCK_LENGTH_BYTES;
/** Where the block starts in a piece body, after its address (index and begin, four bytes each). */
export const BLOCK_OFFSET = 8;
/** Spare bodies kept (16 MiB at most); beyond this they become garbage. */
const MAXIMUM_SPARE_BODIES = 1024;
const spareBodies: Uint8Array[] = [];

/** A piece body to fill: a spare one when there is one. */
export function takePieceBody(): Uint8Array {
  return spareBodies.pop() ?? new Uint8Array(PIECE_BODY_BYTES);
}

/** A body its holder is done with, for reuse. */
export function givePieceBody(body: Uint8Array): void {
  if (spareBodies.length < MAXIMUM_SPARE_BODIES) spareBodies.push(body);
}
