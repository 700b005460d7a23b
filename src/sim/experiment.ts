/**
 * Parameter sweeps behind `npm run experiment` (src/app/experiment-command.ts).
 *
 * Sweeps one parameter over several seeds and prints, per value, the median (and min / max) of
 * simulated time over the lower bound, and the median tail (the worst peer's time from 95% to 100%
 * of its chunks). Fields: peers, chunks, degree, picker, phases, endgame, ownerAdvertising,
 * ownerShareChunks, ownerUploadBytesPerSecond.
 */
import { parseScenario, type Scenario } from './scenario.ts';
import { runScenario } from './simulator.ts';

export type Field =
  | 'peers'
  | 'chunks'
  | 'degree'
  | 'picker'
  | 'phases'
  | 'endgame'
  | 'ownerAdvertising'
  | 'ownerShareChunks'
  | 'ownerUploadBytesPerSecond';

export const FIELDS: readonly Field[] = [
  'peers',
  'chunks',
  'degree',
  'picker',
  'phases',
  'endgame',
  'ownerAdvertising',
  'ownerShareChunks',
  'ownerUploadBytesPerSecond',
];

/** The scenario with one field set, re-validated so a bad value is refused like a bad file. */
export function withField(base: Scenario, field: Field, value: string): Scenario {
  const raw = structuredClone(base) as Record<string, unknown> & Scenario;
  const number = Number(value);
  switch (field) {
    case 'peers': {
      const template = base.peerGroups[0] ?? {
        ...base.owner,
        count: 1,
        idPrefix: 'p',
        joinAtMs: 0,
        joinSpreadMs: 0,
        knows: 'tracker' as const,
      };
      raw.peers = [];
      raw.peerGroups = [{ ...template, count: number }];
      break;
    }
    case 'chunks':
      raw.file = { ...base.file, sizeBytes: number * (base.file.chunkSizeBytes ?? 102400) };
      break;
    case 'degree':
      raw.topology = { ...base.topology, degree: number };
      break;
    case 'ownerUploadBytesPerSecond':
      raw.owner = { ...base.owner, uploadBytesPerSecond: number };
      break;
    case 'endgame':
      raw.policies = { ...base.policies, endgame: value === 'true' };
      break;
    case 'ownerShareChunks':
      raw.policies = { ...base.policies, ownerShareChunks: number };
      break;
    case 'picker':
    case 'phases':
    case 'ownerAdvertising':
      raw.policies = { ...base.policies, [field]: value };
      break;
  }
  const parsed = parseScenario(raw);
  if (!parsed.ok)
    throw new Error(
      `${field}=${value}: ${parsed.issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    );
  return parsed.scenario;
}

export interface SweepRow {
  readonly value: string;
  readonly medianRatio: number;
  readonly minRatio: number;
  readonly maxRatio: number;
  readonly medianTailMs: number;
  readonly failures: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** One run's numbers: simulated time over the lower bound, its tail, and whether it failed. */
export interface RunMeasure {
  readonly ratio: number;
  readonly tailMs: number;
  readonly failed: boolean;
}

/**
 * Runs `scenario` at one seed. The tail is per peer: the time from its 95th-percentile chunk to its
 * last, and a run's tail is its worst peer's (what endgame exists to cut).
 */
export function measureRun(scenario: Scenario, seed: number): RunMeasure {
  const times = new Map<string, number[]>();
  const result = runScenario(scenario, {
    seed,
    onLine: (line) => {
      const match = /^\s*(\S+)s (\S+)\s+received chunk \d/.exec(line);
      if (match === null) return;
      const list = times.get(match[2] as string) ?? [];
      list.push(Math.round(Number.parseFloat(match[1] as string) * 1000));
      times.set(match[2] as string, list);
    },
  });
  let worst = 0;
  for (const list of times.values()) {
    const at95 = list[Math.floor((list.length - 1) * 0.95)] ?? 0;
    worst = Math.max(worst, (list[list.length - 1] ?? 0) - at95);
  }
  return {
    ratio: result.simulatedMs / result.lowerBoundMs,
    tailMs: worst,
    failed: result.failure !== undefined,
  };
}

/** Runs `scenario` once per seed, in seed order. */
export function measure(
  scenario: Scenario,
  seeds: readonly number[],
): { ratios: number[]; tailsMs: number[]; failures: number } {
  return collect(seeds.map((seed) => measureRun(scenario, seed)));
}

function collect(runs: readonly RunMeasure[]): { ratios: number[]; tailsMs: number[]; failures: number } {
  return {
    ratios: runs.map((run) => run.ratio),
    tailsMs: runs.map((run) => run.tailMs),
    failures: runs.filter((run) => run.failed).length,
  };
}

/** A sweep row from one value's runs, in seed order (wherever they ran). */
export function summarize(value: string, runs: readonly RunMeasure[]): SweepRow {
  const { ratios, tailsMs, failures } = collect(runs);
  return {
    value,
    medianRatio: median(ratios),
    minRatio: Math.min(...ratios),
    maxRatio: Math.max(...ratios),
    medianTailMs: median(tailsMs),
    failures,
  };
}

export function sweep(
  base: Scenario,
  field: Field,
  values: readonly string[],
  seeds: readonly number[],
): SweepRow[] {
  return values.map((value) => {
    const scenario = withField(base, field, value);
    return summarize(
      value,
      seeds.map((seed) => measureRun(scenario, seed)),
    );
  });
}
