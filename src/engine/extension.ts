/**
 * The extension protocol (BEP 10) and the metadata exchange on top of it (BEP 9, `ut_metadata`).
 *
 * Every real client (libtorrent, aria2, Transmission) sends an extension handshake right after the
 * BitTorrent handshake when both sides set reserved[5] & 0x10. Ours tells them who we are (`v`), how
 * many requests we queue (`reqq`), and, when we hold the torrent's info dictionary, that we serve it
 * (`m.ut_metadata`, `metadata_size`) so a client that has only the magnet link can start.
 *
 * Pure: bytes in, messages out. Parsing treats its input as hostile and never throws; a malformed
 * message becomes a `WireError` that closes the connection.
 */
import {
  type BencodeDictionary,
  type BencodeValue,
  decodeBencode,
  decodeBencodePrefix,
  encodeBencode,
} from './bencode.ts';
import { type WireError, wireError } from './errors.ts';
import type { Message } from './messages.ts';
import { UT_PEX } from './pex.ts';

/** Extended message id 0 is the extension handshake (BEP 10). */
export const EXTENSION_HANDSHAKE_ID = 0;
/** The name of the metadata extension in the handshake's `m` dictionary (BEP 9). */
export const UT_METADATA = 'ut_metadata';
/** The id we ask remotes to use for `ut_metadata` messages they send us. */
export const OUR_UT_METADATA_ID = 1;
/** The id we ask remotes to use for `ut_pex` messages they send us (BEP 11, peer-exchange.ts). */
export const OUR_UT_PEX_ID = 2;
/** Metadata travels in pieces of 16 KiB, the last one shorter (BEP 9). */
export const METADATA_PIECE_BYTES = 16384;
/** Largest info dictionary we offer or accept: 4 MiB (a 1 PiB file in 16 MiB pieces fits). */
export const MAX_METADATA_BYTES = 4 * 1024 * 1024;
/** Our client name in the handshake's `v`. */
export const CLIENT_NAME = 'swarm 0.1';

const BENCODE_LIMITS = { maxDepth: 8, maxItems: 1024 } as const;
const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

/** What an extension handshake says; unknown keys are ignored, as BEP 10 asks. */
export interface ExtensionHandshake {
  /** Extension name -> the id the sender wants for it; 0 (disabled) entries are dropped. */
  readonly messages: ReadonlyMap<string, number>;
  /** `v`: client name and version. */
  readonly client?: string;
  /** `p`: the sender's listen port. */
  readonly listenPort?: number;
  /** `reqq`: how many outstanding requests the sender queues. */
  readonly requestQueue?: number;
  /** `metadata_size`: bytes of the info dictionary (BEP 9). */
  readonly metadataSize?: number;
}

export type ExtensionParse<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: WireError };

const bad = (message: string): { ok: false; error: WireError } => ({
  ok: false,
  error: wireError('bad-extension-message', message),
});

const text = (value: string): Uint8Array => utf8Encoder.encode(value);

/** The payload (after the extended id byte) of an extension handshake. */
export function encodeExtensionHandshake(handshake: ExtensionHandshake): Uint8Array {
  const m: BencodeDictionary = new Map();
  for (const [name, id] of handshake.messages) m.set(name, id);
  const dict: BencodeDictionary = new Map<string, BencodeValue>([['m', m]]);
  if (handshake.client !== undefined) dict.set('v', text(handshake.client));
  if (handshake.listenPort !== undefined) dict.set('p', handshake.listenPort);
  if (handshake.requestQueue !== undefined) dict.set('reqq', handshake.requestQueue);
  if (handshake.metadataSize !== undefined) dict.set('metadata_size', handshake.metadataSize);
  return encodeBencode(dict);
}

const isCount = (value: BencodeValue | undefined, max: number): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max;

/**
 * Parses an extension handshake. It must be a bencoded dictionary and `m`, when present, a
 * dictionary; other keys of the wrong type are ignored rather than fatal (clients differ).
 */
export function parseExtensionHandshake(payload: Uint8Array): ExtensionParse<ExtensionHandshake> {
  const decoded = decodeBencode(payload, BENCODE_LIMITS);
  if (!decoded.ok) return bad(`extension handshake is not bencoded: ${decoded.error.message}`);
  const dict = decoded.value;
  if (!(dict instanceof Map)) return bad('extension handshake is not a dictionary');
  const m = dict.get('m');
  if (m !== undefined && !(m instanceof Map)) return bad('extension handshake m is not a dictionary');
  const messages = new Map<string, number>();
  for (const [name, id] of m ?? []) {
    if (isCount(id, 255) && id !== 0) messages.set(name, id);
  }
  const v = dict.get('v');
  const p = dict.get('p');
  const reqq = dict.get('reqq');
  const size = dict.get('metadata_size');
  return {
    ok: true,
    value: {
      messages,
      ...(v instanceof Uint8Array && v.length <= 256 ? { client: utf8.decode(v) } : {}),
      ...(isCount(p, 65535) && p !== 0 ? { listenPort: p } : {}),
      ...(isCount(reqq, 1_000_000) ? { requestQueue: reqq } : {}),
      ...(isCount(size, MAX_METADATA_BYTES) && size > 0 ? { metadataSize: size } : {}),
    },
  };
}

