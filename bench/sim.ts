/**
 * The simulator: events per second on a 200-peer, 1000-chunk mesh against a bare binary-heap event
 * loop measured in the same run, chunk deliveries (peers × chunks) per wall second on that mesh, and
 * simulated time against the Kurose–Ross lower bound.
 */
import { readFile } from 'node:fs/promises';
import { EventQueue } from '../src/sim/event-queue.ts';
import { parseScenario, parseScenarioText, type Scenario } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/simulator.ts';
import { median, say } from './lib.ts';

export interface SimBenchOptions {
  readonly meshPeers: number;
  readonly meshChunks: number;
  /** Events the bare loop handles per run. */
  readonly bareEvents: number;
  readonly bareRuns: number;
}

/**
 * The mesh's chunks are one 16 KiB block each: the event count of a run grows with chunks × peers
 * (picks, requests, blocks, haves), not with chunk size, and 1000 chunks of 100 KiB to 200 peers
 * would spend most of its minutes hashing and copying bytes rather than running events.
 */
export const MESH_CHUNK_BYTES = 16384;

export function meshScenario(peers: number, chunks: number): Scenario {
  const parsed = parseScenario({
    name: `mesh${peers}`,
    seed: 1,
    file: { sizeBytes: chunks * MESH_CHUNK_BYTES, chunkSizeBytes: MESH_CHUNK_BYTES },
    topology: { kind: 'mesh', degree: 4 },
    policies: { phases: 'overlapped', picker: 'rarest-first' },
    // ring6's capacities: an owner at 10 MB/s, peers at 2 MB/s up and down, 20 ms.
    owner: { uploadBytesPerSecond: 10_000_000, downloadBytesPerSecond: 10_000_000, latencyMs: 20 },
    peers: [],
    peerGroups: [
      { count: peers, uploadBytesPerSecond: 2_000_000, downloadBytesPerSecond: 2_000_000, latencyMs: 20 },
    ],
  });
  if (!parsed.ok) throw new Error(`mesh scenario: ${JSON.stringify(parsed.issues)}`);
  return parsed.scenario;
}

interface BareEvent {
  readonly node: number;
}

/**
 * What the simulator's loop would cost with nothing to simulate: pop the earliest event, schedule
 * a follow-up a pseudo-random delay later. The queue holds about as many events as the mesh run.
 */
export function bareHeapEventsPerSecond(events: number, pending: number): number {
  const queue = new EventQueue<BareEvent>();
  let state = 0x9e3779b9;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  for (let node = 0; node < pending; node++) queue.push(next() % 20_000, { node });
  let checksum = 0;
  const startedAt = performance.now();
  for (let handled = 0; handled < events; handled++) {
    const timeUs = queue.peekTimeUs();
    const event = queue.pop();
    if (timeUs === undefined || event === undefined) break;
    checksum += event.node;
    queue.push(timeUs + 1 + (next() % 20_000), event);
  }
  const seconds = (performance.now() - startedAt) / 1000;
  if (checksum < 0) throw new Error('unreachable');
  return events / seconds;
}

export async function simBench(options: SimBenchOptions): Promise<Record<string, number>> {
  const ring6Text = await readFile(new URL('../scenarios/ring6.json', import.meta.url), 'utf8');
  const ring6 = parseScenarioText(ring6Text);
  if (!ring6.ok) throw new Error(`scenarios/ring6.json: ${JSON.stringify(ring6.issues)}`);
  const ring = runScenario(ring6.scenario);
  if (ring.failure !== undefined) throw new Error(`ring6 failed: ${ring.failure.message}`);
  say(`sim: ring6 ${ring.simulatedMs} ms simulated, lower bound ${ring.lowerBoundMs} ms`);

  // Deterministic, so one run gives its simulated time exactly; its wall time is one long sample.
  const mesh = meshScenario(options.meshPeers, options.meshChunks);
  say(`sim: mesh of ${options.meshPeers} peers and ${options.meshChunks} chunks (one run)`);
  const startedAt = performance.now();
  const result = runScenario(mesh);
  const wallSeconds = (performance.now() - startedAt) / 1000;
  if (result.failure !== undefined)
    throw new Error(`mesh${options.meshPeers} failed: ${result.failure.message}`);
  const simEventsPerSecond = result.events / wallSeconds;
  // The bench's own mesh, not mesh500 (a minute or more per run, past the stage's budget): each of
  // its peers receives every chunk once, so peers × chunks deliveries in the wall time of the run.
  const simMeshChunkDeliveriesPerSecond = (options.meshPeers * options.meshChunks) / wallSeconds;
  say(
    `sim: mesh ${result.events} events in ${wallSeconds.toFixed(1)} s, ${result.simulatedMs} ms simulated, lower bound ${result.lowerBoundMs} ms`,
  );

  const pending = Math.max(16, options.meshPeers * 4);
  const bare: number[] = [];
  for (let run = 0; run < options.bareRuns; run++)
    bare.push(bareHeapEventsPerSecond(options.bareEvents, pending));
  const simBareEventsPerSecond = median(bare);
  return {
    simEventsPerSecond,
    simBareEventsPerSecond,
    simRatio: simEventsPerSecond / simBareEventsPerSecond,
    simMeshChunkDeliveriesPerSecond,
    simMeshEvents: result.events,
    simMeshWallSeconds: wallSeconds,
    simRing6Ms: ring.simulatedMs,
    simRing6LowerBoundMs: ring.lowerBoundMs,
    simMeshMs: result.simulatedMs,
    simMeshLowerBoundMs: result.lowerBoundMs,
    boundRatioRing6: ring.simulatedMs / ring.lowerBoundMs,
    boundRatioMesh200: result.simulatedMs / result.lowerBoundMs,
  };
}
