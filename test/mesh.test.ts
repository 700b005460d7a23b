import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Random } from '../src/engine/random.ts';
import { meshEdges } from '../src/sim/mesh.ts';

function degrees(count: number, edges: readonly [number, number][]): number[] {
  const out = new Array<number>(count).fill(0);
  for (const [a, b] of edges) {
    out[a] = (out[a] as number) + 1;
    out[b] = (out[b] as number) + 1;
  }
  return out;
}

function connected(count: number, edges: readonly [number, number][]): boolean {
  const parent = Array.from({ length: count }, (_, index) => index);
  const root = (node: number): number => {
    let at = node;
    while (parent[at] !== at) at = parent[at] as number;
    return at;
  };
  for (const [a, b] of edges) parent[root(a)] = root(b);
  return new Set(Array.from({ length: count }, (_, node) => root(node))).size <= 1;
}

test('mesh: every peer gets exactly `degree` distinct neighbours, and the graph is connected', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 80 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (count, degree, seed) => {
        const edges = meshEdges(count, degree, new Random(seed));
        const keys = new Set<string>();
        for (const [a, b] of edges) {
          assert.ok(a < b && a >= 0 && b < count, `edge ${a}-${b}`);
          keys.add(`${a}-${b}`);
        }
        assert.is(keys.size, edges.length, 'no edge twice');
        assert.ok(connected(count, edges), 'connected');
        const wanted = Math.min(degree, count - 1);
        const seen = degrees(count, edges);
        if (wanted === 1) {
          // Degree 1 cannot be connected beyond two peers: a path, each peer with one or two.
          assert.ok(seen.every((d) => d === 1 || d === 2));
          return;
        }
        const short = seen.filter((d) => d === wanted - 1).length;
        assert.ok(
          seen.every((d) => d === wanted || d === wanted - 1),
          `degrees ${JSON.stringify(seen)}`,
        );
        // Only an odd number of free slots leaves one peer a neighbour short.
        assert.is(short, (count * wanted) % 2);
      },
    ),
    { seed: 7, numRuns: 300 },
  );
});

test('mesh: the same seed gives the same graph, another seed another', () => {
  const a = meshEdges(500, 6, new Random(1));
  assert.equal(a, meshEdges(500, 6, new Random(1)));
  assert.not.equal(a, meshEdges(500, 6, new Random(2)));
  assert.ok(degrees(500, a).every((d) => d === 6));
});

test.run();
