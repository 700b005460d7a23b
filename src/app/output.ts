/**
 * What a running node prints: on a terminal one status line redrawn in place (chunks, rates, ETA,
 * peers); off a terminal, or with `--log`, every activity line (the simulator's format); JSON lines
 * with `--json`; almost nothing with `--quiet`. Errors always go to stderr as one line.
 */
import { type ActivityEvent, formatActivityLine } from '../engine/activity.ts';
import { isStdoutClosed } from './command.ts';

export type OutputMode = 'human' | 'json' | 'quiet';

/**
 * An activity event's own fields (chunk, from, to, bytes, fromOwner, peer, …), so a reader such as
 * `npm start --report` need not parse the text line. A chunk list stays out: a bitfield can be long.
 */
function eventFields(event: ActivityEvent): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) if (key !== 'kind' && key !== 'list') fields[key] = value;
  return fields;
}

export class Reporter {
  private barShown = false;
  /** True when a status line is redrawn in place instead of activity lines (a terminal, no --log). */
  readonly live: boolean;
  private readonly pending: string[] = [];
  private clockOffsetMs = 0;

  /**
   * Times are printed from `clockOriginMs` (epoch ms) when given: under `npm start` every process
   * prints on the demo's one clock. See `startClock`.
   */
  constructor(
    readonly mode: OutputMode,
    readonly node: string,
    private readonly clockOriginMs: number | undefined = undefined,
    log = false,
    private readonly out: NodeJS.WriteStream = process.stdout,
    tty: boolean = out.isTTY === true,
  ) {
    this.live = mode === 'human' && tty && !log;
  }

  /** The engine's clock starts now (its driver was made): printed times are offset from the origin. */
  startClock(): void {
    if (this.clockOriginMs !== undefined) this.clockOffsetMs = Math.max(0, Date.now() - this.clockOriginMs);
  }

  /** One machine-readable event (JSON mode only). */
  event(fields: Record<string, unknown>): void {
    if (this.mode === 'json') this.write(`${JSON.stringify({ node: this.node, ...fields })}\n`);
  }

  activity(event: ActivityEvent, driverElapsedMs: number): void {
    const elapsedMs = driverElapsedMs + this.clockOffsetMs;
    if (this.mode === 'json') {
      this.event({
        event: 'activity',
        kind: event.kind,
        atMs: elapsedMs,
        ...eventFields(event),
        line: formatActivityLine(elapsedMs, this.node, event),
      });
      return;
    }
    if (this.mode === 'human' && !this.live)
      this.write(`${formatActivityLine(elapsedMs, this.node, event)}\n`);
  }

  /**
   * The status line, redrawn in place (a terminal in human mode only; see `progress.ts` for its
   * text). `final` ends it with a newline, so the next output starts below it.
   */
  status(line: string, final = false): void {
    if (!this.live) return;
    this.write(`\r${line}\x1b[K`);
    this.barShown = true;
    if (final) this.endBar();
  }

  info(message: string): void {
    this.say('info', message);
  }

  /** A wait or a retry the user should see: what we wait for, and for how long we will try. */
  notice(message: string): void {
    this.say('notice', message);
  }

  private say(event: 'info' | 'notice', message: string): void {
    if (this.mode === 'json') this.event({ event, message });
    else if (this.mode === 'human') {
      this.endBar();
      this.write(`${message}\n`);
    }
  }

  /** Milliseconds on the printed clock for an engine time. */
  printedMs(driverElapsedMs: number): number {
    return driverElapsedMs + this.clockOffsetMs;
  }

  error(message: string): void {
    this.endBar();
    if (this.mode === 'json') this.event({ event: 'error', message });
    this.flush();
    process.stderr.write(`swarm: ${message}\n`);
  }

  /**
   * Output is gathered and written once per turn of the event loop: a pipe write is synchronous
   * in Node, and one per activity line cost a peer a tenth of its time.
   */
  private write(text: string): void {
    this.pending.push(text);
    if (this.pending.length === 1) setImmediate(() => this.flush());
  }

  /** Writes whatever is gathered now (also called before the process exits). */
  flush(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending.length = 0;
    if (this.out === process.stdout && isStdoutClosed()) return;
    this.out.write(text);
  }

  private endBar(): void {
    if (!this.barShown) return;
    this.barShown = false;
    this.write('\n');
  }
}
