/**
 * A lab run's record on disk, written before anything is made: which process made what, and the
 * address block it holds. A run that died without tearing down (SIGKILL, a power cut) leaves its
 * record behind, and the next run unmakes what it names; a live run's block is never taken twice.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LabNames, teardownNetwork } from './lab-net.ts';
import { LAB_BLOCKS } from './lab-plan.ts';

export const STATE_DIR = '/tmp/swarm-lab';

interface StateRecord extends LabNames {
  readonly pid: number;
  readonly runId: string;
  readonly block: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readRecords(): { path: string; record: StateRecord }[] {
  let names: string[];
  try {
    names = readdirSync(STATE_DIR).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const records: { path: string; record: StateRecord }[] = [];
  for (const name of names) {
    const path = join(STATE_DIR, name);
    try {
      records.push({ path, record: JSON.parse(readFileSync(path, 'utf8')) as StateRecord });
    } catch {
      rmSync(path, { force: true });
    }
  }
  return records;
}

/** Unmakes what runs whose process is gone left behind; resolves with one line per such run. */
export async function cleanStaleRuns(): Promise<string[]> {
  const said: string[] = [];
  for (const { path, record } of readRecords()) {
    if (record.pid === process.pid || isAlive(record.pid)) continue;
    const problems = await teardownNetwork(record);
    said.push(
      `removed what lab run ${record.runId} (pid ${record.pid}, gone) left behind` +
        (problems.length > 0 ? `; could not remove: ${problems.join('; ')}` : ''),
    );
    if (problems.length === 0) rmSync(path, { force: true });
  }
  return said;
}

/** The first /24 block from `start` that no live run holds. */
export function freeBlock(start: number): number {
  const held = new Set(readRecords().map(({ record }) => record.block));
  for (let i = 0; i < LAB_BLOCKS; i++) {
    const block = (start + i) % LAB_BLOCKS;
    if (!held.has(block)) return block;
  }
  throw new Error(`all ${LAB_BLOCKS} address blocks of 198.18.0.0/15 are held by live lab runs`);
}

/** Writes the record (before anything is made); returns the function that removes it. */
export function recordRun(runId: string, block: number, names: LabNames): () => void {
  mkdirSync(STATE_DIR, { recursive: true });
  const path = join(STATE_DIR, `${runId}.json`);
  const record: StateRecord = { pid: process.pid, runId, block, ...names };
  writeFileSync(path, `${JSON.stringify(record)}\n`);
  return () => rmSync(path, { force: true });
}
