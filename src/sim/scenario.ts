/**
 * Scenario files: what a simulated run is made of. Parsed with zod so a bad file is refused with
 * the JSON path of the bad field.
 */
import { z } from 'zod';

/**
 * The most peers a scenario may have. What a machine can hold is checked separately, before a run,
 * against its memory (memory-estimate.ts); this only keeps a typo from asking for billions.
 */
export const MAX_PEERS = 100_000;

const nodeId = z.string().regex(/^[A-Za-z0-9_-]{1,8}$/, 'must be 1 to 8 letters, digits, "_" or "-"');
const bytesPerSecond = z.number().int().positive().max(1e12);
const milliseconds = z.number().int().nonnegative().max(86_400_000);

const capacities = {
  uploadBytesPerSecond: bytesPerSecond,
  downloadBytesPerSecond: bytesPerSecond,
  /** One-way latency of the node's access link; a link's latency is the mean of its two ends. */
  latencyMs: milliseconds.default(20),
};

/**
 * Whom a peer knows when it joins: what the owner's tracker says (its topology neighbours and the
 * owner), or one live peer drawn at random when it joins (the owner only while no peer is live), as
 * `swarm peer --connect` against any one peer; it finds the rest by peer exchange.
 */
const knows = z.enum(['tracker', 'one-live-peer']).default('tracker');

const ownerSchema = z.strictObject({ id: nodeId.default('owner'), ...capacities });

const peerSchema = z.strictObject({
  id: nodeId,
  ...capacities,
  /** Ring only: the peer this one downloads from. By default, the next peer in the list. */
  downloadFrom: nodeId.optional(),
  joinAtMs: milliseconds.default(0),
  knows,
});

const peerGroupSchema = z.strictObject({
  count: z.number().int().positive().max(MAX_PEERS),
  idPrefix: z
    .string()
    .regex(/^[A-Za-z_-]{1,4}$/, 'must be 1 to 4 letters, "_" or "-"')
    .default('p'),
  ...capacities,
  joinAtMs: milliseconds.default(0),
  /** Peers of the group join spread evenly over this many milliseconds after joinAtMs. */
  joinSpreadMs: milliseconds.default(0),
  knows,
});

const faultSchema = z.discriminatedUnion('kind', [
  /** Every connection of the node is reset. */
  z.strictObject({ kind: z.literal('reset'), atMs: milliseconds, node: nodeId }),
  /** The node crashes (memory lost, disk kept) and restarts after a while, or when the run heals. */
  z.strictObject({
    kind: z.literal('crash'),
    atMs: milliseconds,
    node: nodeId,
    restartAfterMs: milliseconds.optional(),
  }),
  /** The node crashes and comes back on a new address; the others find it again. */
  z.strictObject({
    kind: z.literal('move'),
    atMs: milliseconds,
    node: nodeId,
    restartAfterMs: milliseconds.default(0),
  }),
  /** The owner leaves for good, as soon as every chunk is held by some live peer. */
  z.strictObject({ kind: z.literal('owner-leave'), atMs: milliseconds }),
  /** The named nodes are cut off from all the others until the partition heals. */
  z.strictObject({
    kind: z.literal('partition'),
    atMs: milliseconds,
    nodes: z.array(nodeId).min(1).max(MAX_PEERS),
    healAfterMs: milliseconds.optional(),
  }),
  /** The node's upload slows to a crawl (a stalled peer at 1 byte/s). */
  z.strictObject({
    kind: z.literal('slow'),
    atMs: milliseconds,
    node: nodeId,
    uploadBytesPerSecond: bytesPerSecond,
    durationMs: milliseconds.optional(),
  }),
  /** From now on the node corrupts every block it uploads: a lying peer. */
  z.strictObject({ kind: z.literal('corrupt'), atMs: milliseconds, node: nodeId }),
  /** The node's disk refuses every write (ENOSPC) for a while. */
  z.strictObject({
    kind: z.literal('disk-full'),
    atMs: milliseconds,
    node: nodeId,
    durationMs: milliseconds.optional(),
  }),
]);

export type Fault = z.output<typeof faultSchema>;
export const FAULT_KINDS = [
  'reset',
  'crash',
  'move',
  'owner-leave',
  'partition',
  'slow',
  'corrupt',
  'disk-full',
] as const;