/** A `ut_metadata` message (BEP 9). */
export type MetadataMessage =
  | { readonly type: 'request'; readonly piece: number }
  | { readonly type: 'data'; readonly piece: number; readonly totalSize: number; readonly data: Uint8Array }
  | { readonly type: 'reject'; readonly piece: number };

const METADATA_TYPE = { request: 0, data: 1, reject: 2 } as const;

export function encodeMetadataMessage(message: MetadataMessage): Uint8Array {
  const dict: BencodeDictionary = new Map<string, BencodeValue>([
    ['msg_type', METADATA_TYPE[message.type]],
    ['piece', message.piece],
  ]);
  if (message.type !== 'data') return encodeBencode(dict);
  dict.set('total_size', message.totalSize);
  const head = encodeBencode(dict);
  const out = new Uint8Array(head.length + message.data.length);
  out.set(head);
  out.set(message.data, head.length);
  return out;
}

/** Parses a `ut_metadata` payload; a data message's piece is the bytes after the dictionary. */
export function parseMetadataMessage(payload: Uint8Array): ExtensionParse<MetadataMessage> {
  const decoded = decodeBencodePrefix(payload, 0, BENCODE_LIMITS);
  if (!decoded.ok) return bad(`ut_metadata message is not bencoded: ${decoded.error.message}`);
  const dict = decoded.value;
  if (!(dict instanceof Map)) return bad('ut_metadata message is not a dictionary');
  const type = dict.get('msg_type');
  const piece = dict.get('piece');
  if (!isCount(piece, Math.ceil(MAX_METADATA_BYTES / METADATA_PIECE_BYTES)))
    return bad('ut_metadata message without a valid piece');
  const rest = payload.subarray(decoded.end);
  if (type === METADATA_TYPE.data) {
    const totalSize = dict.get('total_size');
    if (!isCount(totalSize, MAX_METADATA_BYTES) || totalSize === 0)
      return bad('ut_metadata data without a valid total_size');
    const expected = metadataPieceLength(totalSize, piece);
    if (expected === undefined || rest.length !== expected)
      return bad(`ut_metadata piece ${piece} of ${rest.length} bytes for a total of ${totalSize}`);
    return { ok: true, value: { type: 'data', piece, totalSize, data: rest } };
  }
  if (rest.length !== 0) return bad('bytes after a ut_metadata request or reject');
  if (type === METADATA_TYPE.request) return { ok: true, value: { type: 'request', piece } };
  if (type === METADATA_TYPE.reject) return { ok: true, value: { type: 'reject', piece } };
  // BEP 9: an unrecognised msg_type is ignored; it is reported as a reject of nothing we asked for.
  return { ok: true, value: { type: 'reject', piece } };
}

/** Bytes in metadata piece `piece` of `totalSize`, or undefined when there is no such piece. */
export function metadataPieceLength(totalSize: number, piece: number): number | undefined {
  const count = Math.ceil(totalSize / METADATA_PIECE_BYTES);
  if (!Number.isInteger(piece) || piece < 0 || piece >= count) return undefined;
  return Math.min(METADATA_PIECE_BYTES, totalSize - piece * METADATA_PIECE_BYTES);
}

export interface ExtensionOptions {
  /** Our `reqq`: requests we queue per peer before rejecting. */
  readonly requestQueue: number;
  /** The torrent's bencoded info dictionary, when we hold it and may hand it out (BEP 9). */
  readonly metadata?: Uint8Array | undefined;
  readonly client?: string;
  /** Whether we announce `ut_pex` (BEP 11); its messages go to `onPeerExchange`. */
  readonly peerExchange?: boolean;
  readonly onPeerExchange?: (remote: object, payload: Uint8Array) => ExtendedOutcome;
  /** Called after each remote extension handshake: a message to send at once (our first ut_pex). */
  readonly afterHandshake?: (remote: object) => Message | undefined;
}

/** What we know of one remote's extensions. */
interface RemoteExtensions {
  handshake: ExtensionHandshake | undefined;
  /** ut_metadata requests answered, bounded so a remote cannot make us send the info for ever. */
  metadataServed: number;
}

export type ExtendedOutcome =
  | { readonly ok: true; readonly replies: readonly Message[] }
  | { readonly ok: false; readonly error: WireError };

/**
 * The engine's side of BEP 10 for all its connections. Per-connection state is keyed by the
 * engine's own connection object in a WeakMap, so a closed connection needs no clean-up.
 */
