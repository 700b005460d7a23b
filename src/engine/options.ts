/**
 * What a caller tells the engine when it builds one, and the policies it may choose. The face
 * (engine.ts) resolves these into `EngineSettings` once; the rooms read only the settings.
 */
import type { Bitfield } from './bitfield.ts';
import type { Geometry } from './chunking.ts';
import { UsageError } from './errors.ts';
import type { Sha1 } from './hash.ts';
import { DEFAULT_LIMITS, type EngineLimits } from './limits.ts';
import { BLOCK_LENGTH_BYTES } from './messages.ts';
import type { PickerKind } from './picker.ts';
import type { Random } from './random.ts';

export type Role = 'owner' | 'peer';
export type Topology = 'ring' | 'mesh' | 'full' | 'star';
/** `two-phase`: the original, which takes its owner share before trading; `overlapped`: trade at once. */
export type PhaseMode = 'two-phase' | 'overlapped';
/** How the owner advertises: everything at once, or a distinct least-replicated share per peer. */
export type OwnerAdvertising = 'all' | 'shares';
/** How a remote address we were told about relates to us. */
export type PeerRole = 'owner' | 'download-neighbour' | 'neighbour';

export interface PeerAddress {
  readonly address: string;
  readonly role: PeerRole;
  /** Dial (and redial) even when we need nothing from it: a seeder reaching out to a client. */
  readonly dialAlways?: boolean;
}

/**
 * Content a driver already holds for good (the simulator: the scenario file). A received block equal
 * to it is kept as the driver's view instead of a copy; a chunk whose every block was is the driver's
 * buffer. Only equal bytes are ever replaced, so nothing the engine computes can change.
 */
export interface KnownContent {
  /** A long-lived view of exactly `block`'s bytes at (`index`, `begin`), or undefined when they differ. */
  block(index: number, begin: number, block: Uint8Array): Uint8Array | undefined;
  /** The whole chunk `index`, long-lived; asked only when every block of it was known. */
  chunk(index: number): Uint8Array;
}

export interface EngineOptions {
  readonly role: Role;
  /** Shown in activity lines and carried in our peer id. */
  readonly name: string;
  readonly peerId: Uint8Array;
  readonly infoHash: Uint8Array;
  readonly pieceHashes: readonly Uint8Array[];
  readonly geometry: Geometry;
  readonly sha1: Sha1;
  /** Where chunk buffers come from (a driver may pool them); a fresh zeroed array by default. */
  readonly allocateChunk?: (lengthBytes: number) => Uint8Array;
  /** Bytes the driver already holds, so a block equal to them is kept without a copy (chunk-assembly.ts). */
  readonly knownContent?: KnownContent;
  readonly random: Random;
  /** Chunks already verified on disk. The owner starts with all of them. */
  readonly have?: Bitfield;
  /** Of `have`, those that came from the owner (kept in the summary file). */
  readonly fromOwner?: Bitfield;
  readonly topology?: Topology;
  readonly picker?: PickerKind;
  readonly phases?: PhaseMode;
  readonly endgame?: boolean;
  readonly ownerAdvertising?: OwnerAdvertising;
  /** Chunks in each share the owner hands out; also what a peer receives per turn in an upload slot. */
  readonly ownerShareChunks?: number;
  /**
   * How many peers we upload to at once; the rest wait in line, and a turn ends after a share's
   * worth of bytes. Unlimited by default: the upload order (a started chunk first, then the oldest
   * request) already lets a new chunk reach one peer at full speed.
   */
  readonly uploadSlots?: number;
  readonly limits?: Partial<EngineLimits>;
  /** Stores chunks without checking their hash. Only for proving that the checkers catch it. */
  readonly unsafeSkipVerification?: boolean;
  /** BEP 9 (extension.ts): the torrent's bencoded info dictionary, served to magnet-link clients. */
  readonly metadata?: Uint8Array;
  /**
   * BEP 11 (peer-exchange.ts): announce `ut_pex`, tell peers whom we are connected to and dial whom
   * they tell us of. Off by default, so the simulator's runs are unchanged; the real peers turn it on.
   */
  readonly peerExchange?: boolean;
}

/** The options with every default filled in, read by the rooms. */
export interface EngineSettings {
  readonly role: Role;
  readonly geometry: Geometry;
  readonly limits: EngineLimits;
  readonly topology: Topology;
  readonly picker: PickerKind;
  readonly phases: PhaseMode;
  readonly endgame: boolean;
  readonly ownerAdvertising: OwnerAdvertising;
  readonly ownerShareChunks: number;
  /** Peers we upload to at once; the rest wait in line (the owner's slots; unlimited for peers). */
  readonly uploadSlots: number;
  /** Bytes a peer receives before its slot passes to the next in line. */
  readonly slotBytes: number;
  readonly minOutstandingRequests: number;
}

/** The options with every default filled in. */
export function resolveSettings(options: EngineOptions): EngineSettings {
  const { geometry } = options;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const ownerShareChunks = Math.max(1, options.ownerShareChunks ?? Math.ceil(geometry.pieceCount / 5));
  return {
    role: options.role,
    geometry,
    limits,
    topology: options.topology ?? 'ring',
    picker: options.picker ?? 'random',
    phases: options.phases ?? 'two-phase',
    endgame: options.endgame ?? true,
    ownerAdvertising: options.ownerAdvertising ?? 'shares',
    ownerShareChunks,
    uploadSlots: options.uploadSlots ?? Number.POSITIVE_INFINITY,
    slotBytes: Math.max(1, ownerShareChunks) * geometry.pieceLengthBytes,
    // At least a whole chunk in flight, so a new sender's first chunk needs no second round trip.
    minOutstandingRequests:
      limits.minOutstandingRequestsPerPeer ??
      Math.min(
        limits.maxOutstandingRequestsPerPeer,
        Math.max(4, Math.ceil(geometry.pieceLengthBytes / BLOCK_LENGTH_BYTES)),
      ),
  };
}

/** Throws `UsageError` for options no engine can be built from. */
export function checkOptions(options: EngineOptions): void {
  if (options.peerId.length !== 20) throw new UsageError('peer id must be 20 bytes');
  if (options.infoHash.length !== 20) throw new UsageError('info hash must be 20 bytes');
  if (options.pieceHashes.length !== options.geometry.pieceCount) {
    throw new UsageError(
      `expected ${options.geometry.pieceCount} piece hashes, got ${options.pieceHashes.length}`,
    );
  }
}
