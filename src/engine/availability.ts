/**
 * What the remotes hold: each connection's chunk ID list kept up to date from HAVE and BITFIELD
 * (or BEP 6's have-all and have-none), and how many peers hold each chunk (for rarest-first). The
 * owner also counts, per chunk, the peers that hold it or were handed it in a share.
 */
import type { ListSummary } from './activity.ts';
import { Bitfield } from './bitfield.ts';
import type { Connection } from './connection.ts';
import type { Message } from './messages.ts';
import type { Role } from './options.ts';

/** The messages that carry a remote's chunk ID list, whole or one chunk at a time. */
export type ChunkListMessage = Extract<Message, { type: 'have' | 'bitfield' | 'have-all' | 'have-none' }>;

export class Availability {
  /** How many connected peers hold each chunk. */
  readonly holders: Uint16Array;
  /** Owner only: how many peers hold or were handed each chunk. */
  readonly replication: Uint16Array;

  constructor(
    private readonly role: Role,
    private readonly pieceCount: number,
  ) {
    this.holders = new Uint16Array(pieceCount);
    this.replication = new Uint16Array(pieceCount);
  }

  /** Applies a remote's list message; returns the list as the activity line shows it. */
  receive(conn: Connection, message: ChunkListMessage): ListSummary {
    switch (message.type) {
      case 'have':
        this.add(conn, message.index);
        return { form: 'have', chunk: message.index };
      case 'bitfield':
        this.replace(conn, new Bitfield(this.pieceCount, message.bits));
        return { form: 'bitfield', chunks: conn.remoteHave.indices() };
      case 'have-all':
        this.replace(conn, Bitfield.full(this.pieceCount));
        return { form: 'have-all', count: this.pieceCount };
      case 'have-none':
        this.replace(conn, new Bitfield(this.pieceCount));
        return { form: 'have-none' };
    }
  }

  /** The remote announced chunk `index`. */
  add(conn: Connection, index: number): void {
    if (conn.remoteHave.has(index)) return;
    conn.remoteHave.set(index);
    this.holders[index] = (this.holders[index] as number) + 1;
    if (this.role === 'owner' && !conn.advertised.has(index))
      this.replication[index] = (this.replication[index] as number) + 1;
  }

  /** A bitfield may arrive again mid-transfer (aria2 does this): replace the remote's list. */
  replace(conn: Connection, field: Bitfield): void {
    for (let i = 0; i < this.pieceCount; i++) {
      const had = conn.remoteHave.has(i);
      const has = field.has(i);
      if (had === has) continue;
      if (has) this.add(conn, i);
      else {
        conn.remoteHave.clear(i);
        this.holders[i] = (this.holders[i] as number) - 1;
      }
    }
  }

  /** The connection is gone: what it held (or, for the owner, was handed) no longer counts. */
  remove(conn: Connection): void {
    for (let i = 0; i < this.pieceCount; i++) {
      if (conn.remoteHave.has(i)) {
        this.holders[i] = (this.holders[i] as number) - 1;
        if (this.role === 'owner') this.decrementReplication(i);
      } else if (this.role === 'owner' && conn.advertised.has(i)) {
        this.decrementReplication(i);
      }
    }
  }

  /** The owner handed chunk `index` to one more peer. */
  handedOut(index: number): void {
    this.replication[index] = (this.replication[index] as number) + 1;
  }

  private decrementReplication(index: number): void {
    this.replication[index] = Math.max(0, (this.replication[index] as number) - 1);
  }
}
