/**
 * The address book: the remote addresses we were told about, what each one is to us (the owner, our
 * ring's download neighbour, a neighbour), and when to dial or redial it (backoff with jitter).
 */
import type { Bitfield } from './bitfield.ts';
import type { Connection, ConnectionId } from './connection.ts';
import type { Clock } from './effects.ts';
import { MAX_EXCHANGED_ADDRESSES, MAX_EXCHANGED_FAILURES, MAX_REDIAL_DOUBLINGS } from './limits.ts';
import type { EngineSettings, PeerAddress, PeerRole } from './options.ts';
import type { Random } from './random.ts';

export interface KnownPeer {
  readonly address: string;
  role: PeerRole;
  dialAlways: boolean;
  /** Learned through peer exchange (BEP 11) only: capped, and forgotten after repeated failures. */
  exchanged: boolean;
  connection: ConnectionId | undefined;
  failures: number;
  nextAttemptAtMs: number;
}

/** What the address book asks of the face: the connections, and whether we still dial at all. */
export interface AddressBookHost {
  readonly connections: ReadonlyMap<ConnectionId, Connection>;
  readonly untrusted: ReadonlySet<string>;
  readonly have: Bitfield;
  isStopped(): boolean;
  /** Opens an outbound connection to `address` (a connect effect) and returns its id. */
  dial(address: string): ConnectionId;
}

export class AddressBook {
  private readonly known = new Map<string, KnownPeer>();
  /** Of `known`, those with `exchanged` set. */
  private exchangedCount = 0;

  constructor(
    private readonly settings: EngineSettings,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly host: AddressBookHost,
  ) {}

  /**
   * Learns remote addresses. A `download-neighbour` replaces any earlier one (a ring neighbour that
   * moved); an address we knew already is tried again at once.
   */
  learn(peers: readonly PeerAddress[]): void {
    for (const peer of peers) {
      if (peer.role === 'download-neighbour') this.demoteOtherDownloadNeighbours(peer.address);
      const existing = this.known.get(peer.address);
      if (existing === undefined) {
        this.known.set(peer.address, {
          address: peer.address,
          role: peer.role,
          dialAlways: peer.dialAlways === true,
          exchanged: false,
          connection: undefined,
          failures: 0,
          nextAttemptAtMs: this.clock.nowMs,
        });
        continue;
      }
      existing.role = peer.role;
      if (existing.exchanged) this.exchangedCount--;
      existing.exchanged = false;
      existing.dialAlways ||= peer.dialAlways === true;
      existing.failures = 0;
      existing.nextAttemptAtMs = this.clock.nowMs;
      const connection = this.connectionOf(existing);
      if (connection !== undefined) this.classify(connection);
    }
  }

  /**
   * Learns addresses a peer told us (BEP 11) as neighbours, dialled like a tracker's. Unlike `learn`,
   * an address we know already is left as it is (its role and backoff stay ours to decide), and at
   * most `MAX_EXCHANGED_ADDRESSES` are kept, so a peer cannot fill the book or make us redial.
   */
  learnExchanged(addresses: readonly string[]): void {
    for (const address of addresses) {
      if (this.known.has(address)) continue;
      if (this.exchangedCount >= MAX_EXCHANGED_ADDRESSES) return;
      this.exchangedCount++;
      this.known.set(address, {
        address,
        role: 'neighbour',
        dialAlways: false,
        exchanged: true,
        connection: undefined,
        failures: 0,
        nextAttemptAtMs: this.clock.nowMs,
      });
    }
  }

  /** Addresses we know, in the order learned: for a driver that keeps them across restarts. */
  addresses(): string[] {
    return [...this.known.keys()];
  }

  /** Decides, from what we know of the remote's address, whether we download from it. */
  classify(conn: Connection): void {
    const peer = this.knownPeerOf(conn);
    conn.isOwner = peer?.role === 'owner';
    if (this.settings.role === 'owner') {
      conn.isDownloadSource = false;
      return;
    }
    switch (this.settings.topology) {
      case 'ring':
        conn.isDownloadSource = conn.isOwner || peer?.role === 'download-neighbour';
        break;
      case 'star':
        conn.isDownloadSource = conn.isOwner;
        break;
      default:
        conn.isDownloadSource = true;
    }
  }

