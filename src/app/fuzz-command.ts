/**
 * `npm run fuzz -- [--runs N] [--seed S] [--family F] [--jobs N]`: runs the simulator's scenario fuzzer
 * (src/sim/fuzz.ts). A failure is shrunk by fast-check, written to `fuzz-failures/`, and printed with
 * the one command that replays it. The seed defaults to 1, so a plain run is reproducible too.
 *
 * With several jobs the scenarios (the very ones fast-check's run would generate, from the same seed)
 * are shared among worker processes. If any fails, the search is run again here, serially, so the
 * failure, its shrinking and the output are exactly those of a serial run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { check, FUZZ_FAMILIES, type FuzzFailure } from '../sim/fuzz.ts';
import type { ScenarioInput } from '../sim/scenario.ts';
import { parseCount, UsageFailure } from './args.ts';
import { runCommand } from './command.ts';
import { MAX_JOBS, runInWorkers, siblingModule } from './worker-pool.ts';

/** A worker costs about half a second to start: fewer runs than this each are done in fewer workers. */
const RUNS_PER_JOB = 100;

const USAGE = `usage: npm run fuzz -- [--runs N] [--seed S] [--family F] [--jobs N]

Runs N random scenarios (default 200) from seed S (default 1, from 0 to 2147483647) in the simulator.
Families: faults (default: random topologies, policies and faults), owner-gone (the owner and its
tracker leave, later peers know one live peer and find the rest by peer exchange).
  --jobs N  run the scenarios in N worker processes (default: one per core, one per ${RUNS_PER_JOB}
            runs at most); the same scenarios and the same result as --jobs 1`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      family: { type: 'string' },
      jobs: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const runs = parseCount(values.runs, '--runs', 200, 1, 1_000_000);
  const seed = parseCount(values.seed, '--seed', 1, 0, 2 ** 31 - 1);
  const family = values.family ?? 'faults';
  if (!Object.hasOwn(FUZZ_FAMILIES, family)) {
    throw new UsageFailure(
      `--family must be one of ${Object.keys(FUZZ_FAMILIES).join(', ')}, not "${family}"`,
    );
  }
  const defaultJobs = Math.max(1, Math.min(availableParallelism(), Math.floor(runs / RUNS_PER_JOB)));
  const jobs = parseCount(values.jobs, '--jobs', defaultJobs, 1, MAX_JOBS);
  const arbitrary = FUZZ_FAMILIES[family as keyof typeof FUZZ_FAMILIES];
  if (jobs > 1) {
    const inputs = fc.sample(arbitrary, { numRuns: runs, seed });
    const failed = await runInWorkers<ScenarioInput, boolean>(
      siblingModule(import.meta.url, 'fuzz-worker'),
      inputs,
      jobs,
    );
    if (!failed.includes(true)) {
      process.stdout.write(`fuzz: ${runs} ${family} scenarios passed (seed ${seed})\n`);
      return 0;
    }
  }
  let last: FuzzFailure | undefined;
  const outcome = fc.check(
    fc.property(arbitrary, (input) => {
      last = check(input);
      return last === undefined;
    }),
    { numRuns: runs, seed },
  );
  if (!outcome.failed) {
    process.stdout.write(`fuzz: ${outcome.numRuns} ${family} scenarios passed (seed ${seed})\n`);
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
      `rerun the search: npm run fuzz -- --runs ${runs} --seed ${seed} --family ${family}\n`,
  );
  return 1;
}

runCommand('fuzz', main, 'npm run fuzz -- --help');
