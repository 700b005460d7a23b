/**
 * Choking: which interested peers we upload to. With a limited number of upload slots (the owner's),
 * the rest wait in line and a turn ends after a share's worth of bytes; with unlimited slots every
 * peer is unchoked as soon as it connects.
 */
import type { Connection, ConnectionId } from './connection.ts';
import type { Outbox } from './effects.ts';
import type { EngineSettings } from './options.ts';

export class Choking {
  private unchokedCount = 0;
  /** Peers waiting for an upload slot, longest waiting first. */
  private readonly waitingForSlot: ConnectionId[] = [];

  constructor(
    private readonly settings: EngineSettings,
    private readonly connections: ReadonlyMap<ConnectionId, Connection>,
    private readonly outbox: Outbox,
  ) {}

  /** Whether slots are rationed at all (else everyone is unchoked on connecting). */
  get rationed(): boolean {
    return Number.isFinite(this.settings.uploadSlots);
  }

  /** An interested peer gets a slot if one is free, else waits in line. */
  offerSlot(conn: Connection): void {
    if (!conn.amChoking || conn.state !== 'open') return;
    if (this.unchokedCount < this.settings.uploadSlots) {
      this.unchoke(conn);
    } else if (!this.waitingForSlot.includes(conn.id)) {
      this.waitingForSlot.push(conn.id);
    }
  }

  /** Free slots go to the peers that have waited longest and still want them. */
  fillSlots(): void {
    while (this.unchokedCount < this.settings.uploadSlots && this.waitingForSlot.length > 0) {
      const next = this.connections.get(this.waitingForSlot.shift() as ConnectionId);
      if (next?.peerInterested && next.amChoking) this.unchoke(next);
    }
  }

  /** The peer lost interest: with rationed slots, its slot goes to the next in line. */
  notInterested(conn: Connection): void {
    if (this.rationed && !conn.amChoking) this.choke(conn);
    this.fillSlots();
  }

  /** After serving `conn`: once it has had its turn's bytes, the slot goes to the peer waiting longest. */
  endTurnIfDue(conn: Connection): void {
    if (conn.servedSinceUnchokeBytes < this.settings.slotBytes || this.waitingForSlot.length === 0) return;
    this.choke(conn);
    this.waitingForSlot.push(conn.id);
    this.fillSlots();
  }

  unchoke(conn: Connection): void {
    conn.amChoking = false;
    conn.servedSinceUnchokeBytes = 0;
    this.unchokedCount++;
    this.outbox.send(conn, { type: 'unchoke' });
  }

  /** Chokes a peer; BEP 6 wants every request it still has with us answered, so they are rejected. */
  choke(conn: Connection): void {
    conn.amChoking = true;
    this.unchokedCount--;
    this.outbox.send(conn, { type: 'choke' });
    for (const request of conn.queued.splice(0)) {
      if (conn.fastExtension) this.outbox.send(conn, { type: 'reject', ...request });
    }
  }

  /** The connection is gone: its slot (or its place in line) is freed and handed on. */
  forget(conn: Connection): void {
    if (!conn.amChoking) this.unchokedCount--;
    const waiting = this.waitingForSlot.indexOf(conn.id);
    if (waiting >= 0) this.waitingForSlot.splice(waiting, 1);
    this.fillSlots();
  }
}
