/**
 * `npm run fuzz -- [--runs N] [--seed S]`: random scenarios (node count, chunk count and size,
 * capacities, latency, topology, policies, fault schedule) run in the simulator with every
 * invariant checked, TigerBeetle-VOPR style: a faulty phase, then a healed phase in which every
 * live honest peer must finish in bounded time. A failure is shrunk by fast-check, written to
 * `fuzz-failures/`, and printed with the one command that replays it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
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

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help === true) {
    process.stdout.write('usage: npm run fuzz -- [--runs N] [--seed S]\n');
    return 0;
  }
  const runs = Number(values.runs ?? 200);
  const seed = Number(values.seed ?? 1);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
    process.stderr.write('fuzz: --runs and --seed must be whole numbers\n');
    return 2;
  }
  let last: FuzzFailure | undefined;
  const outcome = fc.check(
    fc.property(fuzzScenarioArbitrary, (input) => {
      last = check(input);
      return last === undefined;
    }),
    { numRuns: runs, seed },
  );
  if (!outcome.failed) {
    process.stdout.write(`fuzz: ${outcome.numRuns} scenarios passed (seed ${seed})\n`);
    return 0;
  }
  // fast-check re-ran the shrunk counterexample last; `last` is its failure.
  const failure = last ?? check(outcome.counterexample?.[0] as ScenarioInput);
  const dir = 'fuzz-failures';
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `seed-${seed}-run-${outcome.numRuns}.json`);
  writeFileSync(file, `${JSON.stringify(failure?.scenario ?? outcome.counterexample?.[0], null, 2)}\n`);
  process.stderr.write(
    `fuzz: FAILED after ${outcome.numRuns} runs (seed ${seed}, path ${outcome.counterexamplePath}), shrunk ${outcome.numShrinks} times\n` +
      `fuzz: ${failure?.message ?? String(outcome.errorInstance)}\n` +
      `fuzz: scenario written to ${file}\n` +
      `replay: npm run sim -- ${file}\n` +
      `rerun the search: npm run fuzz -- --runs ${runs} --seed ${seed}\n`,
  );
  return 1;
}

if (process.argv[1]?.endsWith('fuzz.ts') === true) process.exitCode = main(process.argv.slice(2));