  /** Dials every address that is due, while there is room for connections. */
  dialDue(): void {
    for (const peer of this.known.values()) {
      if (!this.shouldDial(peer) || peer.nextAttemptAtMs > this.clock.nowMs) continue;
      if (this.host.connections.size >= this.settings.limits.maxConnections) return;
      peer.connection = this.host.dial(peer.address);
    }
  }

  /** Whether some address waits to be dialled (so the timer must keep running). */
  wantsRedial(): boolean {
    for (const peer of this.known.values()) if (this.shouldDial(peer)) return true;
    return false;
  }

  /** The handshake with a known address succeeded: its backoff starts over. */
  opened(conn: Connection): void {
    const peer = conn.knownAddress === undefined ? undefined : this.known.get(conn.knownAddress);
    if (peer !== undefined) peer.failures = 0;
  }

  /** A duplicate connection was dropped: the address now belongs to the one kept. */
  moved(drop: Connection, keep: Connection): void {
    const peer = drop.knownAddress === undefined ? undefined : this.known.get(drop.knownAddress);
    if (peer !== undefined) peer.connection = keep.id;
  }

  /** The connection is gone: its address is redialled after a backoff (or, without `redial`, the longest). */
  closed(conn: Connection, redial: boolean): void {
    const peer = conn.knownAddress === undefined ? undefined : this.known.get(conn.knownAddress);
    if (peer !== undefined && peer.connection === conn.id) {
      peer.connection = undefined;
      if (conn.state !== 'open') peer.failures++;
      if (peer.exchanged && peer.failures >= MAX_EXCHANGED_FAILURES) this.forgetExchanged(peer);
      const limits = this.settings.limits;
      const backoffMs = Math.min(
        limits.reconnectMaxMs,
        limits.reconnectBaseMs * 2 ** Math.min(peer.failures, MAX_REDIAL_DOUBLINGS),
      );
      const jitterMs = this.random.nextInt(Math.max(1, Math.floor(backoffMs / 4)));
      peer.nextAttemptAtMs = this.clock.nowMs + (redial ? backoffMs + jitterMs : limits.reconnectMaxMs);
    }
    for (const known of this.known.values()) {
      if (known.connection === conn.id) known.connection = undefined;
    }
  }

  private forgetExchanged(peer: KnownPeer): void {
    this.known.delete(peer.address);
    this.exchangedCount--;
  }

  private demoteOtherDownloadNeighbours(address: string): void {
    const ring = this.settings.topology === 'ring';
    for (const other of this.known.values()) {
      if (other.role !== 'download-neighbour' || other.address === address) continue;
      other.role = 'neighbour';
      const connection = this.connectionOf(other);
      if (connection !== undefined && ring) connection.isDownloadSource = false;
      if (ring) this.known.delete(other.address);
    }
  }

  /**
   * The address a connection stands for: the one we dialled, or, for an inbound connection kept
   * when both sides dialled each other (`moved`), the address whose connection it now is. Without
   * the second, a ring peer's download neighbour lost that role the next time the tracker named it.
   */
  private knownPeerOf(conn: Connection): KnownPeer | undefined {
    if (conn.knownAddress !== undefined) return this.known.get(conn.knownAddress);
    for (const peer of this.known.values()) if (peer.connection === conn.id) return peer;
    return undefined;
  }

  private connectionOf(peer: KnownPeer): Connection | undefined {
    return peer.connection === undefined ? undefined : this.host.connections.get(peer.connection);
  }

  private shouldDial(peer: KnownPeer): boolean {
    if (this.host.isStopped() || peer.connection !== undefined || this.host.untrusted.has(peer.address))
      return false;
    // Peers we were asked to reach (a client that never dials out) are dialled even by a seeder.
    if (peer.dialAlways) return true;
    // A complete peer only serves; it redials nobody.
    if (this.settings.role === 'owner' || this.host.have.complete) return false;
    if (this.settings.topology === 'star') return peer.role === 'owner';
    return true;
  }
}
