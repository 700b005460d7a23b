/**
 * Chunk assembly with content the driver already holds (the simulator's file): blocks equal to it
 * are kept as the driver's views and the chunk is the driver's own buffer; a block that differs is
 * copied, so corrupt data still reaches verification as it arrived.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkAssembly } from '../src/engine/chunk-assembly.ts';
import { planChunks } from '../src/engine/chunking.ts';
import { newConnectionRecord } from '../src/engine/connection.ts';
import { BLOCK_LENGTH_BYTES } from '../src/engine/messages.ts';
import { Random } from '../src/engine/random.ts';
import { FileChunks } from '../src/sim/memory-disk.ts';

const plan = planChunks(5 * 102_400 + 7_000);
if (!plan.ok) throw new Error('plan');
const geometry = plan.geometry;
const bytes = new Random(7).bytes(geometry.totalLengthBytes);
const file = new FileChunks(bytes, geometry);

function receive(assembly: ChunkAssembly, index: number, corrupt?: number) {
  const conn = newConnectionRecord('c1', 'inbound', 'c1', undefined, geometry, 0);
  const download = assembly.start(index, conn);
  const chunk = file.canonical[index] as Uint8Array;
  // Blocks arrive out of order, each as a fresh copy (as a decoder hands them over).
  const order = [...download.blockState.keys()].reverse();
  for (const block of order) {
    const begin = block * BLOCK_LENGTH_BYTES;
    const copy = chunk.slice(begin, Math.min(begin + BLOCK_LENGTH_BYTES, chunk.length));
    if (block === corrupt) copy[3] = (copy[3] as number) ^ 0xff;
    assembly.markRequested(download, block, conn);
    assembly.store(download, conn, begin, copy);
  }
  assert.ok(assembly.isComplete(download));
  return { download, chunk };
}

test('a chunk whose every block equals the file is the file’s own chunk buffer', () => {
  const assembly = new ChunkAssembly(geometry, undefined, file.knownContent);
  const { download, chunk } = receive(assembly, 2);
  assert.is(download.buffer, chunk);
  assert.is(download.blocks.length, 0);
  assert.ok(file.isChunk(2, download.buffer));
});

test('the last, shorter chunk is handled the same way', () => {
  const assembly = new ChunkAssembly(geometry, undefined, file.knownContent);
  const last = geometry.pieceCount - 1;
  const { download, chunk } = receive(assembly, last);
  assert.is(download.buffer, chunk);
  assert.is(download.buffer.length, 7_000);
});

test('one corrupt block: the chunk is a copy holding exactly what arrived', () => {
  const assembly = new ChunkAssembly(geometry, undefined, file.knownContent);
  const { download, chunk } = receive(assembly, 1, 3);
  assert.is.not(download.buffer, chunk);
  assert.not.ok(file.isChunk(1, download.buffer));
  const expected = chunk.slice();
  const at = 3 * BLOCK_LENGTH_BYTES + 3;
  expected[at] = (expected[at] as number) ^ 0xff;
  assert.equal(Buffer.compare(download.buffer, expected), 0);
  // The hash the engine checks is the true one of the corrupt bytes, not the file's.
  assert.is.not(Buffer.compare(file.engineSha1(download.buffer), file.pieceHashes[1] as Uint8Array), 0);
});

test('without known content every block is copied, and the result is the same bytes', () => {
  const assembly = new ChunkAssembly(geometry, undefined, undefined);
  const { download, chunk } = receive(assembly, 2);
  assert.is.not(download.buffer, chunk);
  assert.equal(Buffer.compare(download.buffer, chunk), 0);
});

test('the file’s own chunks are never recycled as scratch buffers', () => {
  const chunk = file.canonical[0] as Uint8Array;
  file.recycle(0, chunk);
  const fresh = file.allocateChunk(chunk.length);
  assert.is.not(fresh, chunk);
});

test.run();
