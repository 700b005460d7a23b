/**
 * `npm start` on a terminal: one status line per process (the owner: what it sent, how fast, to
 * how many; each peer: chunks, rates, ETA, peers) and a swarm total, redrawn in place from the
 * processes' JSON event lines.
 */
import type { EventLine } from './processes.ts';
import {
  formatDuration,
  formatOwnerStatus,
  formatPeerStatus,
  formatRate,
  RateMeter,
  STATUS_REDRAW_MS,
} from './progress.ts';

interface ProcessState {
  held: number;
  peers: number;
  sentBytes: number;
  readonly down: RateMeter;
  readonly up: RateMeter;
}

export class DemoStatus {
  private readonly states = new Map<string, ProcessState>();
  private chunks = 0;
  private chunkBytes = 0;
  private fileBytes = 0;
  private drawnLines = 0;
  private lastDrawMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly peerNames: readonly string[],
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly now: () => number = () => performance.now(),
  ) {
    for (const name of ['owner', ...peerNames]) this.states.set(name, blank());
  }

  /** Takes one event line of process `name` and redraws at most every STATUS_REDRAW_MS. */
  onLine(name: string, line: EventLine): void {
    const state = this.states.get(name);
    if (state === undefined) return;
    this.take(state, name, line);
    const nowMs = this.now();
    if (nowMs - this.lastDrawMs >= STATUS_REDRAW_MS || line.event === 'complete') this.draw();
  }

  /** Draws the lines once more (at the end, so the last state stays on screen). */
  draw(): void {
    this.lastDrawMs = this.now();
    const lines = this.lines(this.lastDrawMs);
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    this.out.write(`${up}${lines.map((line) => `\r${line}\x1b[K`).join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  private take(state: ProcessState, name: string, line: EventLine): void {
    const nowMs = this.now();
    if (line.event === 'listening' && name === 'owner') {
      this.chunks = Number(line.chunks);
      this.chunkBytes = Number(line.chunkSizeBytes);
      this.fileBytes = this.chunks * this.chunkBytes;
    } else if (line.event === 'listening') state.held = Number(line.have ?? 0);
    else if (line.event === 'complete') state.held = this.chunks;
    if (line.event !== 'activity') return;
    const bytes = Number(line.bytes ?? 0);
    if (line.kind === 'chunk-received') {
      state.held++;
      state.down.add(bytes, nowMs);
    } else if (line.kind === 'chunk-sent') {
      state.sentBytes += bytes;
      state.up.add(bytes, nowMs);
    } else if (line.kind === 'connected') state.peers++;
    else if (line.kind === 'disconnected') state.peers = Math.max(0, state.peers - 1);
  }

  private lines(nowMs: number): string[] {
    const owner = this.states.get('owner') ?? blank();
    const lines = [
      formatOwnerStatus({
        node: 'owner',
        sentBytes: owner.sentBytes,
        fileBytes: this.fileBytes,
        upBytesPerSecond: owner.up.bytesPerSecond(nowMs),
        peers: owner.peers,
      }),
    ];
    let held = 0;
    let downRate = 0;
    let slowestEtaMs = 0;
    for (const name of this.peerNames) {
      const state = this.states.get(name) ?? blank();
      const downBytesPerSecond = state.down.bytesPerSecond(nowMs);
      const bytesLeft = Math.max(0, (this.chunks - state.held) * this.chunkBytes);
      held += state.held;
      downRate += downBytesPerSecond;
      slowestEtaMs = Math.max(
        slowestEtaMs,
        downBytesPerSecond > 0 ? bytesLeft / downBytesPerSecond : Infinity,
      );
      lines.push(
        formatPeerStatus({
          node: `Peer${name}`,
          held: state.held,
          total: this.chunks,
          downBytesPerSecond,
          upBytesPerSecond: state.up.bytesPerSecond(nowMs),
          bytesLeft: state.held >= this.chunks ? 0 : bytesLeft,
          peers: state.peers,
        }),
      );
    }
    const all = this.chunks * this.peerNames.length;
    const left = Math.max(0, (all - held) * this.chunkBytes);
    // The swarm is done when its slowest peer is: its ETA is the swarm's.
    const eta = left === 0 ? 'done' : Number.isFinite(slowestEtaMs) ? formatDuration(slowestEtaMs) : '--';
    lines.push(
      `${'swarm'.padEnd(8)} ${held}/${all} chunks held  ↓ ${formatRate(downRate)} in all  ETA ${eta}`,
    );
    return lines;
  }
}

function blank(): ProcessState {
  return { held: 0, peers: 0, sentBytes: 0, down: new RateMeter(), up: new RateMeter() };
}
