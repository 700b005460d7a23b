import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkLength, planChunks } from '../src/engine/chunking.ts';

function geometry(size: number, chunk?: number) {
  const plan = planChunks(size, chunk);
  if (!plan.ok) throw new Error(plan.error.message);
  return plan.geometry;
}

test('102400-byte chunks, the last shorter', () => {
  const g = geometry(2 * 1024 * 1024);
  assert.equal([g.pieceLengthBytes, g.pieceCount], [102400, 21]);
  assert.is(chunkLength(g, 20), 2 * 1024 * 1024 - 20 * 102400);
  assert.is(chunkLength(g, 0), 102400);
});

test('exactly five full chunks, and just under', () => {
  assert.equal(geometry(512000).pieceCount, 5);
  assert.equal(geometry(512000).pieceLengthBytes, 102400);
  const under = geometry(409600);
  assert.ok(under.pieceCount >= 5);
  assert.is(under.pieceLengthBytes, 102399);
});

test('small files get the largest chunk size that still gives five chunks', () => {
  assert.equal([geometry(5).pieceLengthBytes, geometry(5).pieceCount], [1, 5]);
  assert.equal([geometry(8).pieceLengthBytes, geometry(8).pieceCount], [1, 8]);
  assert.equal([geometry(9).pieceLengthBytes, geometry(9).pieceCount], [2, 5]);
  fc.assert(
    fc.property(fc.integer({ min: 5, max: 10_000_000 }), (size) => {
      const g = geometry(size);
      const larger = g.pieceLengthBytes + 1;
      return g.pieceCount >= 5 && (g.pieceLengthBytes === 102400 || Math.ceil(size / larger) < 5);
    }),
    { seed: 3, numRuns: 500 },
  );
});

test('empty and tiny files are a clear error', () => {
  for (const size of [0, 1, 4, -1, 2.5]) {
    const plan = planChunks(size);
    assert.not.ok(plan.ok);
    assert.is(!plan.ok && plan.error.code, 'file-too-small');
  }
});

test('an explicit chunk size must still give five chunks', () => {
  assert.ok(planChunks(5 * 262144, 262144).ok);
  const plan = planChunks(4 * 262144, 262144);
  assert.is(!plan.ok && plan.error.code, 'bad-chunk-size');
  assert.is(!planChunks(1000, 0).ok && 'refused', 'refused');
});

test.run();
