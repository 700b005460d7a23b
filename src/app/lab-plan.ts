/**
 * What a lab run is made of, decided before anything is made: which scenario fields the lab can
 * honour (the rest are refused by name), one network namespace, veth pair and address per node, the
 * caps, and the faults as a timeline of actions. Pure: the same scenario and run id give the same plan.
 */
import { type Fault, planPeers, type Scenario } from '../sim/scenario.ts';

/** The lab's link layer: one bridge, every node on a /24 of 198.18.0.0/15 (RFC 2544, for testing). */
export const LAB_PREFIX_LENGTH = 24;
/** 198.18.0.0/15 holds this many /24 blocks; a run takes one. */
export const LAB_BLOCKS = 512;
/** Every node process listens on this port inside its own namespace. */
export const LAB_PORT = 6881;
/** Hard limit on nodes in one run, whatever the memory (addresses .1 to .100 of the block). */
export const MAX_LAB_NODES = 100;
/** Memory one node process (Node.js with tsx) needs, for the machine's limit. */
export const NODE_MEMORY_BYTES = 160 * 1024 * 1024;
/** A run that has not finished by then fails (or by the scenario's maxSimulatedMs, if shorter). */
export const LAB_DEADLINE_MS = 120_000;
/** First host number in the block of the addresses a `move` gives. */
const MOVED_HOST_BASE = 128;

export interface LabNode {
  readonly id: string;
  readonly role: 'owner' | 'peer';
  readonly namespace: string;
  /** The veth end on the bridge: its egress is the node's download. */
  readonly hostLink: string;
  /** The veth end in the namespace: its egress is the node's upload. */
  readonly nodeLink: string;
  /** The first address, then one per move. */
  readonly addresses: readonly string[];
  readonly uploadBytesPerSecond: number;
  readonly downloadBytesPerSecond: number;
  readonly joinAtMs: number;
  readonly downloadFrom: string | undefined;
}

/** What the lab does at a time (ms after the start), in order of time, then of the scenario. */
export type LabAction =
  | { readonly kind: 'drop-address'; readonly node: string; readonly address: string }
  | { readonly kind: 'add-address'; readonly node: string; readonly address: string }
  | { readonly kind: 'kill'; readonly node: string }
  | { readonly kind: 'restart'; readonly node: string }
  | { readonly kind: 'owner-leave' }
  | { readonly kind: 'partition'; readonly nodes: readonly string[] }
  | { readonly kind: 'heal'; readonly nodes: readonly string[] }
  | { readonly kind: 'reset'; readonly node: string };

export interface TimedAction {
  readonly atMs: number;
  readonly action: LabAction;
}

export interface LabPlan {
  readonly runId: string;
  readonly bridge: string;
  /** Where partitioned nodes' links go: they reach each other there, and nobody else. */
  readonly islandBridge: string;
  readonly block: number;
  readonly owner: LabNode;
  readonly peers: readonly LabNode[];
  readonly timeline: readonly TimedAction[];
  readonly deadlineMs: number;
}

/** Top-level fields of the simulator's format that only the simulator can honour. */
const SIMULATOR_ONLY: Readonly<Record<string, string>> = {
  network: 'segment splits and merges are the simulator’s model of a stream',
  randomFaults: 'faults drawn from the seed are simulator-only; list them in "faults"',
  healAtMs: 'the lab heals each fault after its own restartAfterMs/healAfterMs',
  livenessBoundMs: 'the lab bounds a run by its own deadline',
  invariants: 'the invariant checkers watch simulated nodes only',
  testing: 'test switches for the simulator’s checkers',
};
const POLICIES_ALLOWED = new Set(['picker', 'phases', 'ownerAdvertising', 'endgame', 'peerExchange']);
const LAB_FAULTS = new Set(['move', 'owner-leave', 'crash', 'partition', 'reset']);

/**
 * The one line that says why the lab cannot run this scenario, naming the field, or undefined.
 * `raw` is the file as parsed JSON (to tell a field given from a default), `maxNodes` what the
 * machine holds.
 */
export function labRefusal(raw: unknown, scenario: Scenario, maxNodes: number): string | undefined {
  const top = raw as Record<string, unknown>;
  for (const [field, why] of Object.entries(SIMULATOR_ONLY))
    if (field in top) return `$.${field}: the lab cannot honour it (${why})`;
  const policies = (top.policies ?? {}) as Record<string, unknown>;
  for (const field of Object.keys(policies))
    if (!POLICIES_ALLOWED.has(field))
      return `$.policies.${field}: the lab cannot honour it (swarm processes take no such option)`;
  if (scenario.policies.endgame !== true)
    return '$.policies.endgame: the lab cannot honour false (swarm processes always use endgame)';
  const nodes = [{ path: '$.owner', latencyMs: scenario.owner.latencyMs }, ...latencies(top, scenario)];
  const latent = nodes.find((node) => node.latencyMs !== 0);
  if (latent !== undefined)
    return `${latent.path}.latencyMs: the lab cannot honour ${latent.latencyMs} ms (this kernel has no netem: links add no latency); say "latencyMs": 0`;
  const count = 1 + planPeers(scenario).length;
  if (count > maxNodes)
    return `$.peers: ${count} nodes, but this machine runs at most ${maxNodes} in the lab`;
  for (const [index, fault] of scenario.faults.entries()) {
    const refusal = faultRefusal(fault, scenario.owner.id);
    if (refusal !== undefined) return `$.faults[${index}]${refusal}`;
  }
  return undefined;
}

