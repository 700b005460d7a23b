/**
 * What we tell each peer we hold: the first chunk ID list (all we hold, or for a super-seeding
 * owner its share), a HAVE for each chunk stored since, and the owner's next share.
 */
import type { ListSummary } from './activity.ts';
import type { Bitfield } from './bitfield.ts';
import type { Connection } from './connection.ts';
import type { Outbox } from './effects.ts';
import type { EngineSettings } from './options.ts';
import type { OwnerShares } from './owner-shares.ts';

export class Advertising {
  constructor(
    private readonly settings: EngineSettings,
    private readonly have: Bitfield,
    private readonly shares: OwnerShares,
    private readonly outbox: Outbox,
  ) {}

  /** Whether we are an owner handing out shares rather than showing everything. */
  get handsOutShares(): boolean {
    return this.settings.role === 'owner' && this.settings.ownerAdvertising === 'shares';
  }

  sendInitialList(conn: Connection): void {
    if (this.handsOutShares) {
      const share = this.shares.choose(conn);
      this.sendList(conn, share);
      return;
    }
    this.sendList(conn, this.have.indices());
  }

  /** A super-seeding owner shows a peer that has caught up its next share. */
  feedShare(conn: Connection): void {
    for (const index of this.shares.next(conn)) this.sendHave(conn, index);
  }

  /** Tells `conn` we hold chunk `index` (a HAVE message). */
  sendHave(conn: Connection, index: number): void {
    conn.advertised.set(index);
    this.outbox.send(conn, { type: 'have', index });
    this.outbox.activity({ kind: 'list-sent', to: conn.label, list: { form: 'have', chunk: index } });
  }

  /** Sends a whole chunk ID list: have-all or have-none where both sides speak BEP 6. */
  private sendList(conn: Connection, indices: readonly number[]): void {
    for (const index of indices) conn.advertised.set(index);
    let list: ListSummary;
    if (conn.fastExtension && indices.length === this.settings.geometry.pieceCount) {
      this.outbox.send(conn, { type: 'have-all' });
      list = { form: 'have-all', count: indices.length };
    } else if (conn.fastExtension && indices.length === 0) {
      this.outbox.send(conn, { type: 'have-none' });
      list = { form: 'have-none' };
    } else if (indices.length === 0) {
      // Without BEP 6, a peer with nothing sends no bitfield at all.
      return;
    } else {
      this.outbox.send(conn, { type: 'bitfield', bits: conn.advertised.bits });
      list = { form: 'bitfield', chunks: indices };
    }
    this.outbox.activity({ kind: 'list-sent', to: conn.label, list });
  }
}
