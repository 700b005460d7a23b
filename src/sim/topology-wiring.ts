/**
 * Who knows whom at the start: both ends of every edge of the scenario's topology (ring, full or
 * mesh), as a tracker's peer list would tell them, so either end can reconnect after a fault. Both
 * may dial; the engines keep one connection per pair.
 */
import type { PeerRole } from '../engine/engine.ts';
import type { Random } from '../engine/random.ts';
import { meshEdges } from './mesh.ts';
import type { PeerPlan, Scenario } from './scenario.ts';

/** Mesh degree when the scenario gives none. */
const DEFAULT_MESH_DEGREE = 4;

/** The part of a node the wiring fills in. */
export interface WiredNode {
  readonly address: string;
  /** The addresses it is told of, in the order it is told. */
  readonly peers: { address: string; role: PeerRole }[];
  /** The nodes that dial it. */
  readonly dialledBy: string[];
}

/**
 * Fills in every peer's list: the owner first, then its topology neighbours, then whoever dials it.
 * The order is part of the trace, so it never changes for a given scenario and seed.
 */
export function wireTopology(
  topology: Scenario['topology'],
  plans: readonly PeerPlan[],
  owner: WiredNode,
  nodeOf: (id: string) => WiredNode,
  random: Random,
): void {
  for (const plan of plans) {
    const node = nodeOf(plan.id);
    node.peers.push({ address: owner.address, role: 'owner' });
    if (topology.kind === 'ring' && plan.downloadFrom !== undefined) {
      node.peers.push({ address: nodeOf(plan.downloadFrom).address, role: 'download-neighbour' });
      nodeOf(plan.downloadFrom).dialledBy.push(plan.id);
    }
  }
  if (topology.kind === 'full') wireFull(plans, nodeOf);
  if (topology.kind === 'mesh') wireMesh(plans, topology.degree ?? DEFAULT_MESH_DEGREE, nodeOf, random);
  for (const plan of plans) {
    const node = nodeOf(plan.id);
    for (const id of node.dialledBy) {
      const address = nodeOf(id).address;
      if (!node.peers.some((peer) => peer.address === address)) {
        node.peers.push({ address, role: 'neighbour' });
      }
    }
  }
}

/** Every peer dials every earlier one. */
function wireFull(plans: readonly PeerPlan[], nodeOf: (id: string) => WiredNode): void {
  plans.forEach((plan, index) => {
    for (let j = 0; j < index; j++) {
      const earlier = (plans[j] as PeerPlan).id;
      nodeOf(plan.id).peers.push({ address: nodeOf(earlier).address, role: 'neighbour' });
      nodeOf(earlier).dialledBy.push(plan.id);
    }
  });
}

/** A random mesh of the given degree, drawn from the topology's random stream. */
function wireMesh(
  plans: readonly PeerPlan[],
  degree: number,
  nodeOf: (id: string) => WiredNode,
  random: Random,
): void {
  for (const [a, b] of meshEdges(plans.length, degree, random)) {
    // The later joiner dials the earlier one, which is then already listening.
    const [dialer, target] =
      (plans[a] as PeerPlan).joinAtMs >= (plans[b] as PeerPlan).joinAtMs ? [a, b] : [b, a];
    const dialerId = (plans[dialer] as PeerPlan).id;
    const targetId = (plans[target] as PeerPlan).id;
    nodeOf(dialerId).peers.push({ address: nodeOf(targetId).address, role: 'neighbour' });
    nodeOf(targetId).dialledBy.push(dialerId);
  }
}