export class ExtensionSession {
  private readonly remotes = new WeakMap<object, RemoteExtensions>();
  private ourHandshake: Uint8Array;
  private readonly metadata: Uint8Array | undefined;
  private readonly metadataPieces: number;

  constructor(private readonly options: ExtensionOptions) {
    const metadata =
      options.metadata !== undefined &&
      options.metadata.length > 0 &&
      options.metadata.length <= MAX_METADATA_BYTES
        ? options.metadata
        : undefined;
    this.metadata = metadata;
    this.metadataPieces = metadata === undefined ? 0 : Math.ceil(metadata.length / METADATA_PIECE_BYTES);
    this.ourHandshake = this.encodeOurHandshake(undefined);
  }

  /** Our listen port, told from now on as `p`, so peers that we dialled can pass our address on. */
  setListenPort(port: number): void {
    this.ourHandshake = this.encodeOurHandshake(port);
  }

  private encodeOurHandshake(listenPort: number | undefined): Uint8Array {
    const messages = new Map<string, number>();
    if (this.metadata !== undefined) messages.set(UT_METADATA, OUR_UT_METADATA_ID);
    if (this.options.peerExchange === true) messages.set(UT_PEX, OUR_UT_PEX_ID);
    return encodeExtensionHandshake({
      messages,
      client: this.options.client ?? CLIENT_NAME,
      ...(listenPort === undefined ? {} : { listenPort }),
      requestQueue: this.options.requestQueue,
      ...(this.metadata === undefined ? {} : { metadataSize: this.metadata.length }),
    });
  }

  /** Whether a handshake's reserved bytes announce BEP 10. */
  static supported(reserved: Uint8Array): boolean {
    return ((reserved[5] ?? 0) & 0x10) !== 0;
  }

  /**
   * Called once the BitTorrent handshake is done: our extension handshake, to send at once, when the
   * remote speaks BEP 10; undefined otherwise.
   */
  open(remote: object, reserved: Uint8Array): Message | undefined {
    if (!ExtensionSession.supported(reserved)) return undefined;
    this.remotes.set(remote, { handshake: undefined, metadataServed: 0 });
    return { type: 'extended', extendedId: EXTENSION_HANDSHAKE_ID, payload: this.ourHandshake };
  }

  /** What the remote told us in its extension handshake, if it sent one. */
  remoteHandshake(remote: object): ExtensionHandshake | undefined {
    return this.remotes.get(remote)?.handshake;
  }

  /** An extended message arrived: the replies to send, or the fault that closes the connection. */
  receive(remote: object, extendedId: number, payload: Uint8Array): ExtendedOutcome {
    const state = this.remotes.get(remote);
    if (state === undefined) return bad('extended message from a peer that did not announce BEP 10');
    if (extendedId === EXTENSION_HANDSHAKE_ID) {
      const parsed = parseExtensionHandshake(payload);
      if (!parsed.ok) return parsed;
      // A later handshake may add or disable extensions: it replaces the earlier one.
      state.handshake = parsed.value;
      const first = this.options.afterHandshake?.(remote);
      return { ok: true, replies: first === undefined ? [] : [first] };
    }
    if (extendedId === OUR_UT_METADATA_ID && this.metadata !== undefined) {
      return this.onMetadata(state, payload);
    }
    if (extendedId === OUR_UT_PEX_ID && this.options.peerExchange === true && this.options.onPeerExchange) {
      return this.options.onPeerExchange(remote, payload);
    }
    // An id we never handed out: nothing we understand, ignored.
    return { ok: true, replies: [] };
  }

  private onMetadata(state: RemoteExtensions, payload: Uint8Array): ExtendedOutcome {
    const metadata = this.metadata as Uint8Array;
    const parsed = parseMetadataMessage(payload);
    if (!parsed.ok) return parsed;
    const message = parsed.value;
    // We never ask for metadata, so data and rejects are unsolicited: ignored.
    if (message.type !== 'request') return { ok: true, replies: [] };
    const theirId = state.handshake?.messages.get(UT_METADATA);
    if (theirId === undefined) return bad('ut_metadata request without announcing ut_metadata');
    const reply = (body: MetadataMessage): ExtendedOutcome => ({
      ok: true,
      replies: [{ type: 'extended', extendedId: theirId, payload: encodeMetadataMessage(body) }],
    });
    const length = metadataPieceLength(metadata.length, message.piece);
    // Each piece a few times over (a client may retry) and no more.
    if (length === undefined || state.metadataServed >= 4 * this.metadataPieces) {
      return reply({ type: 'reject', piece: message.piece });
    }
    state.metadataServed++;
    const begin = message.piece * METADATA_PIECE_BYTES;
    return reply({
      type: 'data',
      piece: message.piece,
      totalSize: metadata.length,
      data: metadata.subarray(begin, begin + length),
    });
  }
}
