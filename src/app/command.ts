/**
 * One way for every command (`swarm`, `npm start`, `npm run sim`, `experiment`, `fuzz`) to end:
 * bad usage is one line and exit 2, a failure one line and exit 1, a closed stdout (`| head`) a
 * quiet stop, and a stack trace only with `--debug`.
 */
import { StorageError } from '../transport/storage-error.ts';
import { UsageFailure } from './args.ts';

/** The run failed for a reason outside our control (an unreachable owner, a disk): exit 1, one line. */
export class RunFailure extends Error {
  override readonly name = 'RunFailure';
}

/** What `swarm peer` and the others do when their stdout closes: stop as after Ctrl-C. */
const pipeClosedHandlers: (() => void)[] = [];
let pipeClosed = false;

/** True once stdout's reader has gone: nothing more should be written to it. */
export function isStdoutClosed(): boolean {
  return pipeClosed;
}

/**
 * Runs `callback` when stdout's reader goes away (EPIPE). Without a handler the process exits at
 * once with the exit code it has so far: a reader that stopped reading asked for nothing more.
 */
export function onStdoutClosed(callback: () => void): void {
  pipeClosedHandlers.push(callback);
}

function watchStdout(): void {
  const onError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') throw error;
    if (pipeClosed) return;
    pipeClosed = true;
    if (pipeClosedHandlers.length === 0)
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    for (const handler of pipeClosedHandlers) handler();
  };
  process.stdout.on('error', onError);
  // A stderr reader that went away cannot be told anything either.
  process.stderr.on('error', () => undefined);
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** The one line printed for an error that ends the run, and its exit code. */
export function describeExit(
  program: string,
  error: unknown,
  debug: boolean,
  helpCommand = `${program} --help`,
): { text: string; code: number } {
  // parseArgs explains over several lines; a user gets one.
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
  if (error instanceof UsageFailure || isParseArgsError(error)) {
    const hint = (error instanceof UsageFailure ? error.hint : undefined) ?? `run "${helpCommand}" for usage`;
    return { text: `${program}: ${message}\n(${hint})\n`, code: 2 };
  }
  const stack = debug && error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : '';
  if (error instanceof RunFailure || error instanceof StorageError) {
    return { text: `${program}: ${message}${stack}\n`, code: 1 };
  }
  const hint = debug ? stack : ' (run again with --debug for the stack trace)';
  return { text: `${program}: internal error: ${message}${hint}\n`, code: 1 };
}

/**
 * Runs a command's `main` with `--debug` taken out of its arguments, and turns whatever it throws
 * into one line and an exit code. `main` returns the exit code of a run that ended normally.
 */
export function runCommand(
  program: string,
  main: (argv: string[]) => Promise<number> | number,
  helpCommand = `${program} --help`,
): void {
  const all = process.argv.slice(2);
  const separator = all.indexOf('--');
  const before = separator < 0 ? all : all.slice(0, separator);
  const debug = before.includes('--debug');
  const argv = all.filter((arg, index) => !(arg === '--debug' && (separator < 0 || index < separator)));
  watchStdout();
  const finish = (code: number): void => {
    process.exitCode = code;
  };
  const fail = (error: unknown): void => {
    const { text, code } = describeExit(program, error, debug, helpCommand);
    process.stderr.write(text);
    finish(code);
  };
  try {
    Promise.resolve(main(argv)).then(finish, fail);
  } catch (error) {
    fail(error);
  }
}
