/**
 * The scenario fuzzer behind `npm run fuzz` (src/app/fuzz-command.ts): random scenarios (node count, chunk count and size,
 * capacities, latency, topology, policies, fault schedule) run in the simulator with every
 * invariant checked, TigerBeetle-VOPR style: a faulty phase, then a healed phase in which every
 * live honest peer must finish in bounded time.
 */
import fc from 'fast-check';
import { parseScenario, type ScenarioInput } from './scenario.ts';
import { runScenario, type SimResult } from './simulator.ts';

const NAMES = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];

const capacity = fc.integer({ min: 100_000, max: 5_000_000 });

const faultArbitrary = (peers: number) => {
  const peer = fc.integer({ min: 0, max: peers - 1 }).map((index) => NAMES[index] as string);
  const at = fc.integer({ min: 0, max: 3_000 });
  const duration = fc.integer({ min: 100, max: 3_000 });
  return fc.oneof(
    fc.record({ kind: fc.constant('reset' as const), atMs: at, node: fc.oneof(peer, fc.constant('owner')) }),
    fc.record({
      kind: fc.constant('crash' as const),
      atMs: at,
      node: fc.oneof(peer, fc.constant('owner')),
      restartAfterMs: duration,
    }),
    fc.record({
      kind: fc.constant('move' as const),
      atMs: at,
      node: peer,
      restartAfterMs: fc.integer({ min: 0, max: 500 }),
    }),
    fc.record({ kind: fc.constant('owner-leave' as const), atMs: at }),
    fc.record({
      kind: fc.constant('partition' as const),
      atMs: at,
      nodes: fc.uniqueArray(peer, { minLength: 1, maxLength: Math.max(1, peers - 1) }),
      healAfterMs: duration,
    }),
    fc.record({
      kind: fc.constant('slow' as const),
      atMs: at,
      node: fc.oneof(peer, fc.constant('owner')),
      uploadBytesPerSecond: fc.constantFrom(1, 10_000),
      durationMs: duration,
    }),
    fc.record({ kind: fc.constant('corrupt' as const), atMs: at, node: peer }),
    fc.record({ kind: fc.constant('disk-full' as const), atMs: at, node: peer, durationMs: duration }),
  );
};

/** A small random scenario: up to 7 peers and a file of 5 to 24 chunks of odd sizes. */
export const scenarioArbitrary: fc.Arbitrary<ScenarioInput> = fc
  .record({
    peers: fc.integer({ min: 1, max: 7 }),
    chunks: fc.integer({ min: 5, max: 24 }),
    chunkSizeBytes: fc.integer({ min: 1_000, max: 40_000 }),
    shortBytes: fc.integer({ min: 0, max: 999 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 }),
  })
  .chain((base) =>
    fc.record({
      name: fc.constant('fuzz'),
      seed: fc.constant(base.seed),
      file: fc.constant({
        sizeBytes: base.chunks * base.chunkSizeBytes - base.shortBytes,
        chunkSizeBytes: base.chunkSizeBytes,
      }),
      topology: fc.record({
        kind: fc.constantFrom('ring' as const, 'mesh' as const, 'full' as const, 'star' as const),
        degree: fc.integer({ min: 1, max: 4 }),
      }),
      policies: fc.record({
        picker: fc.constantFrom('random' as const, 'rarest-first' as const),
        phases: fc.constantFrom('two-phase' as const, 'overlapped' as const),
        endgame: fc.boolean(),
        ownerAdvertising: fc.constantFrom('all' as const, 'shares' as const),
      }),
      owner: fc.record({
        uploadBytesPerSecond: capacity,
        downloadBytesPerSecond: capacity,
        latencyMs: fc.integer({ min: 0, max: 80 }),
      }),
      peers: fc
        .array(
          fc.record({
            uploadBytesPerSecond: capacity,
            downloadBytesPerSecond: capacity,
            latencyMs: fc.integer({ min: 0, max: 80 }),
            joinAtMs: fc.integer({ min: 0, max: 1_000 }),
          }),
          { minLength: base.peers, maxLength: base.peers },
        )
        .map((peers) => peers.map((peer, index) => ({ id: NAMES[index] as string, ...peer }))),
      faults: fc.array(faultArbitrary(base.peers), { maxLength: 4 }),
      invariants: fc.constant('full' as const),
      livenessBoundMs: fc.constant(120_000),
    }),
  );

/**
 * Only scenarios that can be finished are asked to finish. Star peers trade with nobody, so an owner
 * leaving a star strands them; and once the owner has left, banning a lying peer can cut honest
 * peers off from the rest (a peer whose only neighbour lied). So the owner stays in those cases.
 */
