/**
 * How a simulated node's engine is set up: the torrent, the chunks its disk verifies, the shared
 * hashing shortcut and buffer pool, and the scenario's policies. Each restart builds a fresh engine
 * from these, with a random stream of its own incarnation.
 */
import type { Geometry } from '../engine/chunking.ts';
import type { EngineLimits, EngineOptions } from '../engine/engine.ts';
import { makePeerId } from '../engine/peer-id.ts';
import type { Random } from '../engine/random.ts';
import type { FileChunks } from './memory-disk.ts';
import type { Scenario } from './scenario.ts';
import type { SimNode } from './sim-node.ts';

/** What every engine of one run shares. */
export interface EngineRun {
  readonly scenario: Scenario;
  readonly file: FileChunks;
  readonly infoHash: Uint8Array;
  readonly geometry: Geometry;
  /** Peers in the scenario: the owner's share of chunks is sized by it. */
  readonly peerCount: number;
  readonly limits?: Partial<EngineLimits>;
}

/** The engine of one node incarnation: the torrent, its disk's chunks and the scenario's policies. */
export function engineOptionsFor(node: SimNode, random: Random, run: EngineRun): EngineOptions {
  const { scenario, file, geometry } = run;
  const policies = scenario.policies;
  return {
    role: node.role,
    name: node.id,
    peerId: makePeerId(node.id, random),
    infoHash: run.infoHash,
    pieceHashes: file.pieceHashes,
    geometry,
    sha1: file.engineSha1,
    ...(scenario.testing?.disableChunkVerification === true ? { unsafeSkipVerification: true } : {}),
    allocateChunk: file.allocateChunk,
    knownContent: file.knownContent,
    random,
    have: node.disk.verifiedChunks(),
    fromOwner: node.fromOwner,
    topology: scenario.topology.kind,
    picker: policies.picker,
    phases: policies.phases,
    endgame: policies.endgame,
    ownerAdvertising: policies.ownerAdvertising,
    ownerShareChunks:
      policies.ownerShareChunks ?? Math.ceil(geometry.pieceCount / Math.max(1, run.peerCount)),
    ...(policies.peerExchange ? { peerExchange: true } : {}),
    ...(node.role === 'owner' && policies.ownerUploadSlots !== undefined
      ? { uploadSlots: policies.ownerUploadSlots }
      : {}),
    ...(node.role === 'peer' && policies.uploadSlots !== undefined
      ? { uploadSlots: policies.uploadSlots }
      : {}),
    ...(run.limits === undefined && policies.requestQueueMs === undefined
      ? {}
      : {
          limits: {
            ...(policies.requestQueueMs === undefined ? {} : { requestQueueMs: policies.requestQueueMs }),
            ...run.limits,
          },
        }),
  };
}
