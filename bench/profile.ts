/**
 * `npm run bench -- --profile`: one link transfer with the peer (and the owner) under
 * `node --cpu-prof`, summarised as the functions with the most self time. Evidence for where the
 * hot path spends its time; the .cpuprofile files are kept for Chrome DevTools.
 */
import { readdir, readFile, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  MB,
  makeRandomFile,
  makeTempDir,
  type NodeProcess,
  removeDir,
  requireFreeSpace,
  say,
} from './lib.ts';
import { download, startSeeder } from './link.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) time. */
  readonly percent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly busyMs: number;
  readonly functions: ProfileEntry[];
  readonly files: ProfileEntry[];
}

function where(url: string): string {
  if (url === '') return '';
  const path = url.replace(/^file:\/\//, '');
  const src = path.lastIndexOf('/src/');
  if (src >= 0 && !path.includes('node_modules')) return path.slice(src + 1);
  if (path.startsWith('node:')) return path;
  return basename(path);
}

/** Self time per function and per file, from the samples of a `.cpuprofile`. */
export function summariseProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    if (node === undefined) return;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') {
      idleMs += ms;
      return;
    }
    const file = where(url);
    const name = `${functionName === '' ? '(anonymous)' : functionName}${file === '' ? '' : ` ${file}`}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const fileKey = file === '' ? functionName : file;
    files.set(fileKey, (files.get(fileKey) ?? 0) + ms);
  });
  const busyMs = totalMs - idleMs;
  const rank = (entries: Map<string, number>): ProfileEntry[] =>
    [...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, selfMs]) => ({ name, selfMs, percent: (100 * selfMs) / busyMs }));
  return { totalMs, busyMs, functions: rank(functions), files: rank(files) };
}

export function formatSummary(title: string, summary: ProfileSummary): string {
  const lines = [
    `${title}: ${summary.totalMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms busy (not idle)`,
    '  self ms   busy%  function',
    ...summary.functions.map(
      (entry) =>
        `  ${entry.selfMs.toFixed(0).padStart(7)}  ${entry.percent.toFixed(1).padStart(5)}%  ${entry.name}`,
    ),
    '  by file:',
    ...summary.files
      .slice(0, 8)
      .map(
        (entry) =>
          `  ${entry.selfMs.toFixed(0).padStart(7)}  ${entry.percent.toFixed(1).padStart(5)}%  ${entry.name}`,
      ),
  ];
  return lines.join('\n');
}

async function summariseDir(dir: string): Promise<{ file: string; summary: ProfileSummary }[]> {
  const out: { file: string; summary: ProfileSummary }[] = [];
  for (const name of (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile')).sort()) {
    const profile = JSON.parse(await readFile(join(dir, name), 'utf8')) as CpuProfile;
    out.push({ file: join(dir, name), summary: summariseProfile(profile) });
  }
  // tsx's loader thread writes a profile of its own; the main thread's is the busy one.
  return out.sort((a, b) => b.summary.busyMs - a.summary.busyMs);
}

/** Runs one profiled link transfer of `bytes` and prints the summaries; returns the profiles' folder. */
export async function profileLink(bytes: number): Promise<string> {
  const dir = await makeTempDir('profile-run');
  const keep = await makeTempDir('profiles', true);
  let owner: NodeProcess | undefined;
  try {
    await requireFreeSpace(dir, 4 * bytes + 256 * 1024 * 1024);
    const file = join(dir, 'profile.bin');
    const sha256 = await makeRandomFile(file, bytes);
    owner = await startSeeder(file, dir, 120_000, ['--cpu-prof', '--cpu-prof-dir', join(keep, 'owner')]);
    const port = Number(owner.lines.find((line) => line.event === 'listening')?.port);
    const result = await download(port, join(dir, 'Peer1Dir'), '1', sha256, 300_000, {
      nodeFlags: ['--cpu-prof', '--cpu-prof-dir', join(keep, 'peer')],
    });
    const seconds = (result.completeAtMs - result.listeningAtMs) / 1000;
    say(
      `profile: ${(bytes / MB).toFixed(0)} MB in ${seconds.toFixed(2)} s (${(bytes / MB / seconds).toFixed(1)} MB/s)`,
    );
    await owner.stop();
    for (const role of ['peer', 'owner'] as const) {
      const [main] = await summariseDir(join(keep, role));
      if (main === undefined) continue;
      const target = join(keep, `${role}.cpuprofile`);
      await rename(main.file, target);
      process.stdout.write(`${formatSummary(`${role} (${target})`, main.summary)}\n\n`);
    }
    return keep;
  } finally {
    await owner?.stop();
    await removeDir(dir);
  }
}
