/**
 * `npm run fuzz -- [--runs N] [--seed S] [--family F]`: runs the simulator's scenario fuzzer (src/sim/fuzz.ts).
 * A failure is shrunk by fast-check, written to `fuzz-failures/`, and printed with the one command
 * that replays it. The seed defaults to 1, so a plain run is reproducible too.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { check, FUZZ_FAMILIES, type FuzzFailure } from '../sim/fuzz.ts';
import type { ScenarioInput } from '../sim/scenario.ts';
import { parseCount, UsageFailure } from './args.ts';
import { runCommand } from './command.ts';

const USAGE = `usage: npm run fuzz -- [--runs N] [--seed S] [--family F]

Runs N random scenarios (default 200) from seed S (default 1, from 0 to 2147483647) in the simulator.
Families: faults (default: random topologies, policies and faults), owner-gone (the owner and its
tracker leave, later peers know one live peer and find the rest by peer exchange).`;

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      family: { type: 'string' },
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
  const arbitrary = FUZZ_FAMILIES[family as keyof typeof FUZZ_FAMILIES];
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
