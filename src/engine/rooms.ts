/**
 * The rooms of the engine, built once and wired together: each gets the shared records the face
 * owns (settings, clock, outbox, held chunks, connections, counters) and the rooms it depends on,
 * lower rooms first, so none reaches into another. The few ways back up (closing a connection,
 * dialling one) are hooks the face provides.
 */
import { AddressBook } from './address-book.ts';
import { Advertising } from './advertising.ts';
import { Availability } from './availability.ts';
import type { Bitfield } from './bitfield.ts';
import { Choking } from './choking.ts';
import { ChunkAssembly } from './chunk-assembly.ts';
import type { Connection, ConnectionId } from './connection.ts';
import { DownloadPolicy } from './download-policy.ts';
import type { Clock, Outbox } from './effects.ts';
import type { CloseReason } from './errors.ts';
import { ExtensionSession } from './extension.ts';
import { Handshakes } from './handshake.ts';
import { GrowthWatch } from './invariants.ts';
import type { EngineOptions, EngineSettings } from './options.ts';
import { OwnerShares } from './owner-shares.ts';
import { PeerExchange } from './peer-exchange.ts';
import { RequestPipeline } from './request-pipeline.ts';
import { Scheduler } from './scheduler.ts';
import { Serving } from './serving.ts';
import { Storage } from './storage.ts';
import { Sweep } from './timers.ts';
import { Verification } from './verification.ts';

/** Counters every room may add to; `Engine.getStats` reports them. */
export interface Counters {
  chunksFromOwner: number;
  chunksFromPeers: number;
  bytesUp: number;
  bytesDown: number;
  corruptChunks: number;
}

export function newCounters(): Counters {
  return { chunksFromOwner: 0, chunksFromPeers: 0, bytesUp: 0, bytesDown: 0, corruptChunks: 0 };
}

/** The records the face owns and lends to the rooms. */
export interface SharedRecords {
  readonly options: EngineOptions;
  readonly settings: EngineSettings;
  readonly clock: Clock;
  readonly outbox: Outbox;
  readonly have: Bitfield;
  readonly connections: Map<ConnectionId, Connection>;
  readonly counters: Counters;
}

/** What the rooms ask of the face. */
export interface FaceHooks {
  /** Closes a connection; `redial` false for one we never want back. */
  close(conn: Connection, reason: CloseReason, redial?: boolean): void;
  isStopped(): boolean;
  /** Opens an outbound connection to `address` and returns its id. */
  dial(address: string): ConnectionId;
}

export interface Rooms {
  readonly availability: Availability;
  readonly advertising: Advertising;
  readonly choking: Choking;
  readonly serving: Serving;
  readonly assembly: ChunkAssembly;
  readonly storage: Storage;
  readonly verification: Verification;
  readonly policy: DownloadPolicy;
  readonly pipeline: RequestPipeline;
  readonly scheduler: Scheduler;
  readonly addressBook: AddressBook;
  readonly handshakes: Handshakes;
  /** BEP 10 / BEP 9 (extension.ts): extension handshakes and ut_metadata, per connection. */
  readonly extensions: ExtensionSession;
  /** BEP 11 (peer-exchange.ts): ut_pex both ways, when `peerExchange` is on. */
  readonly exchange: PeerExchange;
  readonly sweep: Sweep;
  /** Connections whose request and read counts grew, for the incremental invariant check. */
  readonly growth: GrowthWatch;
}

export function buildRooms(shared: SharedRecords, hooks: FaceHooks): Rooms {
  const growth = new GrowthWatch();
  const upload = buildUploadRooms(shared, hooks, growth);
  const download = buildDownloadRooms(shared, hooks, upload.availability, growth);
  const { options, settings, clock, have, connections, outbox } = shared;
  const untrusted = download.verification.untrusted;
  const addressBook = new AddressBook(settings, clock, options.random, {
    connections,
    untrusted,
    have,
    isStopped: () => hooks.isStopped(),
    dial: (address) => hooks.dial(address),
  });
  const peerExchange = options.peerExchange === true;
  // The exchange needs the session (remote handshakes) and the session routes ut_pex to it.
  let exchange: PeerExchange | undefined;
  const extensions = new ExtensionSession({
    requestQueue: settings.limits.maxQueuedRequestsFromPeer,
    metadata: options.metadata,
    peerExchange,
    onPeerExchange: (remote, payload) => (exchange as PeerExchange).receive(remote as Connection, payload),
    afterHandshake: (remote) => exchange?.firstMessage(remote as Connection),
  });
  exchange = new PeerExchange({ enabled: peerExchange, clock, connections, outbox, extensions, addressBook });
  const handshakes = new Handshakes({
    infoHash: options.infoHash,
    peerId: options.peerId,
    connections,
    untrusted,
    outbox,
    addressBook,
    advertising: upload.advertising,
    choking: upload.choking,
    extensions,
    policy: download.policy,
    close: (conn, reason, redial) => hooks.close(conn, reason, redial),
  });
  const sweep = new Sweep(settings.limits.tickMs);
  return { ...upload, ...download, addressBook, extensions, exchange, handshakes, sweep, growth };
}

/** What we tell peers we hold, and how we serve them. */
function buildUploadRooms(shared: SharedRecords, hooks: FaceHooks, growth: GrowthWatch) {
  const { options, settings, have, connections, outbox, counters } = shared;
  const availability = new Availability(settings.role, settings.geometry.pieceCount);
  const shares = new OwnerShares(
    settings.geometry.pieceCount,
    settings.ownerShareChunks,
    availability,
    options.random,
  );
  const advertising = new Advertising(settings, have, shares, outbox);
  const choking = new Choking(settings, connections, outbox);
  const serving = new Serving(
    settings,
    have,
    connections,
    choking,
    outbox,
    counters,
    (conn, reason) => hooks.close(conn, reason),
    advertising.handsOutShares,
    growth,
  );
  return { availability, advertising, choking, serving };
}

/** What we ask peers for, and what we do with what arrives. */
function buildDownloadRooms(
  shared: SharedRecords,
  hooks: FaceHooks,
  availability: Availability,
  growth: GrowthWatch,
) {
  const { options, settings, clock, have, connections, outbox, counters } = shared;
  const assembly = new ChunkAssembly(settings.geometry, options.allocateChunk, options.knownContent);
  const storage = new Storage(settings.limits, outbox);
  const verification = new Verification(
    options,
    settings.limits,
    connections,
    outbox,
    counters,
    (conn, reason) => hooks.close(conn, reason, false),
  );
  const policy = new DownloadPolicy(settings, have, connections, outbox);
  const pipeline = new RequestPipeline(settings, clock, connections, assembly, outbox, growth);
  const scheduler = new Scheduler({
    settings,
    clock,
    random: options.random,
    have,
    connections,
    assembly,
    storage,
    availability,
    policy,
    pipeline,
    singleSource: verification.singleSource,
  });
  return { assembly, storage, verification, policy, pipeline, scheduler };
}
