/**
 * One lab run from start to nothing left: the run's record written, its network made, its session
 * run, every copy hashed, and then (always: after a failure or an interrupt too) every process,
 * namespace and link removed and checked gone.
 */
import { join } from 'node:path';
import type { Scenario } from '../sim/scenario.ts';
import { buildNetwork, namesOf, teardownNetwork } from './lab-net.ts';
import { planLab } from './lab-plan.ts';
import { type LabFiles, LabSession } from './lab-session.ts';
import { freeBlock, recordRun } from './lab-state.ts';
import { sha256File } from './processes.ts';

export interface LabPeerResult {
  readonly id: string;
  readonly complete: boolean;
  readonly fileSha256: string | null;
  /** Every address the peer had, in order. */
  readonly addresses: readonly string[];
  /** The addresses it told the tracker of itself, on noticing a change. */
  readonly announcedAddresses: readonly string[];
  readonly completedAtMs: number | null;
  readonly restarts: number;
  /** When each restarted process of it was listening again, ms from the start. */
  readonly listeningAtMs: readonly number[];
}

export interface LabRunResult {
  readonly realMs: number | null;
  readonly ok: boolean;
  readonly failure: string | undefined;
  readonly peers: readonly LabPeerResult[];
}

/** Names of this process's runs: `sw<pid>`, so links stay within 15 characters. */
export function runIdOf(pid: number): string {
  return `sw${pid}`;
}

export async function runLabOnce(
  scenario: Scenario,
  files: LabFiles,
  fileSha256: string,
  signal: AbortSignal,
): Promise<LabRunResult> {
  const runId = runIdOf(process.pid);
  const block = freeBlock(process.pid % 512);
  const plan = planLab(scenario, runId, block);
  const names = namesOf(plan);
  const forget = recordRun(runId, block, names);
  let outcome: Awaited<ReturnType<LabSession['run']>> | undefined;
  let failure: string | undefined;
  try {
    await buildNetwork(plan);
    outcome = await new LabSession(plan, scenario, files, signal).run();
    failure = outcome.failure;
  } catch (error) {
    failure = (error as Error).message;
  } finally {
    const problems = await teardownNetwork(names);
    if (problems.length === 0) forget();
    else failure ??= `teardown failed: ${problems.join('; ')} (the next lab run removes it)`;
  }
  const peers: LabPeerResult[] = [];
  for (const peer of outcome?.peers ?? []) {
    peers.push({
      id: peer.node.id,
      complete: peer.complete,
      fileSha256: await sha256File(join(files.workDir, peer.node.id, files.fileName)),
      addresses: peer.addresses,
      announcedAddresses: peer.announced,
      completedAtMs: peer.completedAtMs,
      restarts: peer.restarts,
      listeningAtMs: peer.listeningAtMs,
    });
  }
  if (failure === undefined) {
    const bad = peers.find((peer) => !peer.complete || peer.fileSha256 !== fileSha256);
    if (bad !== undefined) failure = `peer ${bad.id}'s copy is ${bad.complete ? 'wrong' : 'incomplete'}`;
  }
  return { realMs: outcome?.realMs ?? null, ok: failure === undefined, failure, peers };
}
