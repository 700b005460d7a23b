/**
 * `npm run bench` — chunk throughput, and how far from the limits measured in the same run.
 *
 *   npm run bench                     the table (about 6 minutes on 2 cores)
 *   npm run bench -- --json           one JSON object of numbers on stdout (the rest on stderr)
 *   npm run bench -- --quick          tiny sizes, one run each: checks the harness in seconds
 *   npm run bench -- --only link,sim  some stages only (cli, codec, verify, sim, memory, link, swarm, anchor)
 *   npm run bench -- --profile        one link transfer under node --cpu-prof, top self time
 */
import { parseArgs } from 'node:util';
import {
  type BenchConfig,
  FULL,
  formatResults,
  QUICK,
  runBenchmarks,
  STAGES,
  type Stage,
} from './harness.ts';
import { killAllNow, MiB, removeTempDirsNow, stopAll } from './lib.ts';
import { profileLink } from './profile.ts';

const USAGE = `usage: npm run bench -- [--json] [--quick] [--only STAGES] [--profile]

  --json         print one JSON object of numbers (progress and the table go to stderr)
  --quick        tiny sizes and one run of each stage (a smoke test of the harness)
  --only S,S     run only these stages: ${STAGES.join(', ')}
  --profile      profile one owner → peer link transfer (node --cpu-prof) and print the top self time`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      only: { type: 'string' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config: BenchConfig = values.quick === true ? QUICK : FULL;
  if (values.profile === true) {
    const dir = await profileLink(values.quick === true ? 4 * MiB : config.link.bytes);
    process.stdout.write(`profiles kept in ${dir}\n`);
    return 0;
  }
  let stages: Stage[] = [...STAGES];
  if (values.only !== undefined) {
    const asked = values.only.split(',').map((name) => name.trim());
    const unknown = asked.filter((name) => !(STAGES as readonly string[]).includes(name));
    if (unknown.length > 0) {
      process.stderr.write(`bench: unknown stage ${unknown.join(', ')} (stages: ${STAGES.join(', ')})\n`);
      return 2;
    }
    stages = asked as Stage[];
  }
  const results = await runBenchmarks(config, stages);
  const table = formatResults(results, config);
  if (values.json === true) {
    // The table still goes to stderr with the progress lines, for the human watching.
    process.stderr.write(`${table}\n`);
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } else process.stdout.write(`${table}\n`);
  return 0;
}

process.on('exit', () => {
  killAllNow();
  removeTempDirsNow();
});
process.on('uncaughtException', (error) => {
  process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
  void stopAll().finally(() => process.exit(1));
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    void stopAll().finally(() => process.exit(1));
  },
);
