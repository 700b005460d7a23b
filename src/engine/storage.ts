/**
 * Verified chunks on their way to disk: each is handed to the driver as a `write-chunk` effect and
 * kept until the driver confirms it. A failed write (a full disk) is tried again later, with a
 * backoff that doubles, and no new chunk is started meanwhile.
 */
import type { ChunkDownload } from './chunk-assembly.ts';
import type { Outbox } from './effects.ts';
import { type EngineLimits, MAX_STORAGE_DOUBLINGS } from './limits.ts';

export class Storage {
  /** Verified chunks handed to the driver to store, not yet confirmed. */
  readonly writing = new Map<number, ChunkDownload>();
  /** Verified chunks whose write failed: when to write them again. */
  readonly writeRetries = new Map<number, number>();
  /** After a failed write, no new chunk is started before this time. */
  pausedUntilMs = 0;
  /** Writes that failed since the last one that worked: the backoff doubles with each. */
  private failures = 0;

  constructor(
    private readonly limits: EngineLimits,
    private readonly outbox: Outbox,
  ) {}

  /** Hands a verified chunk to the driver. */
  write(download: ChunkDownload): void {
    this.writing.set(download.index, download);
    this.pushWrite(download);
  }

  /** The chunk being written as `index`, or undefined when no write of it is awaited (a driver's bug). */
  pending(index: number): ChunkDownload | undefined {
    const download = this.writing.get(index);
    return download === undefined || this.writeRetries.has(index) ? undefined : download;
  }

  /**
   * The verified bytes are kept and written again later: a full disk stays full for a while, and
   * nothing is downloaded twice for it. Writes failing together (several chunks, one full disk)
   * count as one step of the backoff.
   */
  failed(nowMs: number, index: number): void {
    if (nowMs >= this.pausedUntilMs) this.failures++;
    const delayMs = Math.min(
      this.limits.storageRetryMaxMs,
      this.limits.storageRetryMs * 2 ** Math.min(this.failures - 1, MAX_STORAGE_DOUBLINGS),
    );
    this.writeRetries.set(index, nowMs + delayMs);
    this.pausedUntilMs = Math.max(this.pausedUntilMs, nowMs + delayMs);
  }

  /** The chunk is on disk: returns its download record. */
  written(index: number): ChunkDownload {
    const download = this.writing.get(index) as ChunkDownload;
    this.writing.delete(index);
    this.failures = 0;
    return download;
  }

  /** Writes again every chunk whose retry time has come. */
  retryDue(nowMs: number): void {
    for (const [index, atMs] of [...this.writeRetries]) {
      if (atMs > nowMs) continue;
      this.writeRetries.delete(index);
      this.pushWrite(this.writing.get(index) as ChunkDownload);
    }
  }

  /** No new chunk is started: a write failed a moment ago, or the disk is behind the wire. */
  isPaused(nowMs: number): boolean {
    return nowMs < this.pausedUntilMs || this.writing.size >= this.limits.maxChunksWriting;
  }

  private pushWrite(download: ChunkDownload): void {
    this.outbox.push({
      kind: 'write-chunk',
      index: download.index,
      bytes: download.buffer,
      fromOwner: download.lastSourceIsOwner,
    });
  }
}
