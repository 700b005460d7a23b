/**
 * How fast the built `swarm` command starts: `swarm --help` against `node -e 0`, each timed as a
 * whole process, alternating, median of several runs. The ratio is the figure to watch (#18: at
 * most 1.5).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median, round } from './lib.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILT_CLI = fileURLToPath(new URL('../dist/app/cli.js', import.meta.url));

function wallMs(args: readonly string[]): number {
  const startedAt = performance.now();
  const run = spawnSync(process.execPath, args, { stdio: 'ignore', cwd: ROOT });
  if (run.status !== 0) throw new Error(`node ${args.join(' ')} exited ${run.status}`);
  return performance.now() - startedAt;
}

export async function cliBench(options: { readonly runs: number }): Promise<Record<string, number>> {
  if (!existsSync(BUILT_CLI)) {
    // `npm ci` builds dist/ (prepare); a checkout that skipped it builds now.
    const build = spawnSync('npm', ['run', 'build'], { stdio: 'ignore', cwd: ROOT });
    if (build.status !== 0) throw new Error('npm run build failed');
  }
  const help: number[] = [];
  const bare: number[] = [];
  wallMs(['-e', '0']);
  for (let i = 0; i < options.runs; i++) {
    bare.push(wallMs(['-e', '0']));
    help.push(wallMs([BUILT_CLI, '--help']));
  }
  const cliHelpMs = median(help);
  const nodeStartMs = median(bare);
  return {
    cliHelpMs: round(cliHelpMs, 1),
    nodeStartMs: round(nodeStartMs, 1),
    cliStartRatio: round(cliHelpMs / nodeStartMs, 3),
  };
}