export const fuzzScenarioArbitrary: fc.Arbitrary<ScenarioInput> = scenarioArbitrary.map((input) => {
  const faults = input.faults ?? [];
  const strands = input.topology.kind === 'star' || faults.some((fault) => fault.kind === 'corrupt');
  return strands ? { ...input, faults: faults.filter((fault) => fault.kind !== 'owner-leave') } : input;
});

export interface FuzzFailure {
  readonly scenario: ScenarioInput;
  readonly result: SimResult | undefined;
  readonly message: string;
}

/** Runs one generated scenario; undefined when every invariant held and every honest peer finished. */
export function check(input: ScenarioInput): FuzzFailure | undefined {
  const parsed = parseScenario(input);
  if (!parsed.ok)
    return {
      scenario: input,
      result: undefined,
      message: `generated an invalid scenario: ${JSON.stringify(parsed.issues)}`,
    };
  const result = runScenario(parsed.scenario);
  if (result.failure === undefined) return undefined;
  return {
    scenario: input,
    result,
    message: `${result.failure.kind} at ${result.failure.atMs} ms: ${result.failure.message}`,
  };
}

/**
 * Issue #19's family: the owner leaves once the swarm holds every chunk (its tracker with it, or no
 * tracker at all), peers join at random times, and the later ones know one live peer only; peer
 * exchange must lead each to the rest. No other faults, so every peer can and must finish. Peers
 * told by the tracker join before the owner may leave (a tracker gone before they come tells them
 * nothing), and there are at least two, so each has a mesh neighbour: one that knew only the owner
 * would be stranded if the owner left before its first `ut_pex` got through (fuzz seed 1, run 301).
 */
const EARLY_JOIN_MS = 1_000;

export const ownerGoneArbitrary: fc.Arbitrary<ScenarioInput> = fc
  .record({
    early: fc.integer({ min: 2, max: 4 }),
    late: fc.integer({ min: 1, max: 4 }),
    chunks: fc.integer({ min: 5, max: 16 }),
    chunkSizeBytes: fc.integer({ min: 1_000, max: 20_000 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 }),
    absent: fc.boolean(),
  })
  .chain((base) => {
    const peer = (id: string, maxJoinMs: number, knows: 'tracker' | 'one-live-peer') =>
      fc.record({
        id: fc.constant(id),
        uploadBytesPerSecond: capacity,
        downloadBytesPerSecond: capacity,
        latencyMs: fc.integer({ min: 0, max: 80 }),
        joinAtMs: fc.integer({ min: 0, max: maxJoinMs }),
        knows: fc.constant(knows),
      });
    const early = NAMES.slice(0, base.early).map((id) =>
      peer(id, EARLY_JOIN_MS, base.absent ? 'one-live-peer' : 'tracker'),
    );
    const late = NAMES.slice(base.early, base.early + base.late).map((id) =>
      peer(id, 5_000, 'one-live-peer'),
    );
    return fc.record({
      name: fc.constant('fuzz-owner-gone'),
      seed: fc.constant(base.seed),
      file: fc.constant({
        sizeBytes: base.chunks * base.chunkSizeBytes,
        chunkSizeBytes: base.chunkSizeBytes,
      }),
      topology: fc.oneof(
        fc.record({ kind: fc.constant('mesh' as const), degree: fc.integer({ min: 1, max: 4 }) }),
        fc.record({ kind: fc.constant('full' as const) }),
      ),
      policies: fc.record({
        picker: fc.constantFrom('random' as const, 'rarest-first' as const),
        phases: fc.constantFrom('two-phase' as const, 'overlapped' as const),
        ownerAdvertising: fc.constantFrom('all' as const, 'shares' as const),
        peerExchange: fc.constant(true),
      }),
      tracker: fc.constant(base.absent ? ('absent' as const) : ('leaves-with-owner' as const)),
      owner: fc.record({
        uploadBytesPerSecond: capacity,
        downloadBytesPerSecond: capacity,
        latencyMs: fc.integer({ min: 0, max: 80 }),
      }),
      peers: fc.tuple(...early, ...late),
      faults: fc.tuple(
        fc.record({
          kind: fc.constant('owner-leave' as const),
          atMs: fc.integer({ min: EARLY_JOIN_MS, max: 3_000 }),
        }),
      ),
      invariants: fc.constant('full' as const),
      livenessBoundMs: fc.constant(120_000),
    });
  });

/** The fuzzer's scenario families, by the name `npm run fuzz -- --family` takes. */
export const FUZZ_FAMILIES = { faults: fuzzScenarioArbitrary, 'owner-gone': ownerGoneArbitrary } as const;
