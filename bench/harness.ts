/**
 * The whole benchmark run: every stage in turn, inside one time budget, giving one flat object of
 * numbers (the `--json` output) and the table printed by `npm run bench`.
 */

import { anchorBench } from './anchor.ts';
import { cliBench } from './cli.ts';
import { GiB, MiB, round, say, stopAll } from './lib.ts';
import { linkBench } from './link.ts';
import { memoryBench } from './memory.ts';
import { codecBench, verifyBench } from './micro.ts';
import { simBench } from './sim.ts';
import { swarmBench } from './swarm.ts';

export const STAGES = ['cli', 'codec', 'verify', 'sim', 'memory', 'link', 'swarm', 'anchor'] as const;
export type Stage = (typeof STAGES)[number];

/** Every key `npm run bench -- --json` promises, each a finite number. */
export const REQUIRED_KEYS = [
  'codecEncodeMBps',
  'codecDecodeMBps',
  'codecMixedDecodeMBps',
  'verifyMBps',
  'verifyBareMBps',
  'verifyRatio',
  'linkMBps',
  'bareTcpMBps',
  'linkRatio',
  'diskFloorMBps',
  'linkRatioCeiling',
  'swarmRingSeconds',
  'swarmMeshSeconds',
  'swarmRingMBps',
  'swarmMeshMBps',
  'simEventsPerSecond',
  'simRatio',
  'simMeshChunkDeliveriesPerSecond',
  'boundRatioRing6',
  'boundRatioMesh200',
  'memoryPeakRss100MiB',
  'memoryPeakRss1GiB',
  'cliHelpMs',
  'nodeStartMs',
  'cliStartRatio',
] as const;

/**
 * The anchor stage's keys (libtorrent measured in the same run): given whenever
 * `/usr/bin/python3 -c 'import libtorrent'` works; absent, with one line saying why, when not.
 */
export const ANCHOR_KEYS = [
  'libtorrentSeconds',
  'anchorMeshSeconds',
  'anchorRingSeconds',
  'swarmVsLibtorrent',
  'swarmRingVsLibtorrent',
  'foreignSeederSeconds',
  'foreignSeederVsLibtorrent',
  'foreignSeederPeerUploadChunks',
] as const;

export interface BenchConfig {
  readonly quick: boolean;
  /** The whole run should end within this (stages with repeated runs shorten to fit). */
  readonly budgetMs: number;
  readonly micro: { readonly cpuTimeMs: number; readonly rounds: number };
  readonly cli: { readonly runs: number };
  readonly sim: {
    readonly meshPeers: number;
    readonly meshChunks: number;
    readonly bareEvents: number;
    readonly bareRuns: number;
  };
  readonly link: { readonly bytes: number; readonly runs: number; readonly timeoutMs: number };
  readonly swarm: {
    readonly bytes: number;
    readonly peers: number;
    readonly runs: number;
    readonly timeoutMs: number;
  };
  readonly memory: { readonly smallBytes: number; readonly largeBytes: number; readonly timeoutMs: number };
  /** A libtorrent seeder with libtorrent leechers, with ours, and our owner with our peers. */
  readonly anchor: {
    readonly bytes: number;
    readonly leechers: number;
    readonly runs: number;
    readonly timeoutMs: number;
  };
}

export const FULL: BenchConfig = {
  quick: false,
  budgetMs: 380_000,
  micro: { cpuTimeMs: 300, rounds: 3 },
  cli: { runs: 15 },
  sim: { meshPeers: 200, meshChunks: 1000, bareEvents: 2_000_000, bareRuns: 5 },
  link: { bytes: 200 * MiB, runs: 3, timeoutMs: 120_000 },
  swarm: { bytes: 100 * MiB, peers: 5, runs: 3, timeoutMs: 120_000 },
  memory: { smallBytes: 100 * MiB, largeBytes: GiB, timeoutMs: 240_000 },
  anchor: { bytes: 100 * MiB, leechers: 5, runs: 3, timeoutMs: 120_000 },
};

/** Tiny sizes and one run of everything: checks the harness, measures nothing worth quoting. */
export const QUICK: BenchConfig = {
  quick: true,
  budgetMs: 60_000,
  micro: { cpuTimeMs: 20, rounds: 1 },
  cli: { runs: 3 },
  sim: { meshPeers: 20, meshChunks: 50, bareEvents: 100_000, bareRuns: 1 },
  link: { bytes: 4 * MiB, runs: 1, timeoutMs: 30_000 },
  swarm: { bytes: 2 * MiB, peers: 3, runs: 1, timeoutMs: 30_000 },
  memory: { smallBytes: MiB, largeBytes: 4 * MiB, timeoutMs: 30_000 },
  anchor: { bytes: 4 * MiB, leechers: 3, runs: 1, timeoutMs: 30_000 },
};

