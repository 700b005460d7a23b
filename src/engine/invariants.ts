/**
 * What must hold in the engine at every step, checked on request (the simulator's checker): the
 * limits on requests and reads, and, deeply, that nothing advertised is unheld.
 */
import type { Connection } from './connection.ts';
import type { EngineLimits } from './limits.ts';
import type { SharedRecords } from './rooms.ts';

export interface InvariantRooms extends Pick<SharedRecords, 'have' | 'connections'> {
  readonly limits: EngineLimits;
  /** Chunks under way. */
  readonly downloading: Iterable<number>;
  readonly readsInFlight: number;
}

const EMPTY_BITS = new Uint8Array(0);

/** The first broken invariant, or undefined; with `deep`, also per connection and per chunk. */
export function brokenInvariant(rooms: InvariantRooms, deep: boolean): string | undefined {
  for (const connection of rooms.connections.values()) {
    const broken = brokenConnectionInvariant(rooms, connection, deep);
    if (broken !== undefined) return broken;
  }
  if (rooms.readsInFlight > rooms.limits.maxReadsInFlight) return 'block reads in flight over the limit';
  for (const index of rooms.downloading) {
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
