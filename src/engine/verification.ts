/**
 * Verification and the smart ban: every chunk is checked against its hash before it is stored. A
 * chunk from one sender that fails names the liar; a chunk from several is fetched again from one
 * sender only, and the bad copy is kept, so that the good one shows whose blocks were wrong.
 */
import type { ChunkDownload } from './chunk-assembly.ts';
import type { Connection, ConnectionId } from './connection.ts';
import type { Outbox } from './effects.ts';
import type { CloseReason } from './errors.ts';
import { bytesEqual, type Sha1 } from './hash.ts';
import { type EngineLimits, MAX_SUSPECT_CHUNKS } from './limits.ts';
import { BLOCK_LENGTH_BYTES } from './messages.ts';

/** A chunk that failed with several senders: the bad bytes and who sent each block. */
interface Suspect {
  readonly buffer: Uint8Array;
  readonly senders: readonly (string | undefined)[];
}

export interface VerificationOptions {
  readonly pieceHashes: readonly Uint8Array[];
  readonly sha1: Sha1;
  readonly unsafeSkipVerification?: boolean;
}

export interface VerificationStats {
  corruptChunks: number;
}

/** Closes a connection without a redial: the face's `closeConnection`. */
export type CloseForGood = (conn: Connection, reason: CloseReason) => void;

export class Verification {
  /** Peer labels and addresses we no longer talk to. */
  readonly untrusted = new Set<string>();
  /** Chunks that failed verification with several senders: now fetched from one sender only. */
  readonly singleSource = new Set<number>();
  private readonly corruptByPeer = new Map<string, number>();
  private readonly suspects = new Map<number, Suspect>();

  constructor(
    private readonly options: VerificationOptions,
    private readonly limits: EngineLimits,
    private readonly connections: ReadonlyMap<ConnectionId, Connection>,
    private readonly outbox: Outbox,
    private readonly stats: VerificationStats,
    private readonly closeForGood: CloseForGood,
  ) {}

  verify(download: ChunkDownload): boolean {
    const expected = this.options.pieceHashes[download.index] as Uint8Array;
    return (
      this.options.unsafeSkipVerification === true || bytesEqual(this.options.sha1(download.buffer), expected)
    );
  }

  /** A chunk failed its hash: every contributor is blamed; past the limit it is closed and not trusted. */
  onCorrupt(download: ChunkDownload): void {
    this.stats.corruptChunks++;
    this.outbox.activity({ kind: 'chunk-corrupt', chunk: download.index, from: download.lastSource });
    if (download.contributors.size > 1) {
      // Several senders: which one lied is unknown. The chunk is fetched again from one sender
      // only, so the next failure names the liar and no honest peer is blamed; and the bad copy is
      // kept, so the good one shows whose blocks were wrong.
      this.singleSource.add(download.index);
      if (this.suspects.size >= MAX_SUSPECT_CHUNKS)
        this.suspects.delete(this.suspects.keys().next().value as number);
      this.suspects.set(download.index, { buffer: download.buffer, senders: [...download.blockSenders] });
      return;
    }
    for (const id of download.contributors) {
      const conn = this.connections.get(id);
      if (conn !== undefined) this.strike(conn, download.index);
    }
  }

  /** A good copy of a chunk that once failed: every peer whose block differed from it lied. */
  confirmSuspects(good: ChunkDownload): void {
    const suspect = this.suspects.get(good.index);
    if (suspect === undefined) return;
    this.suspects.delete(good.index);
    for (const label of liars(suspect, good)) {
      this.untrusted.add(label);
      for (const conn of [...this.connections.values()]) {
        if (conn.label !== label) continue;
        this.untrusted.add(conn.address);
        this.closeForGood(conn, { code: 'corrupt-data', chunkIndex: good.index });
      }
    }
  }

  private strike(conn: Connection, index: number): void {
    const strikes = (this.corruptByPeer.get(conn.label) ?? 0) + 1;
    this.corruptByPeer.set(conn.label, strikes);
    if (strikes < this.limits.maxCorruptChunks) return;
    this.untrusted.add(conn.label);
    this.untrusted.add(conn.address);
    this.closeForGood(conn, { code: 'corrupt-data', chunkIndex: index });
  }
}

/** The senders whose blocks in the bad copy differ from the good copy, in block order. */
export function liars(suspect: Suspect, good: ChunkDownload): Set<string> {
  const found = new Set<string>();
  for (let block = 0; block < good.blockState.length; block++) {
    const sender = suspect.senders[block];
    if (sender === undefined) continue;
    const begin = block * BLOCK_LENGTH_BYTES;
    const end = Math.min(begin + BLOCK_LENGTH_BYTES, good.lengthBytes);
    if (!bytesEqual(suspect.buffer.subarray(begin, end), good.buffer.subarray(begin, end))) found.add(sender);
  }
  return found;
}
