import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkReadCache } from '../src/transport/chunk-read-cache.ts';

function counting(lengthBytes: number) {
  const reads: number[] = [];
  const cache = new ChunkReadCache(3 * lengthBytes, async (index) => {
    reads.push(index);
    return new Uint8Array(lengthBytes).fill(index);
  });
  return { cache, reads };
}

test('a chunk is read once for all its blocks and all who ask at the same time', async () => {
  const { cache, reads } = counting(100);
  const [a, b] = await Promise.all([cache.get(4, 100), cache.get(4, 100)]);
  await cache.get(4, 100);
  assert.equal(reads, [4]);
  assert.is(a, b);
  assert.is(a[0], 4);
});

test('the byte limit holds: the least recently used chunk goes first', async () => {
  const { cache, reads } = counting(100);
  for (const index of [1, 2, 3]) await cache.get(index, 100);
  await cache.get(1, 100); // 1 is now the most recent
  await cache.get(4, 100); // evicts 2
  assert.ok(cache.sizeBytes <= 300);
  await cache.get(1, 100);
  await cache.get(2, 100);
  assert.equal(reads, [1, 2, 3, 4, 2]);
});

test('a stored chunk is served without a read; a failed read is not remembered', async () => {
  let fail = true;
  const reads: number[] = [];
  const cache = new ChunkReadCache(1000, async (index) => {
    reads.push(index);
    if (fail) throw new Error('EIO');
    return new Uint8Array(10);
  });
  cache.put(7, new Uint8Array(10).fill(7));
  assert.is((await cache.get(7, 10))[0], 7);
  await cache.get(8, 10).then(
    () => assert.unreachable('the read failed'),
    () => undefined,
  );
  fail = false;
  await cache.get(8, 10);
  assert.equal(reads, [8, 8]);
  cache.put(9, new Uint8Array(5000)); // larger than the limit: not kept
  assert.ok(cache.sizeBytes <= 1000);
});

test.run();