export const scenarioSchema = z
  .strictObject({
    name: z.string().max(100).optional(),
    seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    file: z.strictObject({
      sizeBytes: z
        .number()
        .int()
        .min(5)
        .max(16 * 1024 ** 3),
      chunkSizeBytes: z
        .number()
        .int()
        .positive()
        .max(16 * 1024 * 1024)
        .optional(),
      /** Seeds the file's bytes; defaults to `seed`, so `--seed` changes the run but not the file. */
      contentSeed: z.number().int().nonnegative().optional(),
    }),
    topology: z.strictObject({
      kind: z.enum(['ring', 'mesh', 'full', 'star']),
      degree: z.number().int().positive().max(100).optional(),
    }),
    policies: z
      .strictObject({
        picker: z.enum(['random', 'rarest-first']).default('random'),
        phases: z.enum(['two-phase', 'overlapped']).default('two-phase'),
        endgame: z.boolean().default(true),
        ownerAdvertising: z.enum(['all', 'shares']).default('shares'),
        ownerShareChunks: z.number().int().positive().optional(),
        /** Peers the owner uploads to at once. */
        ownerUploadSlots: z.number().int().positive().max(10_000).optional(),
        /** Peers each peer uploads to at once (default: every interested neighbour). */
        uploadSlots: z.number().int().positive().max(10_000).optional(),
        /**
         * Requests kept in flight to each neighbour, in milliseconds of what it delivers (engine
         * default 500). Shallow queues suit a large homogeneous mesh, where every request waits its
         * turn behind the others; deep ones suit few or uneven senders (the README has the numbers).
         */
        requestQueueMs: z.number().int().min(10).max(10_000).optional(),
        /**
         * BEP 11 peer exchange between every engine; nodes then have IP addresses (10.x.y.z), since
         * `ut_pex` carries only those. Off by default, so older scenarios run as before.
         */
        peerExchange: z.boolean().default(false),
      })
      .prefault({}),
    network: z
      .strictObject({
        maxSegmentBytes: z
          .number()
          .int()
          .min(1)
          .max(1024 * 1024)
          .default(65536),
        /** Chance, in percent, that a delivered segment is held back and merged with the next. */
        mergePercent: z.number().int().min(0).max(100).default(25),
      })
      .prefault({}),
    owner: ownerSchema,
    peers: z.array(peerSchema).max(MAX_PEERS).default([]),
    peerGroups: z.array(peerGroupSchema).max(100).default([]),
    /**
     * The owner's tracker: `stays` (it tells every joiner, moved node and restarted node whom to
     * dial, even after the owner left), `leaves-with-owner` (once the owner has left, nobody is told
     * anything by it) or `absent` (no tracker: every peer must know one live peer).
     */
    tracker: z.enum(['stays', 'leaves-with-owner', 'absent']).default('stays'),
    maxSimulatedMs: milliseconds.default(3_600_000),
    faults: z.array(faultSchema).max(1000).default([]),
    /** Faults drawn from the run's seed, on top of `faults`: `count` of them within `windowMs`. */
    randomFaults: z
      .strictObject({
        count: z.number().int().min(0).max(100),
        windowMs: milliseconds.default(5_000),
        kinds: z.array(z.enum(FAULT_KINDS)).min(1).optional(),
      })
      .optional(),
    /** When the faulty phase ends and everything heals; by default when the last fault is over. */
    healAtMs: milliseconds.optional(),
    /** After healing, every live honest peer must finish within this long. */
    livenessBoundMs: milliseconds.default(300_000),
    /** `cheap`: storage, advertising and engine limits on every event; `full` also watches the wire. */
    invariants: z.enum(['off', 'cheap', 'full']).default('cheap'),
    /** For testing the checkers: an engine that skips chunk verification must be caught. */
    testing: z.strictObject({ disableChunkVerification: z.boolean().default(false) }).optional(),
  })
  .superRefine((scenario, context) => {
    const ids = new Set<string>([scenario.owner.id]);
    scenario.peers.forEach((peer, index) => {
      if (ids.has(peer.id)) {
        context.addIssue({
          code: 'custom',
          path: ['peers', index, 'id'],
          message: `duplicate node id "${peer.id}"`,
        });
      }
      ids.add(peer.id);
    });
    scenario.peers.forEach((peer, index) => {
      if (peer.downloadFrom === undefined) return;
      if (scenario.topology.kind !== 'ring') {
        context.addIssue({
          code: 'custom',
          path: ['peers', index, 'downloadFrom'],
          message: 'only a ring has download neighbours',
        });
      } else if (!ids.has(peer.downloadFrom) || peer.downloadFrom === scenario.owner.id) {
        context.addIssue({
          code: 'custom',
          path: ['peers', index, 'downloadFrom'],
          message: `names no peer: "${peer.downloadFrom}"`,
        });
      } else if (peer.downloadFrom === peer.id) {
        context.addIssue({
          code: 'custom',
          path: ['peers', index, 'downloadFrom'],
          message: 'a peer cannot download from itself',
        });
      }
    });
    const total = scenario.peers.length + scenario.peerGroups.reduce((sum, group) => sum + group.count, 0);
    if (total === 0)
      context.addIssue({ code: 'custom', path: ['peers'], message: 'a scenario needs at least one peer' });
    if (total > MAX_PEERS)
      context.addIssue({ code: 'custom', path: ['peerGroups'], message: `at most ${MAX_PEERS} peers` });
    const peerIds = new Set(planPeers(scenario as Scenario).map((peer) => peer.id));
    const allIds = new Set([...peerIds, scenario.owner.id]);
    scenario.faults.forEach((fault, index) => {
      const names = fault.kind === 'partition' ? fault.nodes : 'node' in fault ? [fault.node] : [];
      for (const name of names) {
        if (!allIds.has(name)) {
          context.addIssue({ code: 'custom', path: ['faults', index], message: `names no node: "${name}"` });
        }
      }
      if ((fault.kind === 'corrupt' || fault.kind === 'move') && fault.node === scenario.owner.id) {
        context.addIssue({
          code: 'custom',
          path: ['faults', index, 'node'],
          message: `a ${fault.kind} fault needs a peer, not the owner`,
        });
      }
    });
    checkDiscovery(scenario as Scenario, context);
    if (scenario.topology.kind === 'mesh' && scenario.topology.degree === undefined) {
      context.addIssue({ code: 'custom', path: ['topology', 'degree'], message: 'a mesh needs a degree' });
    }
  });

