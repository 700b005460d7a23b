/**
 * How much memory a scenario's run needs, estimated before it starts, so a run that cannot fit is
 * refused with a reason instead of dying of an out-of-memory error an hour in. The machine's budget
 * comes from the caller (the app reads the free memory): the simulator itself never asks the OS.
 *
 * The constants are peak resident set sizes measured with `/usr/bin/time -v` on mesh scenarios
 * (degree 6, overlapped, 2 MB/s peers, 100 KiB chunks), fitted within 5%:
 *   100 peers x 205 chunks 282 MB, 200 x 205 355 MB, 200 x 52 275 MB, 500 x 205 556 MB.
 * Much of a peer's share is the blocks of the chunks it has under way (about half of each chunk a
 * neighbour is sending it), and the garbage its traffic leaves for the collector.
 */
import { planChunks } from '../engine/chunking.ts';
import { planPeers, type Scenario } from './scenario.ts';

const MIB = 1024 * 1024;
/** Node, the loaded code and the simulator's fixed structures. */
export const BASE_BYTES = 160 * MIB;
/** The file's bytes, its canonical chunks (views of them) and the spare chunk buffers. */
export const BYTES_PER_FILE_BYTE = 2;
/** One peer's engine, connections, chunks under way, decoder and link buffers. */
export const BYTES_PER_PEER = 400 * 1024;
/** What grows with a peer's chunk count: bitfields, availability counts, per-chunk records. */
export const BYTES_PER_PEER_CHUNK = 1600;

export interface MemoryEstimate {
  readonly bytes: number;
  readonly peers: number;
  readonly chunks: number;
}

export function estimateMemoryBytes(scenario: Scenario): MemoryEstimate {
  const peers = planPeers(scenario).length;
  const plan = planChunks(scenario.file.sizeBytes, scenario.file.chunkSizeBytes);
  const chunks = plan.ok ? plan.geometry.pieceCount : 0;
  const bytes =
    BASE_BYTES +
    BYTES_PER_FILE_BYTE * scenario.file.sizeBytes +
    peers * (BYTES_PER_PEER + chunks * BYTES_PER_PEER_CHUNK);
  return { bytes, peers, chunks };
}

/** Why the scenario would not fit in `budgetBytes`, or undefined when it fits. */
export function memoryRefusal(scenario: Scenario, budgetBytes: number): string | undefined {
  const estimate = estimateMemoryBytes(scenario);
  if (estimate.bytes <= budgetBytes) return undefined;
  return (
    `${scenario.name ?? 'the scenario'} would need about ${gib(estimate.bytes)} ` +
    `(${estimate.peers} peers, ${estimate.chunks} chunks: ${gib(BASE_BYTES)} base + ` +
    `${BYTES_PER_PEER / 1024} KiB per peer + ${BYTES_PER_PEER_CHUNK / 1024} KiB per peer and chunk), ` +
    `but only ${gib(Math.max(0, budgetBytes))} of memory is free for it; run fewer peers or a smaller file`
  );
}

function gib(bytes: number): string {
  return `${(bytes / (1024 * MIB)).toFixed(1)} GiB`;
}
