/**
 * Handshakes: ours (with the fast-extension and extension-protocol bits set), and theirs checked
 * (torrent, self, trust), duplicate connections to one peer resolved the same way on both sides, and
 * what follows an open connection (our chunk ID list, unchoke, extension handshake, interest).
 */
import type { AddressBook } from './address-book.ts';
import type { Advertising } from './advertising.ts';
import type { Choking } from './choking.ts';
import { encodeHandshake } from './codec.ts';
import type { Connection, ConnectionId } from './connection.ts';
import type { DownloadPolicy } from './download-policy.ts';
import type { Outbox } from './effects.ts';
import { type CloseReason, wireError } from './errors.ts';
import type { ExtensionSession } from './extension.ts';
import { bytesEqual, compareBytes } from './hash.ts';
import { type Handshake, RESERVED_EXTENSION_PROTOCOL, RESERVED_FAST_EXTENSION } from './messages.ts';
import { peerLabel } from './peer-id.ts';

const OUR_RESERVED = (() => {
  const reserved = new Uint8Array(8);
  reserved[RESERVED_FAST_EXTENSION.byteIndex] = RESERVED_FAST_EXTENSION.mask;
  // BEP 10: we speak the extension protocol too (extension.ts).
  reserved[RESERVED_EXTENSION_PROTOCOL.byteIndex] = RESERVED_EXTENSION_PROTOCOL.mask;
  return reserved;
})();

/** The rooms a handshake touches, lent by the face. */
export interface HandshakeRooms {
  readonly infoHash: Uint8Array;
  readonly peerId: Uint8Array;
  readonly connections: ReadonlyMap<ConnectionId, Connection>;
  readonly untrusted: ReadonlySet<string>;
  readonly outbox: Outbox;
  readonly addressBook: AddressBook;
  readonly advertising: Advertising;
  readonly choking: Choking;
  readonly extensions: ExtensionSession;
  readonly policy: DownloadPolicy;
  /** The face's `closeConnection`; `redial` false for a connection we never want back. */
  close(conn: Connection, reason: CloseReason, redial?: boolean): void;
}

export class Handshakes {
  constructor(private readonly rooms: HandshakeRooms) {}

  send(conn: Connection): void {
    conn.sentHandshake = true;
    this.rooms.outbox.sendBytes(
      conn,
      encodeHandshake({ reserved: OUR_RESERVED, infoHash: this.rooms.infoHash, peerId: this.rooms.peerId }),
    );
  }

  /** The remote's handshake arrived: checked, and if it passes, the connection opens. */
  received(conn: Connection, handshake: Handshake): void {
    if (!this.admit(conn, handshake)) return;
    const duplicate = this.findDuplicate(conn, handshake.peerId);
    if (duplicate !== undefined && this.resolveDuplicate(conn, duplicate) === conn) return;
    conn.fastExtension =
      ((handshake.reserved[RESERVED_FAST_EXTENSION.byteIndex] ?? 0) & RESERVED_FAST_EXTENSION.mask) !== 0;
    if (!conn.sentHandshake) this.send(conn);
    conn.state = 'open';
    this.opened(conn, handshake.reserved);
  }

  /** Our torrent, not ourselves, and someone we still trust; else the connection is closed. */
  private admit(conn: Connection, handshake: Handshake): boolean {
    if (!bytesEqual(handshake.infoHash, this.rooms.infoHash)) {
      this.rooms.close(conn, {
        code: 'protocol',
        error: wireError('info-hash-mismatch', 'the remote asked for a torrent we do not serve'),
      });
      return false;
    }
    if (bytesEqual(handshake.peerId, this.rooms.peerId)) {
      this.rooms.close(conn, { code: 'self-connection' });
      return false;
    }
    conn.remotePeerId = handshake.peerId;
    conn.label = peerLabel(handshake.peerId, conn.address);
    if (this.rooms.untrusted.has(conn.label) || this.rooms.untrusted.has(conn.address)) {
      this.rooms.close(conn, { code: 'untrusted-peer' });
      return false;
    }
    return true;
  }

  private opened(conn: Connection, reserved: Uint8Array): void {
    const { addressBook, outbox, advertising, choking, extensions, policy } = this.rooms;
    addressBook.opened(conn);
    outbox.activity({ kind: 'connected', peer: conn.label, direction: conn.direction });
    advertising.sendInitialList(conn);
    // With no upload slots to ration, unchoke at once, even with nothing to offer yet: when a chunk
    // arrives and is announced, the neighbour can request it at once instead of first asking to be
    // unchoked, a round trip saved for every first chunk between two peers.
    if (!choking.rationed) choking.unchoke(conn);
    // BEP 10: our extension handshake, when the remote speaks the extension protocol.
    const extensionHandshake = extensions.open(conn, reserved);
    if (extensionHandshake !== undefined) outbox.send(conn, extensionHandshake);
    policy.updateInterest(conn);
  }

  private findDuplicate(conn: Connection, peerId: Uint8Array): Connection | undefined {
    for (const other of this.rooms.connections.values()) {
      if (other !== conn && other.remotePeerId !== undefined && bytesEqual(other.remotePeerId, peerId))
        return other;
    }
    return undefined;
  }

  /**
   * Two connections to one peer (both dialled each other): both sides keep the one dialled by the
   * peer with the smaller id, so they agree without talking. The loser's role moves to the survivor.
   * Returns the connection that was closed.
   */
  private resolveDuplicate(conn: Connection, existing: Connection): Connection {
    const remoteId = conn.remotePeerId as Uint8Array;
    const weDialSurvivor = compareBytes(this.rooms.peerId, remoteId) < 0;
    const keepNew =
      (conn.direction === 'outbound') === weDialSurvivor && existing.direction !== conn.direction;
    const [keep, drop] = keepNew ? [conn, existing] : [existing, conn];
    keep.isDownloadSource ||= drop.isDownloadSource;
    keep.isOwner ||= drop.isOwner;
    this.rooms.addressBook.moved(drop, keep);
    // The remote must see our handshake to find the duplicate too and move its role across.
    if (!drop.sentHandshake && drop.state !== 'connecting') this.send(drop);
    this.rooms.close(drop, { code: 'duplicate-connection' }, false);
    return drop;
  }
}
