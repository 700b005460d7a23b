/**
 * What must hold in the engine at every step, checked on request (the simulator's checker): the
 * limits on requests and reads, and, deeply, that nothing advertised is unheld.
 *
 * The limits are checked incrementally: a count can only break its limit by growing, so after the
 * first check only the connections whose requests or reads grew since the last one are looked at
 * (the owner of a 10,000-peer swarm would otherwise scan every connection after every input).
 */
import type { Connection } from './connection.ts';
import type { EngineLimits } from './limits.ts';
import type { Rooms, SharedRecords } from './rooms.ts';

/** Connections whose counts grew since the last check; tracking starts with the first check. */
export class GrowthWatch {
  private tracking = false;
  private readonly grown = new Set<Connection>();

  /** `conn`'s outstanding requests, queued requests or reads in flight grew. */
  grew(conn: Connection): void {
    if (this.tracking) this.grown.add(conn);
  }

  /** The connections to check: every one at the first check (and deep ones), else those that grew. */
  take(all: ReadonlyMap<string, Connection>, everyOne: boolean): Iterable<Connection> {
    const first = !this.tracking;
    this.tracking = true;
    if (first || everyOne) {
      this.grown.clear();
      return all.values();
    }
    if (this.grown.size === 0) return NONE;
    const grown = [...this.grown];
    this.grown.clear();
    // A connection closed since it grew is no longer checked, as in a full scan.
    return grown.filter((conn) => all.get(conn.id) === conn);
  }
}

export interface InvariantRooms extends Pick<SharedRecords, 'have' | 'connections'> {
  readonly limits: EngineLimits;
  /** Chunks under way (`assembly`), reads in flight (`serving`) and who grew (`growth`). */
  readonly rooms: Pick<Rooms, 'assembly' | 'serving' | 'growth'>;
}

const EMPTY_BITS = new Uint8Array(0);
const NONE: readonly Connection[] = [];

/** The first broken invariant, or undefined; with `deep`, also per connection and per chunk. */
export function brokenInvariant(rooms: InvariantRooms, deep: boolean): string | undefined {
  for (const connection of rooms.rooms.growth.take(rooms.connections, deep)) {
    const broken = brokenConnectionInvariant(rooms, connection, deep);
    if (broken !== undefined) return broken;
  }
  if (rooms.rooms.serving.readsInFlight > rooms.limits.maxReadsInFlight)
    return 'block reads in flight over the limit';
  for (const index of rooms.rooms.assembly.downloads.keys()) {
    if (rooms.have.has(index)) return `downloading chunk ${index} that is already held`;
  }
  return undefined;
}

function brokenConnectionInvariant(
  rooms: InvariantRooms,
  connection: Connection,
  deep: boolean,
): string | undefined {
  const { limits, have } = rooms;
  if (connection.outstanding.size > limits.maxOutstandingRequestsPerPeer) {
    return `outstanding requests to ${connection.label} over the limit`;
  }
  if (connection.queued.length > limits.maxQueuedRequestsFromPeer) {
    return `queued requests from ${connection.label} over the limit`;
  }
  if (connection.readsInFlight.size > limits.maxReadsInFlightPerPeer) {
    return `reads in flight for ${connection.label} over the limit`;
  }
  // Per connection and per chunk: only on request (the simulator's full checks).
  const advertised = deep ? connection.advertised.bits : EMPTY_BITS;
  for (let byte = 0; byte < advertised.length; byte++) {
    if (((advertised[byte] as number) & ~(have.bits[byte] as number)) !== 0) {
      return `advertised a chunk near ${byte * 8} to ${connection.label} that is not held`;
    }
  }
  return undefined;
}
