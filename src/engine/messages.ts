/**
 * The BitTorrent peer wire protocol as data: the handshake and every message of BEP 3 and BEP 6,
 * plus the BEP 10 extension envelope. The codec (`codec.ts`) turns these into bytes and back.
 */

/** Message ids on the wire (BEP 3, BEP 5 port, BEP 6 fast extension, BEP 10 extended). */
export const MessageId = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  notInterested: 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  port: 9,
  suggest: 13,
  haveAll: 14,
  haveNone: 15,
  reject: 16,
  allowedFast: 17,
  extended: 20,
} as const;

/** The messages that are an id alone, by type. */
export const ID_ONLY_MESSAGE_IDS = {
  choke: MessageId.choke,
  unchoke: MessageId.unchoke,
  interested: MessageId.interested,
  'not-interested': MessageId.notInterested,
  'have-all': MessageId.haveAll,
  'have-none': MessageId.haveNone,
} as const;

/** The messages that carry one chunk index, by type. */
export const INDEX_MESSAGE_IDS = {
  have: MessageId.have,
  suggest: MessageId.suggest,
  'allowed-fast': MessageId.allowedFast,
} as const;

/** The messages that carry a block address (index, begin, length), by type. */
export const BLOCK_ADDRESS_MESSAGE_IDS = {
  request: MessageId.request,
  cancel: MessageId.cancel,
  reject: MessageId.reject,
} as const;

export const PROTOCOL_NAME = 'BitTorrent protocol';
/** 1 + 19 + 8 + 20 + 20 bytes. */
export const HANDSHAKE_LENGTH_BYTES = 68;
/** Our requests are 16 KiB blocks; we serve requests of up to this many bytes. */
export const BLOCK_LENGTH_BYTES = 16384;

/** Reserved-byte flags we set and honour. */
export const RESERVED_FAST_EXTENSION = { byteIndex: 7, mask: 0x04 } as const;
export const RESERVED_EXTENSION_PROTOCOL = { byteIndex: 5, mask: 0x10 } as const;

export interface Handshake {
  readonly type: 'handshake';
  /** 8 bytes. */
  readonly reserved: Uint8Array;
  /** 20 bytes. */
  readonly infoHash: Uint8Array;
  /** 20 bytes. */
  readonly peerId: Uint8Array;
}

export interface BlockAddress {
  /** Chunk (piece) index. */
  readonly index: number;
  /** Byte offset inside the chunk. */
  readonly begin: number;
  readonly length: number;
}

export type Message =
  | { readonly type: 'keep-alive' }
  | { readonly type: 'choke' }
  | { readonly type: 'unchoke' }
  | { readonly type: 'interested' }
  | { readonly type: 'not-interested' }
  | { readonly type: 'have'; readonly index: number }
  | { readonly type: 'bitfield'; readonly bits: Uint8Array }
  | ({ readonly type: 'request' } & BlockAddress)
  | { readonly type: 'piece'; readonly index: number; readonly begin: number; readonly block: Uint8Array }
  | ({ readonly type: 'cancel' } & BlockAddress)
  | { readonly type: 'port'; readonly port: number }
  | { readonly type: 'suggest'; readonly index: number }
  | { readonly type: 'have-all' }
  | { readonly type: 'have-none' }
  | ({ readonly type: 'reject' } & BlockAddress)
  | { readonly type: 'allowed-fast'; readonly index: number }
  | { readonly type: 'extended'; readonly extendedId: number; readonly payload: Uint8Array };

export type MessageType = Message['type'];

/** Bytes of the length prefix in front of every frame. */
export const LENGTH_PREFIX_BYTES = 4;
/** A whole frame including its 4-byte length prefix: a piece message carrying a 16 KiB block. */
export const MAX_FRAME_BYTES = BLOCK_LENGTH_BYTES + 13;
/** Cap on the `payload` of a BEP 10 message (the bytes after the extended id). */
export const MAX_EXTENDED_PAYLOAD_BYTES = 64 * 1024;
/** The protocol name as it appears on the wire, one byte per char. */
export const PROTOCOL_BYTES = Uint8Array.from(PROTOCOL_NAME, (c) => c.charCodeAt(0));
