/**
 * Peer exchange (BEP 11) for all connections: each peer that announced `ut_pex` is told, at most
 * once a minute, which peers we connected to and dropped since our last message to it, and what it
 * tells us goes into the address book, to be dialled like a tracker's addresses.
 *
 * Only addresses we can stand behind are sent: the listen address of a peer we are connected to
 * (the address we dialled, or for one that dialled us its host and the port it announced in its
 * extension handshake), never our own and never the receiver's.
 */
import type { AddressBook } from './address-book.ts';
import type { Connection } from './connection.ts';
import type { Clock, Outbox } from './effects.ts';
import type { ExtendedOutcome, ExtensionSession } from './extension.ts';
import {
  MAX_PEX_SENT_ENTRIES,
  MIN_PEX_RECEIVE_INTERVAL_MS,
  PEX_FIRST_DELAY_MS,
  PEX_INTERVAL_MS,
} from './limits.ts';
import type { Message } from './messages.ts';
import {
  canonicalAddress,
  encodePexMessage,
  PEX_FLAG_REACHABLE,
  PEX_FLAG_SEED,
  parsePexMessage,
  screenPexAdded,
  splitAddress,
  UT_PEX,
} from './pex.ts';

export interface PeerExchangeRooms {
  readonly enabled: boolean;
  readonly clock: Clock;
  readonly connections: ReadonlyMap<string, Connection>;
  readonly outbox: Outbox;
  readonly extensions: ExtensionSession;
  readonly addressBook: AddressBook;
}