export type Scenario = z.output<typeof scenarioSchema>;

/**
 * A peer that knows one live peer must be able to download from any peer it meets (mesh or full);
 * without a tracker, every peer must know one.
 */
function checkDiscovery(scenario: Scenario, context: z.RefinementCtx): void {
  const lists = [
    ['peers', scenario.peers],
    ['peerGroups', scenario.peerGroups],
  ] as const;
  for (const [list, entries] of lists) {
    entries.forEach((entry, index) => {
      if (
        entry.knows === 'one-live-peer' &&
        scenario.topology.kind !== 'mesh' &&
        scenario.topology.kind !== 'full'
      ) {
        context.addIssue({
          code: 'custom',
          path: [list, index, 'knows'],
          message: `a peer that knows one live peer needs a mesh or full topology, not ${scenario.topology.kind}`,
        });
      }
      if (entry.knows === 'tracker' && scenario.tracker === 'absent') {
        context.addIssue({
          code: 'custom',
          path: [list, index, 'knows'],
          message: 'with no tracker ("tracker": "absent") every peer must know "one-live-peer"',
        });
      }
    });
  }
}
export type ScenarioInput = z.input<typeof scenarioSchema>;

export interface ScenarioIssue {
  /** The bad field as a JSON path, like `$.peers[2].uploadBytesPerSecond`. */
  readonly path: string;
  readonly message: string;
}

export type ScenarioResult =
  | { readonly ok: true; readonly scenario: Scenario }
  | { readonly ok: false; readonly issues: ScenarioIssue[] };

export function parseScenario(value: unknown): ScenarioResult {
  const result = scenarioSchema.safeParse(value);
  if (result.success) return { ok: true, scenario: result.data };
  return {
    ok: false,
    issues: result.error.issues.map((issue) => ({ path: jsonPath(issue.path), message: issue.message })),
  };
}

export function parseScenarioText(text: string): ScenarioResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, issues: [{ path: '$', message: `not JSON: ${(error as Error).message}` }] };
  }
  return parseScenario(value);
}

function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `.${String(part)}`;
  return out;
}

export interface PeerPlan {
  readonly id: string;
  readonly uploadBytesPerSecond: number;
  readonly downloadBytesPerSecond: number;
  readonly latencyMs: number;
  readonly joinAtMs: number;
  readonly downloadFrom: string | undefined;
  readonly knows: 'tracker' | 'one-live-peer';
}

/** The scenario's peers, groups expanded, ring neighbours filled in (each downloads from the next). */
export function planPeers(scenario: Scenario): PeerPlan[] {
  const peers: PeerPlan[] = scenario.peers.map((peer) => ({ ...peer, downloadFrom: peer.downloadFrom }));
  const taken = new Set([scenario.owner.id, ...peers.map((peer) => peer.id)]);
  for (const group of scenario.peerGroups) {
    for (let i = 0; i < group.count; i++) {
      let n = peers.length + 1;
      while (taken.has(`${group.idPrefix}${n}`)) n++;
      const id = `${group.idPrefix}${n}`;
      taken.add(id);
      const spread = group.count > 1 ? Math.floor((group.joinSpreadMs * i) / (group.count - 1)) : 0;
      peers.push({
        id,
        uploadBytesPerSecond: group.uploadBytesPerSecond,
        downloadBytesPerSecond: group.downloadBytesPerSecond,
        latencyMs: group.latencyMs,
        joinAtMs: group.joinAtMs + spread,
        downloadFrom: undefined,
        knows: group.knows,
      });
    }
  }
  if (scenario.topology.kind === 'ring' && peers.length > 1) {
    return peers.map((peer, index) => ({
      ...peer,
      downloadFrom: peer.downloadFrom ?? (peers[(index + 1) % peers.length] as PeerPlan).id,
    }));
  }
  return peers;
}