export type Results = Record<string, number>;

export async function runBenchmarks(
  config: BenchConfig,
  stages: readonly Stage[] = STAGES,
): Promise<Results> {
  const startedAt = performance.now();
  const remainingMs = (): number => config.budgetMs - (performance.now() - startedAt);
  const results: Results = {};
  const timed = async (stage: Stage, body: () => Promise<Results>): Promise<void> => {
    if (!stages.includes(stage)) return;
    const stageStart = performance.now();
    say(`${stage} ...`);
    Object.assign(results, await body());
    say(`${stage} done in ${((performance.now() - stageStart) / 1000).toFixed(1)} s`);
  };
  try {
    // Fixed work first; the stages that repeat runs then share what is left of the budget.
    await timed('cli', () => cliBench(config.cli));
    await timed('codec', () => codecBench(config.micro));
    await timed('verify', () => verifyBench(config.micro));
    await timed('sim', () => simBench(config.sim));
    await timed('memory', () => memoryBench(config.memory));
    // Shares of what is left: a link run is one transfer, a swarm round two swarms, an anchor
    // round four (libtorrent's, our mesh and ring, ours from the libtorrent seeder).
    const share = (stage: Stage, weight: number): number => (stages.includes(stage) ? weight : 0);
    const swarmShare = share('swarm', 2);
    const anchorShare = share('anchor', 3);
    await timed('link', () =>
      linkBench({ ...config.link, budgetMs: remainingMs() / (1 + swarmShare + anchorShare) }),
    );
    await timed('swarm', () =>
      swarmBench({ ...config.swarm, budgetMs: (remainingMs() * swarmShare) / (swarmShare + anchorShare) }),
    );
    await timed('anchor', () => anchorBench({ ...config.anchor, budgetMs: remainingMs() }));
  } finally {
    await stopAll();
  }
  results.wallSeconds = (performance.now() - startedAt) / 1000;
  results.quick = config.quick ? 1 : 0;
  return results;
}

// ---------------------------------------------------------------------------------------------
// The table

function fixed(value: number | undefined, digits = 1): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

function size(bytes: number): string {
  return bytes >= GiB ? `${round(bytes / GiB, 1)} GiB` : `${round(bytes / MiB, 1)} MiB`;
}

