/**
 * Progress as people read it: transfer rates over the last few seconds, an ETA, and the one-line
 * status a process (or `npm start`, per process and for the swarm) keeps redrawing on a terminal.
 */

/** Rates are measured over this window, in slots of SLOT_MS. */
const WINDOW_MS = 3_000;
const SLOT_MS = 250;
const SLOTS = WINDOW_MS / SLOT_MS;

/** Bytes per second over the last few seconds, from counts added as they happen. */
export class RateMeter {
  private readonly slots = new Float64Array(SLOTS);
  private slotStartMs = 0;
  private slot = 0;
  private startedAtMs: number | undefined;

  /** Adds `bytes` moved at `nowMs` (a monotonic clock in ms). */
  add(bytes: number, nowMs: number): void {
    this.advance(nowMs);
    this.slots[this.slot] = (this.slots[this.slot] as number) + bytes;
  }

  /** Bytes per second over the window (or since the first sample, if that is shorter). */
  bytesPerSecond(nowMs: number): number {
    this.advance(nowMs);
    let sum = 0;
    for (const bytes of this.slots) sum += bytes;
    const spanMs = Math.min(WINDOW_MS, Math.max(SLOT_MS, nowMs - (this.startedAtMs ?? nowMs)));
    return (sum * 1000) / spanMs;
  }

  private advance(nowMs: number): void {
    if (this.startedAtMs === undefined) {
      this.startedAtMs = nowMs;
      this.slotStartMs = nowMs;
      return;
    }
    const steps = Math.min(SLOTS, Math.floor((nowMs - this.slotStartMs) / SLOT_MS));
    for (let i = 0; i < steps; i++) {
      this.slot = (this.slot + 1) % SLOTS;
      this.slots[this.slot] = 0;
    }
    if (steps > 0) this.slotStartMs = nowMs - ((nowMs - this.slotStartMs) % SLOT_MS);
  }
}

export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1e6) return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
  if (bytesPerSecond >= 1e3) return `${(bytesPerSecond / 1e3).toFixed(0)} kB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${bytes} B`;
}

/** Time left at the current rate: "12 s", "3 min 05 s", or "--" when nothing moves. */
export function formatEta(bytesLeft: number, bytesPerSecond: number): string {
  if (bytesLeft <= 0) return 'done';
  if (bytesPerSecond < 1) return '--';
  return formatDuration((bytesLeft / bytesPerSecond) * 1000);
}

/** "12 s", "3 min 05 s", "2 h 10 min" (rounded up to the second). */
export function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')} min`;
}

export interface PeerStatus {
  readonly node: string;
  readonly held: number;
  readonly total: number;
  readonly downBytesPerSecond: number;
  readonly upBytesPerSecond: number;
  readonly bytesLeft: number;
  readonly peers: number;
}

const BAR_WIDTH = 20;

function bar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

/** `peer1    [#######.............] 72/205 chunks  ↓ 9.8 MB/s  ↑ 4.1 MB/s  ETA 2 s  4 peers` */
export function formatPeerStatus(status: PeerStatus): string {
  return [
    `${status.node.padEnd(8)} ${bar(status.held, status.total)} ${status.held}/${status.total} chunks`,
    `↓ ${formatRate(status.downBytesPerSecond)}`,
    `↑ ${formatRate(status.upBytesPerSecond)}`,
    `ETA ${formatEta(status.bytesLeft, status.downBytesPerSecond)}`,
    plural(status.peers, 'peer'),
  ].join('  ');
}

export interface OwnerStatus {
  readonly node: string;
  readonly sentBytes: number;
  readonly fileBytes: number;
  readonly upBytesPerSecond: number;
  readonly peers: number;
}

/** `owner    sent 45.2 MB (2.2 copies)  ↑ 20.1 MB/s  to 5 peers` */
export function formatOwnerStatus(status: OwnerStatus): string {
  const copies = status.fileBytes === 0 ? 0 : status.sentBytes / status.fileBytes;
  return [
    `${status.node.padEnd(8)} sent ${formatBytes(status.sentBytes)} (${copies.toFixed(1)} copies)`,
    `↑ ${formatRate(status.upBytesPerSecond)}`,
    `to ${plural(status.peers, 'peer')}`,
  ].join('  ');
}

/** The status line is redrawn this often. */
export const STATUS_REDRAW_MS = 250;

/** Download and upload rates from an engine's running byte counters, sampled on each redraw. */
export class TransferMeters {
  private readonly down = new RateMeter();
  private readonly up = new RateMeter();
  private lastDown = 0;
  private lastUp = 0;

  sample(
    totals: { readonly bytesDown: number; readonly bytesUp: number },
    nowMs: number,
  ): {
    downBytesPerSecond: number;
    upBytesPerSecond: number;
  } {
    this.down.add(totals.bytesDown - this.lastDown, nowMs);
    this.up.add(totals.bytesUp - this.lastUp, nowMs);
    this.lastDown = totals.bytesDown;
    this.lastUp = totals.bytesUp;
    return {
      downBytesPerSecond: this.down.bytesPerSecond(nowMs),
      upBytesPerSecond: this.up.bytesPerSecond(nowMs),
    };
  }
}
