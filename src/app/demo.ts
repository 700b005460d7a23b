/**
 * `npm start`: the whole system on loopback. Makes a sample file, starts the owner and N peers as
 * separate processes on free ports of 127.0.0.1, shows their progress, checks every peer's file
 * against the original and prints a summary. Exit code 0 only if every copy matches.
 */
import { stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { planChunks } from '../engine/chunking.ts';
import { Random } from '../engine/random.ts';
import { HELP_FLAG, OUTPUT_FLAGS, parseChoice, parseCount, stringFlags, UsageFailure } from './args.ts';
import { runCommand } from './command.ts';
import { claimDemoFolder } from './demo-folder.ts';
import { DemoReport } from './demo-report.ts';
import { DemoStatus } from './demo-status.ts';
import { runLocalSwarm } from './local-swarm.ts';
import { formatPeerTable } from './report.ts';
import { checkReportPath, writeReport } from './report-file.ts';
import { renderReport } from './report-html.ts';

const USAGE = `usage: npm start -- [--peers N] [--topology ring|mesh|full|star] [--file F | --size-mib M] [--dir D]
                [--report FILE] [--json|--quiet]

Starts an owner and N peers (default 5) as processes on 127.0.0.1, distributes a file (default: a
20 MiB sample made here), verifies every peer's copy and prints a summary.
  --picker P     random (default) or rarest-first
  --phases M     two-phase (default for ring) or overlapped (default otherwise)
  --timeout-s S  give up after S seconds (default 300)
  --dir D        where to work (default swarm-demo); a later run replaces only what the demo made
                 there itself (listed in D/.swarm-demo.json) and refuses to touch anything else
  --report FILE  also write a self-contained HTML page about the run to FILE (replaced if it
                 exists): the chunk map over time, completion times, rates, traffic per link
  --log          on a terminal too, every activity line instead of one status line per process
  --json         one JSON object on stdout (use "npm start -s -- --json": -s keeps npm's banner out)
  --debug        a stack trace with an internal error`;

/** The user's own --file: a regular file big enough to cut into chunks, checked before anything is made. */
async function checkUserFile(file: string): Promise<void> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new UsageFailure(`cannot read --file ${file}: ${error.code ?? error.message}`);
  });
  if (!info.isFile()) throw new UsageFailure(`--file ${file} is not a regular file`);
  const plan = planChunks(info.size);
  if (!plan.ok) throw new UsageFailure(`--file ${file}: ${plan.error.message}`);
}

async function main(argv: string[]): Promise<number> {
  const clockOriginMs = Date.now();
  const { values } = parseArgs({
    args: argv,
    options: {
      ...stringFlags(
        'peers',
        'topology',
        'picker',
        'phases',
        'file',
        'size-mib',
        'dir',
        'timeout-s',
        'report',
      ),
      log: { type: 'boolean' },
      ...OUTPUT_FLAGS,
      ...HELP_FLAG,
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const peerCount = parseCount(values.peers, '--peers', 5, 1, 200);
  const topology = parseChoice(
    values.topology,
    '--topology',
    ['ring', 'mesh', 'full', 'star'] as const,
    'ring',
  );
  const picker = parseChoice(values.picker, '--picker', ['random', 'rarest-first'] as const, 'random');
  const phases = parseChoice(
    values.phases,
    '--phases',
    ['two-phase', 'overlapped'] as const,
    topology === 'ring' ? 'two-phase' : 'overlapped',
  );
  const sizeMib = parseCount(values['size-mib'], '--size-mib', 20, 1, 4096);
  const timeoutMs = parseCount(values['timeout-s'], '--timeout-s', 300, 1, 86_400) * 1000;
  const mode = values.json === true ? 'json' : values.quiet === true ? 'quiet' : 'human';
  const say = (text: string): void => {
    if (mode === 'human') process.stdout.write(`${text}\n`);
  };

  const dir = resolve(values.dir ?? 'swarm-demo');
  if (values.file !== undefined) await checkUserFile(values.file);
  if (values.report !== undefined) checkReportPath(values.report);
  const report = values.report === undefined ? undefined : new DemoReport();
  const fileName = values.file === undefined ? 'sample.bin' : basename(values.file);
  const made = [
    ...(values.file === undefined ? ['sample.bin'] : []),
    `${fileName}.torrent`,
    'OwnerDir',
    ...Array.from({ length: peerCount }, (_, i) => `Peer${i + 1}Dir`),
  ];
  await claimDemoFolder(dir, made, values.file === undefined ? [] : [values.file]);
  let file = values.file;
  if (file === undefined) {
    file = join(dir, 'sample.bin');
    await writeFile(file, new Random(20261124).bytes(sizeMib * 1024 * 1024));
  }
  say(`demo: distributing ${file} to ${peerCount} peers (${topology}, ${phases}, ${picker}) on 127.0.0.1`);

  const live = mode === 'human' && process.stdout.isTTY === true && values.log !== true;
  const status = live
    ? new DemoStatus(Array.from({ length: peerCount }, (_, i) => String(i + 1)))
    : undefined;
  const result = await runLocalSwarm({
    file,
    dir,
    peers: peerCount,
    topology,
    picker,
    phases,
    timeoutMs,
    clockOriginMs,
    onLine: (name, line) => {
      report?.onLine(line);
      if (line.event === 'error' && mode !== 'json')
        process.stderr.write(`[${name}] ${String(line.message)}\n`);
      if (status !== undefined) status.onLine(name, line);
      else if (mode === 'human' && line.event === 'activity') process.stdout.write(`${String(line.line)}\n`);
    },
  });
  status?.draw();
  if (report !== undefined && values.report !== undefined) {
    const title = `npm start, ${peerCount} peers, ${topology}, ${phases}, ${picker}`;
    const record = report.finish(result, title, (await stat(file)).size);
    if (record === undefined) process.stderr.write('demo: no report: the owner never started\n');
    else {
      writeReport(values.report, renderReport(record));
      say(`demo: report written to ${values.report}`);
    }
  }
  if (mode === 'json') {
    process.stdout.write(
      `${JSON.stringify({ fileSha256: result.fileSha256, elapsedMs: result.elapsedMs, ok: result.ok, peers: result.peers })}\n`,
    );
  } else if (mode === 'human') {
    say('');
    say(formatPeerTable(result.peers, result.fileSha256, (id) => `Peer${id}`));
    say('');
    say(
      result.ok
        ? `demo: every peer has a verified copy of ${result.chunks} chunks (${result.elapsedMs} ms); files in ${dir}`
        : `demo: FAILED: ${result.failure}`,
    );
  }
  if (!result.ok && mode !== 'human') process.stderr.write(`demo: FAILED: ${result.failure}\n`);
  return result.ok ? 0 : 1;
}

runCommand('demo', main, 'npm start -- --help');
