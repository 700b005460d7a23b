/**
 * The `mesh` topology: a random connected graph in which every peer has the same number of
 * neighbours (a random regular graph, as Kraken builds its swarms). Equal degrees matter: where
 * degrees differ, a peer with few neighbours shares each of them with many others and falls
 * behind the whole run, and the slowest peer decides when the swarm is done.
 */
import type { Random } from '../engine/random.ts';

/** Whole-graph retries before settling for a graph whose degrees may differ by a little. */
const ATTEMPTS = 50;

/**
 * Undirected edges `[a, b]` (a < b) of a random connected graph on `count` nodes where every node
 * has `degree` neighbours (capped at count - 1; when count × degree is odd, one node has one
 * fewer). A random cycle through every node comes first, so the graph is connected and stays so
 * once the owner leaves; the other neighbours are paired at random (Steger–Wormald). Degree 1
 * cannot be both regular and connected: it gives a random path.
 */
export function meshEdges(count: number, degree: number, random: Random): [number, number][] {
  if (count < 2) return [];
  const wanted = Math.min(degree, count - 1);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const edges = tryRegular(count, wanted, random);
    if (edges !== undefined) return edges;
  }
  return greedy(count, wanted, random);
}

class Graph {
  readonly neighbours: Set<number>[];
  readonly edges: [number, number][] = [];

  constructor(count: number) {
    this.neighbours = Array.from({ length: count }, () => new Set<number>());
  }

  has(a: number, b: number): boolean {
    return (this.neighbours[a] as Set<number>).has(b);
  }

  link(a: number, b: number): void {
    (this.neighbours[a] as Set<number>).add(b);
    (this.neighbours[b] as Set<number>).add(a);
    this.edges.push(a < b ? [a, b] : [b, a]);
  }

  degree(node: number): number {
    return (this.neighbours[node] as Set<number>).size;
  }
}

/** A random cycle (a path for two nodes or degree 1) through every node. */
function backbone(count: number, wanted: number, random: Random): Graph {
  const graph = new Graph(count);
  const order = random.shuffle(Array.from({ length: count }, (_, index) => index));
  for (let i = 1; i < count; i++) graph.link(order[i - 1] as number, order[i] as number);
  if (count > 2 && wanted >= 2) graph.link(order[count - 1] as number, order[0] as number);
  return graph;
}

function tryRegular(count: number, wanted: number, random: Random): [number, number][] | undefined {
  const graph = backbone(count, wanted, random);
  // One entry per free neighbour slot.
  const stubs: number[] = [];
  for (let node = 0; node < count; node++) {
    for (let k = graph.degree(node); k < wanted; k++) stubs.push(node);
  }
  if (stubs.length % 2 === 1) stubs.pop();
  const take = (at: number): void => {
    stubs[at] = stubs[stubs.length - 1] as number;
    stubs.pop();
  };
  while (stubs.length > 0) {
    let paired = false;
    // Random stubs first; they nearly always fit while many are left.
    for (let tries = 0; tries < 64 && !paired; tries++) {
      const i = random.nextInt(stubs.length);
      const j = random.nextInt(stubs.length);
      const a = stubs[i] as number;
      const b = stubs[j] as number;
      if (i === j || a === b || graph.has(a, b)) continue;
      graph.link(a, b);
      take(Math.max(i, j));
      take(Math.min(i, j));
      paired = true;
    }
    if (paired) continue;
    // Few stubs left and the random ones clash: look for any pair that fits.
    const fit = anyFit(stubs, graph);
    if (fit === undefined) return undefined;
    const [i, j] = fit;
    graph.link(stubs[i] as number, stubs[j] as number);
    take(j);
    take(i);
  }
  return graph.edges;
}

/** Indices i < j of two stubs on distinct, unlinked nodes, if any. */
function anyFit(stubs: readonly number[], graph: Graph): [number, number] | undefined {
  for (let i = 0; i < stubs.length; i++) {
    for (let j = i + 1; j < stubs.length; j++) {
      const a = stubs[i] as number;
      const b = stubs[j] as number;
      if (a !== b && !graph.has(a, b)) return [i, j];
    }
  }
  return undefined;
}

/** The fallback: the backbone, then each node links to random others until it has `wanted`. */
function greedy(count: number, wanted: number, random: Random): [number, number][] {
  const graph = backbone(count, wanted, random);
  for (let node = 0; node < count; node++) {
    const others: number[] = [];
    for (let other = 0; other < count; other++) {
      if (other !== node && !graph.has(node, other) && graph.degree(other) < wanted) others.push(other);
    }
    random.shuffle(others);
    for (const other of others) {
      if (graph.degree(node) >= wanted) break;
      graph.link(node, other);
    }
  }
  return graph.edges;
}
