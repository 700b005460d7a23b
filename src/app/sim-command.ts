/**
 * `npm run sim -- <scenario.json> [--seed N] [--json] [--quiet] [--report FILE]`: one simulated run. The simulator
 * itself is pure; this command reads the scenario file and prints.
 * Exit codes: 0 every peer finished with the file, 1 the run failed, 2 bad usage or scenario.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseScenarioText } from '../sim/scenario.ts';
import { runScenario } from '../sim/simulator.ts';
import { HELP_FLAG, OUTPUT_FLAGS } from './args.ts';
import { runCommand } from './command.ts';
import { formatSummary, replayCommand, toJson } from './report.ts';
import { checkReportPath, writeReport } from './report-file.ts';
import { renderReport } from './report-html.ts';
import { SimReport } from './sim-report.ts';

const USAGE = `usage: npm run sim -- <scenario.json> [--seed N] [--json] [--quiet] [--report FILE]

Runs a scenario in the deterministic simulator and prints every activity line with its virtual
time, then a summary per peer. --json prints one JSON object instead; --quiet prints only the summary.
  --report FILE  also write a self-contained HTML page about the run to FILE (replaced if it
                 exists): the chunk map over time, completion times against the lower bound,
                 upload and download rates, the topology with the bytes on each link`;

function main(argv: string[]): number {
  const { values, positionals } = parse(argv);
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const path = positionals[0];
  if (path === undefined || positionals.length > 1) {
    process.stderr.write(`sim: expected one scenario file\n${USAGE}\n`);
    return 2;
  }
  let seed: number | undefined;
  if (values.seed !== undefined) {
    seed = Number(values.seed);
    if (!/^\d+$/.test(values.seed) || !Number.isSafeInteger(seed)) {
      process.stderr.write(`sim: --seed must be a non-negative integer, got "${values.seed}"\n`);
      return 2;
    }
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    process.stderr.write(
      `sim: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
    );
    return 2;
  }
  const scenario = parseScenarioText(text);
  if (!scenario.ok) {
    for (const issue of scenario.issues)
      process.stderr.write(`sim: ${path}: ${issue.path}: ${issue.message}\n`);
    return 2;
  }
  if (values.report !== undefined) checkReportPath(values.report);
  const report = values.report === undefined ? undefined : new SimReport(scenario.scenario);
  const json = values.json === true;
  const quiet = values.quiet === true;
  const lines: string[] = [];
  const flush = (): void => {
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
    lines.length = 0;
  };
  const result = runScenario(scenario.scenario, {
    ...(seed === undefined ? {} : { seed }),
    ...(report === undefined ? {} : { onActivity: report.onActivity }),
    ...(json || quiet
      ? {}
      : {
          onLine: (line: string) => {
            lines.push(line);
            if (lines.length >= 1000) flush();
          },
        }),
  });
  flush();
  if (report !== undefined && values.report !== undefined)
    writeReport(values.report, renderReport(report.finish(result)));
  if (json) process.stdout.write(`${JSON.stringify(toJson(result))}\n`);
  else process.stdout.write(formatSummary(result));
  if (result.failure !== undefined) {
    process.stderr.write(
      `sim: FAILED (${result.failure.kind}) at ${result.failure.atMs} ms: ${result.failure.message}\n` +
        `replay: ${replayCommand(path, result.seed)}\n`,
    );
    return 1;
  }
  return 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { seed: { type: 'string' }, report: { type: 'string' }, ...OUTPUT_FLAGS, ...HELP_FLAG },
  });
}

runCommand('sim', main, 'npm run sim -- --help');
