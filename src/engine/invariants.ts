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
  /** Held chunks and chunks started at the last check of the downloads. */
  private held = -1;
  private starts = -1;

  /** `conn`'s outstanding requests, queued requests or reads in flight grew. */
  grew(conn: Connection): void {
    if (this.tracking) this.grown.add(conn);
  }

  /** Whether this check must scan every connection: the first one, and deep ones. */
  scanAll(deep: boolean): boolean {
    const first = !this.tracking;
    this.tracking = true;
    return first || deep;
  }

  /**
   * Whether a download may now be of a held chunk: only a new download or a newly held chunk (held
   * chunks are never dropped) can make one so. Answers true once per change.
   */
  downloadsMoved(held: number, starts: number, deep: boolean): boolean {
    if (!deep && held === this.held && starts === this.starts) return false;
    this.held = held;
    this.starts = starts;
    return true;
  }

  /** The connections that grew since the last check (cleared by `clear`). */
  get connections(): ReadonlySet<Connection> {
    return this.grown;
  }

  clear(): void {
    // Clearing an empty set still replaces its table: skipped, as most checks find nothing grown.
    if (this.grown.size > 0) this.grown.clear();
  }
}

export interface InvariantRooms extends Pick<SharedRecords, 'have' | 'connections'> {
  readonly limits: EngineLimits;
  /** Chunks under way (`assembly`), reads in flight (`serving`) and who grew (`growth`). */
  readonly rooms: Pick<Rooms, 'assembly' | 'serving' | 'growth'>;
}

const EMPTY_BITS = new Uint8Array(0);

/** The first broken invariant, or undefined; with `deep`, also per connection and per chunk. */
export function brokenInvariant(rooms: InvariantRooms, deep: boolean): string | undefined {
  const { growth } = rooms.rooms;
  // Most checks find nothing grown: no iterator is made for an empty set.
  const broken = growth.scanAll(deep)
    ? firstBroken(rooms, rooms.connections.values(), deep)
    : growth.connections.size === 0
      ? undefined
      : firstBroken(rooms, growth.connections.values(), deep);
  growth.clear();
  if (broken !== undefined) return broken;
  if (rooms.rooms.serving.readsInFlight > rooms.limits.maxReadsInFlight)
    return 'block reads in flight over the limit';
  const { assembly } = rooms.rooms;
  if (!growth.downloadsMoved(rooms.have.count, assembly.starts, deep)) return undefined;
  for (const index of assembly.downloads.keys()) {
    if (rooms.have.has(index)) return `downloading chunk ${index} that is already held`;
  }
  return undefined;
}

/** The first broken limit among `connections` (a grown one closed since is not checked, as in a full scan). */
function firstBroken(
  rooms: InvariantRooms,
  connections: Iterable<Connection>,
  deep: boolean,
): string | undefined {
  for (const connection of connections) {
    if (rooms.connections.get(connection.id) !== connection) continue;
    const broken = brokenConnectionInvariant(rooms, connection, deep);
    if (broken !== undefined) return broken;
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