export function formatResults(results: Results, config: BenchConfig): string {
  const r = (key: string): number | undefined => results[key];
  const mib = (key: string): string => `${fixed((r(key) ?? Number.NaN) / MiB)} MiB`;
  const rows: string[][] = [];
  const add = (stage: string, what: string, value: string, against = '', ratio = ''): void => {
    if (value.startsWith('-')) return;
    rows.push([stage, what, value, against, ratio]);
  };
  add(
    'cli',
    'swarm --help, built command, whole process',
    `${fixed(r('cliHelpMs'), 0)} ms`,
    `node -e 0 ${fixed(r('nodeStartMs'), 0)} ms`,
    fixed(r('cliStartRatio'), 2),
  );
  add('codec', 'encode piece messages (16 KiB blocks)', `${fixed(r('codecEncodeMBps'), 0)} MB/s`);
  add('codec', 'decode piece messages (64 KiB reads)', `${fixed(r('codecDecodeMBps'), 0)} MB/s`);
  add('codec', 'decode mixed stream (1 B–64 KiB reads)', `${fixed(r('codecMixedDecodeMBps'), 0)} MB/s`);
  add(
    'verify',
    'SHA-1 verify a 100 KiB chunk, as the engine',
    `${fixed(r('verifyMBps'), 0)} MB/s`,
    `createHash ${fixed(r('verifyBareMBps'), 0)} MB/s`,
    fixed(r('verifyRatio'), 2),
  );
  const link = size(config.link.bytes);
  add(
    'link',
    `owner → 1 peer, ${link}, verified, on disk, combined`,
    `${fixed(r('linkMBps'))} MB/s`,
    `bare TCP ${fixed(r('bareTcpMBps'), 0)} MB/s`,
    fixed(r('linkRatio'), 3),
  );
  add('link', '  the same, until the last chunk is stored', `${fixed(r('linkTransferMBps'))} MB/s`);
  add(
    'link',
    '  its disk work alone (SHA-1, chunk files, combined)',
    `${fixed(r('diskFloorMBps'))} MB/s`,
    'ceiling of linkRatio',
    fixed(r('linkRatioCeiling'), 3),
  );
  const swarm = `owner + ${config.swarm.peers} peers, ${size(config.swarm.bytes)}`;
  for (const [name, label] of [
    ['Ring', 'ring'],
    ['Mesh', 'mesh'],
  ] as const) {
    add(
      'swarm',
      `${label}, ${swarm}`,
      `${fixed(r(`swarm${name}Seconds`), 2)} s, ${fixed(r(`swarm${name}MBps`))} MB/s`,
    );
  }
  const leechers = config.anchor.leechers;
  const lt = `libtorrent ${fixed(r('libtorrentSeconds'), 2)} s`;
  add(
    'anchor',
    `libtorrent seeder + ${leechers} libtorrent leechers, ${size(config.anchor.bytes)}`,
    `${fixed(r('libtorrentSeconds'), 2)} s`,
    `leechers' share ${fixed((r('libtorrentPeerUploadShare') ?? Number.NaN) * 100, 0)}%`,
  );
  add(
    'anchor',
    `our owner + ${leechers} peers, mesh, the same file`,
    `${fixed(r('anchorMeshSeconds'), 2)} s`,
    lt,
    `${fixed(r('swarmVsLibtorrent'), 2)}× lt`,
  );
  add(
    'anchor',
    `our owner + ${leechers} peers, ring, the same file`,
    `${fixed(r('anchorRingSeconds'), 2)} s`,
    lt,
    `${fixed(r('swarmRingVsLibtorrent'), 2)}× lt`,
  );
  add(
    'anchor',
    `libtorrent seeder + ${leechers} of our peers`,
    `${fixed(r('foreignSeederSeconds'), 2)} s`,
    lt,
    `${fixed(r('foreignSeederVsLibtorrent'), 2)}× lt`,
  );
  add(
    'anchor',
    '  chunks our peers sent each other meanwhile',
    fixed(r('foreignSeederPeerUploadChunks'), 0),
    `share ${fixed((r('foreignSeederPeerUploadShare') ?? Number.NaN) * 100, 0)}%`,
  );
  const mesh = `mesh ${config.sim.meshPeers} peers × ${config.sim.meshChunks} chunks`;
  add(
    'sim',
    `events/s, ${mesh}`,
    fixed(r('simEventsPerSecond'), 0),
    `bare heap ${fixed(r('simBareEventsPerSecond'), 0)}/s`,
    fixed(r('simRatio'), 4),
  );
  add(
    'sim',
    `chunk deliveries/s (peers × chunks / wall s), ${mesh}`,
    fixed(r('simMeshChunkDeliveriesPerSecond'), 0),
    `${fixed(r('simMeshWallSeconds'), 1)} s wall`,
  );
  add(
    'sim',
    'ring6: simulated time / lower bound',
    `${fixed((r('simRing6Ms') ?? Number.NaN) / 1000, 2)} s`,
    `lower bound ${fixed((r('simRing6LowerBoundMs') ?? Number.NaN) / 1000, 2)} s`,
    fixed(r('boundRatioRing6'), 3),
  );
  add(
    'sim',
    `${mesh}: simulated / lower bound`,
    `${fixed((r('simMeshMs') ?? Number.NaN) / 1000, 2)} s`,
    `lower bound ${fixed((r('simMeshLowerBoundMs') ?? Number.NaN) / 1000, 2)} s`,
    fixed(r('boundRatioMesh200'), 3),
  );
  add('memory', `peak RSS, 1 peer, ${size(config.memory.smallBytes)}`, mib('memoryPeakRss100MiB'));
  add(
    'memory',
    `peak RSS, 1 peer, ${size(config.memory.largeBytes)}`,
    mib('memoryPeakRss1GiB'),
    `the ${size(config.memory.smallBytes)} run`,
    fixed(r('memoryRatio'), 2),
  );
  const header = ['stage', 'measure', 'value', 'against', 'ratio'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) =>
        column === 2 || column === 4
          ? cell.padStart(widths[column] as number)
          : cell.padEnd(widths[column] as number),
      )
      .join('  ')
      .trimEnd();
  const footer = `${config.quick ? 'quick run (tiny sizes, 1 run each): not for quoting. ' : ''}wall time ${fixed(r('wallSeconds'))} s`;
  return [
    line(header),
    line(header.map((_, column) => '-'.repeat(widths[column] as number))),
    ...rows.map(line),
    '',
    footer,
  ].join('\n');
}
