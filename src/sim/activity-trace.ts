/**
 * The run's trace: every activity line, hashed in order into the digest that says two runs were the
 * same, and a count of each kind of activity.
 */
import { createHash } from 'node:crypto';

/** Lines gathered before they go into the hash: the digest is the same, with far fewer calls. */
const TRACE_BATCH_CHARS = 64 * 1024;

export class ActivityTrace {
  private readonly hash = createHash('sha256');
  private pending = '';
  /** How many activity events of each kind the run produced. */
  readonly counts: Record<string, number> = {};

  record(kind: string, line: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    this.pending += `${line}\n`;
    if (this.pending.length >= TRACE_BATCH_CHARS) this.flush();
  }

  /** SHA-256 of every line so far, each followed by a newline. */
  digest(): string {
    this.flush();
    return this.hash.copy().digest('hex');
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.hash.update(this.pending);
    this.pending = '';
  }
}