function latencies(top: Record<string, unknown>, scenario: Scenario): { path: string; latencyMs: number }[] {
  const given = Array.isArray(top.peers) ? top.peers.length : 0;
  return [
    ...scenario.peers
      .slice(0, given)
      .map((peer, i) => ({ path: `$.peers[${i}]`, latencyMs: peer.latencyMs })),
    ...scenario.peerGroups.map((group, i) => ({ path: `$.peerGroups[${i}]`, latencyMs: group.latencyMs })),
  ];
}

function faultRefusal(fault: Fault, ownerId: string): string | undefined {
  if (!LAB_FAULTS.has(fault.kind))
    return `.kind: the lab cannot honour "${fault.kind}" (it runs move, owner-leave, crash, partition and reset)`;
  if (fault.kind === 'crash' && fault.restartAfterMs === undefined)
    return '.restartAfterMs: the lab needs it for a crash (it restarts the process after that long)';
  if (fault.kind === 'crash' && fault.node === ownerId)
    return '.node: the lab crashes peers only (use owner-leave for the owner)';
  if (fault.kind === 'partition' && fault.healAfterMs === undefined)
    return '.healAfterMs: the lab needs it for a partition (it brings the links up after that long)';
  return undefined;
}

/** The machine's limit on nodes: memory for each process, and the addresses of one block. */
export function maxLabNodes(freeMemoryBytes: number): number {
  return Math.max(0, Math.min(MAX_LAB_NODES, Math.floor(freeMemoryBytes / NODE_MEMORY_BYTES)));
}

/** `a.b.c.d` for host number `host` of /24 block `block` of 198.18.0.0/15. */
export function blockAddress(block: number, host: number): string {
  const base = (198 << 24) + (18 << 16) + block * 256 + host;
  return [base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.');
}

/**
 * The plan for run `runId` (short: it names links, at most 15 characters each) on block `block`.
 * The owner is host 1, peers 2 and up in the scenario's order; each move takes the next of 128 and up.
 */
export function planLab(scenario: Scenario, runId: string, block: number): LabPlan {
  const moves = new Map<string, number>();
  let moved = 0;
  for (const fault of scenario.faults) {
    if (fault.kind !== 'move') continue;
    moves.set(fault.node, (moves.get(fault.node) ?? 0) + 1);
  }
  const node = (
    index: number,
    id: string,
    role: LabNode['role'],
    rest: Omit<LabNode, 'id' | 'role' | 'namespace' | 'hostLink' | 'nodeLink' | 'addresses'>,
  ): LabNode => {
    const addresses = [blockAddress(block, index + 1)];
    for (let i = 0; i < (moves.get(id) ?? 0); i++)
      addresses.push(blockAddress(block, MOVED_HOST_BASE + moved++));
    return {
      id,
      role,
      namespace: `${runId}-${id}`,
      hostLink: `${runId}h${index}`,
      nodeLink: `${runId}n${index}`,
      addresses,
      ...rest,
    };
  };
  const { owner } = scenario;
  const ownerNode = node(0, owner.id, 'owner', {
    uploadBytesPerSecond: owner.uploadBytesPerSecond,
    downloadBytesPerSecond: owner.downloadBytesPerSecond,
    joinAtMs: 0,
    downloadFrom: undefined,
  });
  const peers = planPeers(scenario).map((peer, i) =>
    node(i + 1, peer.id, 'peer', {
      uploadBytesPerSecond: peer.uploadBytesPerSecond,
      downloadBytesPerSecond: peer.downloadBytesPerSecond,
      joinAtMs: peer.joinAtMs,
      downloadFrom: peer.downloadFrom,
    }),
  );
  return {
    runId,
    bridge: `${runId}br`,
    islandBridge: `${runId}bi`,
    block,
    owner: ownerNode,
    peers,
    timeline: timeline(scenario, [ownerNode, ...peers]),
    deadlineMs: Math.min(LAB_DEADLINE_MS, scenario.maxSimulatedMs),
  };
}

function timeline(scenario: Scenario, nodes: readonly LabNode[]): TimedAction[] {
  const actions: TimedAction[] = [];
  const nextAddress = new Map(nodes.map((node) => [node.id, 1]));
  for (const fault of scenario.faults) {
    const at = fault.atMs;
    switch (fault.kind) {
      case 'move': {
        const lab = nodes.find((node) => node.id === fault.node) as LabNode;
        const index = nextAddress.get(lab.id) as number;
        nextAddress.set(lab.id, index + 1);
        const from = lab.addresses[index - 1] as string;
        const to = lab.addresses[index] as string;
        actions.push({ atMs: at, action: { kind: 'drop-address', node: lab.id, address: from } });
        actions.push({
          atMs: at + fault.restartAfterMs,
          action: { kind: 'add-address', node: lab.id, address: to },
        });
        break;
      }
      case 'crash':
        actions.push({ atMs: at, action: { kind: 'kill', node: fault.node } });
        actions.push({
          atMs: at + (fault.restartAfterMs ?? 0),
          action: { kind: 'restart', node: fault.node },
        });
        break;
      case 'owner-leave':
        actions.push({ atMs: at, action: { kind: 'owner-leave' } });
        break;
      case 'partition':
        actions.push({ atMs: at, action: { kind: 'partition', nodes: fault.nodes } });
        actions.push({
          atMs: at + (fault.healAfterMs ?? 0),
          action: { kind: 'heal', nodes: fault.nodes },
        });
        break;
      case 'reset':
        actions.push({ atMs: at, action: { kind: 'reset', node: fault.node } });
        break;
      default:
        throw new Error(`the lab cannot run a ${fault.kind} fault (labRefusal lets none through)`);
    }
  }
  // A stable sort: equal times keep the scenario's order.
  return actions.sort((a, b) => a.atMs - b.atMs);
}