/** What we told one peer, and when we may next tell it (and hear from it) again. */
interface ExchangeState {
  readonly told: Set<string>;
  nextSendAtMs: number;
  /** Whether any message went yet (the first may go as soon as the remote's handshake is in). */
  sent: boolean;
  lastReceivedAtMs: number | undefined;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class PeerExchange {
  private readonly states = new WeakMap<Connection, ExchangeState>();
  private readonly own = new Set<string>();

  constructor(private readonly rooms: PeerExchangeRooms) {}

  /** Our listen port and the addresses we are known by, once the driver listens. */
  listening(port: number, ownAddresses: readonly string[]): void {
    this.own.clear();
    for (const address of ownAddresses) {
      const canonical = canonicalAddress(address);
      if (canonical !== undefined) this.own.add(canonical);
    }
    this.rooms.extensions.setListenPort(port);
  }

  /** Sends a `ut_pex` message to every peer that is due one and has something new to hear. */
  sendDue(): void {
    if (!this.rooms.enabled) return;
    for (const conn of this.rooms.connections.values()) {
      const message = this.messageFor(conn, false);
      if (message !== undefined) this.rooms.outbox.send(conn, message);
    }
  }

  /**
   * The remote's extension handshake arrived: when it takes `ut_pex`, our first message goes at
   * once, so a peer that joins through us can dial the others before it is done with us.
   */
  firstMessage(conn: Connection): Message | undefined {
    return this.rooms.enabled ? this.messageFor(conn, true) : undefined;
  }

  /** What `conn` is due to hear now (added and dropped since our last message), if anything. */
  private messageFor(conn: Connection, first: boolean): Message | undefined {
    const theirId = this.theirPexId(conn);
    if (theirId === undefined) return undefined;
    const state = this.stateOf(conn);
    const { nowMs } = this.rooms.clock;
    if (first ? state.sent : nowMs < state.nextSendAtMs) return undefined;
    const current = this.currentFor(conn);
    const added = [...current.keys()].filter((address) => !state.told.has(address));
    const dropped = [...state.told].filter((address) => !current.has(address));
    if (added.length === 0 && dropped.length === 0) return undefined;
    // The rest waits for the next message: a full list reaches a new peer over a few minutes.
    const addedNow = added.sort(compareText).slice(0, MAX_PEX_SENT_ENTRIES);
    const droppedNow = dropped.sort(compareText).slice(0, MAX_PEX_SENT_ENTRIES);
    for (const address of addedNow) state.told.add(address);
    for (const address of droppedNow) state.told.delete(address);
    state.sent = true;
    state.nextSendAtMs = nowMs + PEX_INTERVAL_MS;
    const payload = encodePexMessage({
      added: addedNow.map((address) => ({ address, flags: current.get(address) as number })),
      dropped: droppedNow,
    });
    return { type: 'extended', extendedId: theirId, payload };
  }

  /** A `ut_pex` message arrived: checked, and its new addresses learned and dialled. */
  receive(conn: Connection, payload: Uint8Array): ExtendedOutcome {
    const state = this.stateOf(conn);
    const { nowMs } = this.rooms.clock;
    if (
      state.lastReceivedAtMs !== undefined &&
      nowMs - state.lastReceivedAtMs < MIN_PEX_RECEIVE_INTERVAL_MS
    ) {
      return {
        ok: false,
        error: {
          code: 'pex-flood',
          message: `ut_pex messages ${nowMs - state.lastReceivedAtMs} ms apart (at least ${MIN_PEX_RECEIVE_INTERVAL_MS} ms)`,
        },
      };
    }
    state.lastReceivedAtMs = nowMs;
    const parsed = parsePexMessage(payload);
    if (!parsed.ok) return parsed;
    const known = new Set<string>();
    for (const other of this.rooms.connections.values()) {
      const address = this.listenAddress(other);
      if (address !== undefined) known.add(address);
    }
    // Our own addresses are refused and those we are connected to skipped; neither closes the sender.
    const { fresh } = screenPexAdded(parsed.value, this.own, known);
    this.rooms.addressBook.learnExchanged(fresh);
    this.rooms.addressBook.dialDue();
    return { ok: true, replies: [] };
  }

  /** The address book's addresses, then the listen addresses of our connections, without repeats or us. */
  knownAddresses(): string[] {
    const all = new Set(this.rooms.addressBook.addresses());
    for (const conn of this.rooms.connections.values()) {
      const address = conn.state === 'open' ? this.listenAddress(conn) : undefined;
      if (address !== undefined) all.add(address);
    }
    return [...all].filter((address) => !this.own.has(address));
  }

  /** The address `conn`'s peer listens on, when we know it. */
  listenAddress(conn: Connection): string | undefined {
    if (conn.knownAddress !== undefined) return canonicalAddress(conn.knownAddress);
    const host = splitAddress(conn.address)?.host;
    const port = this.rooms.extensions.remoteHandshake(conn)?.listenPort;
    return host === undefined || port === undefined ? undefined : canonicalAddress(`${host}:${port}`);
  }

  /** The listen addresses of our other open connections, each with its `added.f` flags. */
  private currentFor(receiver: Connection): Map<string, number> {
    const theirs = this.listenAddress(receiver);
    const current = new Map<string, number>();
    for (const conn of this.rooms.connections.values()) {
      if (conn === receiver || conn.state !== 'open') continue;
      const address = this.listenAddress(conn);
      if (address === undefined || address === theirs || this.own.has(address)) continue;
      const flags =
        (conn.direction === 'outbound' ? PEX_FLAG_REACHABLE : 0) |
        (conn.remoteHave.complete ? PEX_FLAG_SEED : 0);
      current.set(address, flags);
    }
    return current;
  }

  private theirPexId(conn: Connection): number | undefined {
    if (conn.state !== 'open') return undefined;
    return this.rooms.extensions.remoteHandshake(conn)?.messages.get(UT_PEX);
  }

  private stateOf(conn: Connection): ExchangeState {
    let state = this.states.get(conn);
    if (state === undefined) {
      state = {
        told: new Set(),
        nextSendAtMs: conn.openedAtMs + PEX_FIRST_DELAY_MS,
        sent: false,
        lastReceivedAtMs: undefined,
      };
      this.states.set(conn, state);
    }
    return state;
  }
}
