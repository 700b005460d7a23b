/**
 * `npm run lab -- <scenario.json> [--json] [--runs N] [--keep]`: a simulator scenario on real
 * hosts — each node a `swarm` process in its own network namespace, on its own address, with its
 * capacities as tc caps — then the same scenario in the simulator, and how the two times compare.
 * Exit codes: 0 every copy verified, 1 the run failed, 2 bad usage, a scenario the lab cannot run,
 * or a machine where namespaces cannot be made (nothing is made then).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { scenarioFile } from '../sim/memory-disk.ts';
import { parseScenarioText, type Scenario } from '../sim/scenario.ts';
import { runScenario } from '../sim/simulator.ts';
import { HELP_FLAG, parseCount, UsageFailure } from './args.ts';
import { RunFailure, runCommand } from './command.ts';
import { namespaceRefusal } from './lab-net.ts';
import { labRefusal, maxLabNodes } from './lab-plan.ts';
import { type LabRunResult, runLabOnce } from './lab-run.ts';
import { cleanStaleRuns } from './lab-state.ts';
import { formatTable } from './report.ts';

const USAGE = `usage: npm run lab -- <scenario.json> [--json] [--runs N] [--keep]

Runs a simulator scenario on real hosts (as root): each node (owner and peers) a swarm process in
its own network namespace, on its own address of 198.18.0.0/15 on one bridge, its upload and
download capacities as tc caps; the scenario's move, crash, owner-leave, partition and reset
faults carried out on them; every copy verified; then every namespace, link and process removed
(after a failure, Ctrl-C or SIGTERM too). Then the same scenario runs in the simulator, and the
times are compared (ratio = simulated / real). Fields the lab cannot honour are refused by name.
  --runs N   run the lab N times (default 1) and report the median real time
  --json     one JSON object: realMs, simMs, ratio, peers (id, complete, fileSha256, addresses)
  --keep     keep the work folder (every node's folder) and print where it is`;

/** Memory left to the rest of the machine when deciding how many nodes fit. */
const MEMORY_HEADROOM_BYTES = 512 * 1024 * 1024;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, keep: { type: 'boolean' }, runs: { type: 'string' }, ...HELP_FLAG },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageFailure('expected one scenario file');
  const path = positionals[0] as string;
  const runs = parseCount(values.runs, '--runs', 1, 1, 9);
  const { raw, scenario } = readScenario(path);
  const refusal = labRefusal(raw, scenario, maxLabNodes(freemem() - MEMORY_HEADROOM_BYTES));
  if (refusal !== undefined) throw new UsageFailure(`${path}: ${refusal}`);
  const cannot = await namespaceRefusal();
  if (cannot !== undefined) throw new UsageFailure(cannot, 'nothing was made');
  for (const line of await cleanStaleRuns()) process.stderr.write(`lab: ${line}\n`);

  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    // A second signal while tearing down is ignored: the handler stays, so the default (dying
    // with namespaces left behind) never runs.
    if (!interrupt.signal.aborted) interrupt.abort(`interrupted (${signal}); everything torn down`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const workDir = mkdtempSync(join(tmpdir(), 'swarm-lab-'));
  try {
    const { bytes } = scenarioFile(scenario);
    const fileName = `${scenario.name ?? 'lab'}.bin`;
    const filePath = join(workDir, fileName);
    writeFileSync(filePath, bytes);
    const fileSha256 = createHash('sha256').update(bytes).digest('hex');
    const results: LabRunResult[] = [];
    for (let run = 1; run <= runs; run++) {
      const runDir = join(workDir, `run${run}`);
      mkdirSync(runDir);
      const files = { workDir: runDir, filePath, fileName };
      const result = await runLabOnce(scenario, files, fileSha256, interrupt.signal);
      results.push(result);
      if (!result.ok) break;
    }
    const sim = runScenario(scenario);
    const summary = summarise(scenario, results, sim.simulatedMs, fileSha256);
    if (values.keep === true) process.stderr.write(`lab: kept ${workDir}\n`);
    process.stdout.write(values.json === true ? `${JSON.stringify(summary)}\n` : formatHuman(summary));
    const failed = results.find((result) => !result.ok);
    if (failed !== undefined) throw new RunFailure(failed.failure ?? 'a copy does not match');
    return 0;
  } finally {
    if (values.keep !== true) rmSync(workDir, { recursive: true, force: true });
  }
}

function readScenario(path: string): { raw: unknown; scenario: Scenario } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageFailure(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const parsed = parseScenarioText(text);
  if (!parsed.ok) {
    const issue = parsed.issues[0];
    throw new UsageFailure(`${path}: ${issue?.path}: ${issue?.message}`);
  }
  return { raw: JSON.parse(text) as unknown, scenario: parsed.scenario };
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : Math.round(((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2);
}

function summarise(scenario: Scenario, results: readonly LabRunResult[], simMs: number, fileSha256: string) {
  const realRunsMs = results.map((result) => result.realMs).filter((ms): ms is number => ms !== null);
  const realMs = results.every((result) => result.ok) ? median(realRunsMs) : null;
  const last = results[results.length - 1];
  return {
    scenario: scenario.name ?? null,
    runs: results.length,
    realMs,
    realRunsMs,
    simMs,
    ratio: realMs === null || realMs === 0 ? null : Math.round((simMs / realMs) * 1000) / 1000,
    fileSha256,
    peers: last?.peers ?? [],
    ...(last?.failure === undefined ? {} : { failure: last.failure }),
  };
}

function formatHuman(summary: ReturnType<typeof summarise>): string {
  const rows = summary.peers.map((peer) => [
    peer.id,
    peer.complete && peer.fileSha256 === summary.fileSha256
      ? 'verified'
      : peer.complete
        ? 'WRONG'
        : 'incomplete',
    peer.completedAtMs === null ? '-' : String(peer.completedAtMs),
    String(peer.restarts),
    peer.addresses.join(' → '),
  ]);
  const table = formatTable(['peer', 'copy', 'done ms', 'restarts', 'addresses'], rows);
  const ratio = summary.ratio === null ? '-' : summary.ratio.toFixed(3);
  return `${table}\nlab ${summary.scenario ?? ''}: real ${summary.realMs ?? '-'} ms (runs: ${summary.realRunsMs.join(', ')}), simulated ${summary.simMs} ms, simulated/real ${ratio}\n`;
}

runCommand('lab', main, 'npm run lab -- --help');
