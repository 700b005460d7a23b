/**
 * `npm run sim -- <scenario.json> [--seed N] [--json] [--quiet] [--report FILE]`: one simulated run. The simulator
 * itself is pure; this command reads the scenario file and prints.
 * Exit codes: 0 every peer finished with the file, 1 the run failed, 2 bad usage or scenario.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { parseArgs } from 'node:util';
import { memoryRefusal } from '../sim/memory-estimate.ts';
import { parseScenarioText } from '../sim/scenario.ts';
import { runScenario, type SimProgress } from '../sim/simulator.ts';
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
                 upload and download rates, the topology with the bytes on each link

While it runs, a progress line (virtual time, peers complete, events per second) is drawn on stderr
when stderr is a terminal, except with --quiet. A scenario whose estimated memory exceeds the free
memory is refused before it starts (exit 2).`;

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
  const refusal = memoryRefusal(scenario.scenario, freemem() - MEMORY_HEADROOM_BYTES);
  if (refusal !== undefined) {
    process.stderr.write(`sim: ${path}: refused before starting: ${refusal}\n`);
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
  const progress = quiet || !process.stderr.isTTY ? undefined : progressLine();
  const result = runScenario(scenario.scenario, {
    ...(seed === undefined ? {} : { seed }),
    ...(progress === undefined ? {} : { onProgress: progress.update }),
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
  progress?.clear();
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

/** Free memory left to the rest of the machine when deciding whether a run fits. */
const MEMORY_HEADROOM_BYTES = 512 * 1024 * 1024;
/** A terminal's progress line is redrawn at most this often. */
const PROGRESS_REDRAW_MS = 1000;

/** One line on stderr, redrawn in place: virtual time, peers complete, events per wall second. */
function progressLine(): { update: (progress: SimProgress) => void; clear: () => void } {
  const startedAt = performance.now();
  let drawnAt = startedAt;
  let drawn = false;
  return {
    update: (progress) => {
      const now = performance.now();
      if (now - drawnAt < PROGRESS_REDRAW_MS) return;
      drawnAt = now;
      drawn = true;
      const eventsPerSecond = Math.round(progress.events / ((now - startedAt) / 1000));
      process.stderr.write(
        `\r\x1b[Ksim: ${(progress.simulatedMs / 1000).toFixed(1)} s simulated, ` +
          `${progress.peersComplete}/${progress.peers} peers complete, ${eventsPerSecond} events/s`,
      );
    },
    clear: () => {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { seed: { type: 'string' }, report: { type: 'string' }, ...OUTPUT_FLAGS, ...HELP_FLAG },
  });
}

runCommand('sim', main, 'npm run sim -- --help');
