/**
 * Scenario files: what a simulated run is made of. Parsed with zod so a bad file is refused with
 * the JSON path of the bad field.
 */
import { z } from 'zod';

const nodeId = z.string().regex(/^[A-Za-z0-9_-]{1,8}$/, 'must be 1 to 8 letters, digits, "_" or "-"');
const bytesPerSecond = z.number().int().positive().max(1e12);
const milliseconds = z.number().int().nonnegative().max(86_400_000);

const capacities = {
  uploadBytesPerSecond: bytesPerSecond,
  downloadBytesPerSecond: bytesPerSecond,
  /** One-way latency of the node's access link; a link's latency is the mean of its two ends. */
  latencyMs: milliseconds.default(20),
};

const ownerSchema = z.strictObject({ id: nodeId.default('owner'), ...capacities });

const peerSchema = z.strictObject({
  id: nodeId,
  ...capacities,
  /** Ring only: the peer this one downloads from. By default, the next peer in the list. */
  downloadFrom: nodeId.optional(),
  joinAtMs: milliseconds.default(0),
});

const peerGroupSchema = z.strictObject({
  count: z.number().int().positive().max(5000),
  idPrefix: z
    .string()
    .regex(/^[A-Za-z_-]{1,4}$/, 'must be 1 to 4 letters, "_" or "-"')
    .default('p'),
  ...capacities,
  joinAtMs: milliseconds.default(0),
  /** Peers of the group join spread evenly over this many milliseconds after joinAtMs. */
  joinSpreadMs: milliseconds.default(0),
});

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
    peers: z.array(peerSchema).max(5000).default([]),
    peerGroups: z.array(peerGroupSchema).max(100).default([]),
    maxSimulatedMs: milliseconds.default(3_600_000),
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
    if (total > 5000)
      context.addIssue({ code: 'custom', path: ['peerGroups'], message: 'at most 5000 peers' });
    if (scenario.topology.kind === 'mesh' && scenario.topology.degree === undefined) {
      context.addIssue({ code: 'custom', path: ['topology', 'degree'], message: 'a mesh needs a degree' });
    }
  });

export type Scenario = z.output<typeof scenarioSchema>;
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
