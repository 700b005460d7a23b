/**
 * `npm run experiment -- <scenario.json> --vary <field>=<v1>,<v2>… [--seeds N] [--json]`: sweeps one
 * parameter of a scenario over seeds in the simulator (src/sim/experiment.ts) and prints a table.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FIELDS, type Field, sweep } from '../sim/experiment.ts';
import { scenarioSchema } from '../sim/scenario.ts';

const USAGE = `usage: npm run experiment -- <scenario.json> --vary <field>=<v1>,<v2>,... [--seeds N] [--json]
fields: peers, chunks, degree, picker, phases, endgame, ownerAdvertising, ownerShareChunks,
  ownerUploadBytesPerSecond`;

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      vary: { type: 'string' },
      seeds: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const path = positionals[0];
  const match = /^(\w+)=(.+)$/.exec(values.vary ?? '');
  if (path === undefined || match === null || !FIELDS.includes(match[1] as Field)) {
    process.stderr.write(`experiment: a scenario and --vary <field>=<values> are required\n${USAGE}\n`);
    return 2;
  }
  const seedCount = Number(values.seeds ?? 10);
  if (!Number.isInteger(seedCount) || seedCount < 1 || seedCount > 1000) {
    process.stderr.write('experiment: --seeds must be a whole number from 1 to 1000\n');
    return 2;
  }
  const parsed = scenarioSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) {
    process.stderr.write(
      `experiment: ${path} is not a valid scenario (run it with npm run sim for details)\n`,
    );
    return 2;
  }
  const field = match[1] as Field;
  const seeds = Array.from({ length: seedCount }, (_, i) => i + 1);
  const rows = sweep(parsed.data, field, (match[2] as string).split(','), seeds);
  if (values.json === true) {
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

process.exitCode = main(process.argv.slice(2));
