/**
 * `npm run experiment -- <scenario.json> --vary <field>=<v1>,<v2>… [--seeds N] [--jobs N] [--json]`:
 * sweeps one parameter of a scenario over seeds in the simulator (src/sim/experiment.ts) and prints a
 * table. With --jobs, the runs are shared among worker processes; the table is the same.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  FIELDS,
  type Field,
  type RunMeasure,
  type SweepRow,
  summarize,
  sweep,
  withField,
} from '../sim/experiment.ts';
import { parseScenario, type Scenario } from '../sim/scenario.ts';
import { HELP_FLAG, parseCount, UsageFailure } from './args.ts';
import { runCommand } from './command.ts';
import type { RunRequest } from './experiment-worker.ts';
import { MAX_JOBS, runInWorkers, siblingModule } from './worker-pool.ts';

const USAGE = `usage: npm run experiment -- <scenario.json> --vary <field>=<v1>,<v2>,... [--seeds N] [--jobs N] [--json]
  --jobs N  run the seeds in N worker processes (default 1: in this process); same results
fields: peers, chunks, degree, picker, phases, endgame, ownerAdvertising, ownerShareChunks,
  ownerUploadBytesPerSecond`;

/** The scenario file, read and validated: a missing or bad file is the user's to fix (exit 2). */
function readScenario(path: string): Scenario {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageFailure(code === undefined ? `${path} is not JSON` : `cannot read ${path}: ${code}`);
  }
  const parsed = parseScenario(value);
  if (!parsed.ok) {
    const first = parsed.issues[0];
    throw new UsageFailure(`${path}: ${first?.path ?? '$'}: ${first?.message ?? 'not a scenario'}`);
  }
  return parsed.scenario;
}

/** `--vary field=v1,v2`: a known field, and values each of which makes a valid scenario. */
function parseVary(text: string | undefined, base: Scenario): { field: Field; values: string[] } {
  if (text === undefined) throw new UsageFailure('--vary <field>=<v1>,<v2>,... is required');
  const match = /^([^=]+)=(.+)$/.exec(text);
  if (match === null) throw new UsageFailure(`--vary: "${text}" is not <field>=<v1>,<v2>,...`);
  const field = match[1] as string;
  if (!FIELDS.includes(field as Field)) {
    throw new UsageFailure(`--vary: unknown field "${field}" (fields: ${FIELDS.join(', ')})`);
  }
  const values = (match[2] as string).split(',');
  for (const value of values) {
    try {
      withField(base, field as Field, value);
    } catch (error) {
      throw new UsageFailure(`--vary: ${(error as Error).message}`);
    }
  }
  return { field: field as Field, values };
}

/**
 * The sweep with its runs shared among `jobs` worker processes. Rows are built from the runs in seed
 * order, as the serial sweep builds them.
 */
async function sweepInWorkers(
  base: Scenario,
  field: Field,
  values: readonly string[],
  seeds: readonly number[],
  jobs: number,
): Promise<SweepRow[]> {
  const runs: RunRequest[] = values.flatMap((value) => seeds.map((seed) => ({ base, field, value, seed })));
  const measures = await runInWorkers<RunRequest, RunMeasure>(
    siblingModule(import.meta.url, 'experiment-worker'),
    runs,
    jobs,
  );
  return values.map((value, row) =>
    summarize(value, measures.slice(row * seeds.length, (row + 1) * seeds.length)),
  );
}

async function main(argv: string[]): Promise<number> {
  const { values: options, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      vary: { type: 'string' },
      seeds: { type: 'string' },
      jobs: { type: 'string' },
      json: { type: 'boolean' },
      ...HELP_FLAG,
    },
  });
  if (options.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const path = positionals[0];
  if (path === undefined || positionals.length > 1) throw new UsageFailure('expected one scenario file');
  const seedCount = parseCount(options.seeds, '--seeds', 10, 1, 1000);
  const jobs = parseCount(options.jobs, '--jobs', 1, 1, MAX_JOBS);
  const base = readScenario(path);
  const { field, values } = parseVary(options.vary, base);
  const seeds = Array.from({ length: seedCount }, (_, i) => i + 1);
  const rows =
    jobs === 1 ? sweep(base, field, values, seeds) : await sweepInWorkers(base, field, values, seeds, jobs);
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ scenario: path, field, seeds: seedCount, rows })}\n`);
    return 0;
  }
  process.stdout.write(`${path}: ${field} over ${seedCount} seeds (time / lower bound)\n`);
  process.stdout.write(
    `${'value'.padEnd(14)}${'median'.padStart(8)}${'min'.padStart(8)}${'max'.padStart(8)}${'tail ms'.padStart(10)}${'failed'.padStart(8)}\n`,
  );
  for (const row of rows) {
    process.stdout.write(
      `${row.value.padEnd(14)}${row.medianRatio.toFixed(3).padStart(8)}${row.minRatio.toFixed(3).padStart(8)}${row.maxRatio.toFixed(3).padStart(8)}${String(row.medianTailMs).padStart(10)}${String(row.failures).padStart(8)}\n`,
    );
  }
  return 0;
}

runCommand('experiment', main, 'npm run experiment -- --help');
