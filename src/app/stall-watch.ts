/**
 * Makes a peer's waits visible. While chunks arrive it says nothing; after a quiet spell it says
 * what it waits for (connected peers, the addresses it cannot reach and why, a failing tracker) and
 * how long it will keep trying; with a give-up bound (`--exit-when-done`) it ends the wait there.
 */

/** How often the watch looks (the give-up bound is kept to within this). */
const LOOK_EVERY_MS = 1_000;

export interface StallWatchOptions {
  /** How long without progress before a status line, and between status lines. */
  readonly statusEveryMs: number;
  /** Give up after this long without a new chunk (undefined: keep trying until stopped). */
  readonly giveUpAfterMs: number | undefined;
  readonly now: () => number;
  /** What is held and connected right now. */
  readonly state: () => { held: number; total: number; connected: number; complete: boolean };
  readonly onStatus: (text: string) => void;
  readonly onGiveUp: (text: string) => void;
}

export class StallWatch {
  private lastProgressAtMs: number;
  private lastStatusAtMs: number;
  private readonly unreachable = new Map<string, string>();
  private trackerError: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StallWatchOptions) {
    this.lastProgressAtMs = options.now();
    this.lastStatusAtMs = this.lastProgressAtMs;
  }

  start(): void {
    this.timer = setInterval(() => this.check(), LOOK_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  progress(): void {
    this.lastProgressAtMs = this.options.now();
    this.lastStatusAtMs = this.lastProgressAtMs;
  }

  /** Records a failed dial; true when the address was not already known to be unreachable. */
  dialFailed(address: string, reason: string): boolean {
    const known = this.unreachable.has(address);
    this.unreachable.set(address, reason);
    return !known;
  }

  connected(address: string): void {
    this.unreachable.delete(address);
  }

  tracker(error: string | undefined): void {
    this.trackerError = error;
  }

  /** One look: a status line after a quiet spell, and the end of the wait past the bound. */
  check(): void {
    const state = this.options.state();
    if (state.complete) return;
    const nowMs = this.options.now();
    const quietMs = nowMs - this.lastProgressAtMs;
    const { giveUpAfterMs, statusEveryMs } = this.options;
    if (giveUpAfterMs !== undefined && quietMs >= giveUpAfterMs) {
      this.stop();
      this.options.onGiveUp(`gave up: ${this.describe(state, quietMs)}`);
      return;
    }
    if (nowMs - this.lastStatusAtMs < statusEveryMs) return;
    this.lastStatusAtMs = nowMs;
    const what = this.describe(state, quietMs);
    const bound =
      giveUpAfterMs === undefined
        ? 'still trying (Ctrl-C to stop)'
        : `giving up in ${Math.ceil((giveUpAfterMs - quietMs) / 1000)} s (--give-up-after)`;
    this.options.onStatus(`waiting: ${what}; ${bound}`);
  }

  private describe(state: ReturnType<StallWatchOptions['state']>, quietMs: number): string {
    const parts = [
      `${state.held}/${state.total} chunks, none new for ${Math.floor(quietMs / 1000)} s`,
      `${state.connected} peer${state.connected === 1 ? '' : 's'} connected`,
    ];
    for (const [address, reason] of this.unreachable) parts.push(`${address} unreachable (${reason})`);
    if (this.trackerError !== undefined) parts.push(`tracker failing (${this.trackerError})`);
    return parts.join(', ');
  }
}
