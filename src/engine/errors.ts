/**
 * Errors split in two, as h11 does: the remote misbehaved (a `WireError`, data that closes one
 * connection), or we misused an API (a thrown `Error`, which is a bug).
 */

export type WireErrorCode =
  /** The first byte was not 19: an encrypted (MSE) handshake or not BitTorrent at all. */
  | 'not-bittorrent'
  | 'bad-handshake'
  | 'info-hash-mismatch'
  | 'frame-too-large'
  /** The length prefix does not match what the message id requires. */
  | 'bad-message-length'
  | 'unknown-message'
  | 'bad-bitfield-length'
  | 'bitfield-spare-bits'
  | 'index-out-of-range'
  | 'block-too-large'
  | 'block-out-of-range'
  | 'bad-extension-message'
  /** BEP 11 (pex.ts): a `ut_pex` message that is not a dictionary of byte strings. */
  | 'bad-pex-message'
  /** A compact list whose length is not a whole number of 6- or 18-byte entries. */
  | 'bad-pex-length'
  /** More entries in one list than `MAX_PEX_RECEIVED_ENTRIES`. */
  | 'pex-too-many-entries'
  /** An entry no one can be reached at (port 0). */
  | 'pex-bad-address'
  /** A `ut_pex` payload over `MAX_PEX_PAYLOAD_BYTES`. */
  | 'pex-oversized'
  /**
   * An added entry naming our own address: that entry is refused (never dialled), the connection
   * kept, since an honest peer may know us under an address we listen on.
   */
  | 'pex-self-address'
  /** `ut_pex` messages closer together than `MIN_PEX_RECEIVE_INTERVAL_MS`. */
  | 'pex-flood';

export interface WireError {
  readonly code: WireErrorCode;
  readonly message: string;
}

export function wireError(code: WireErrorCode, message: string): WireError {
  return { code, message };
}

/** Why the engine closed a connection: a remote fault, a local policy, or a timeout. */
export type CloseReason =
  | { readonly code: 'protocol'; readonly error: WireError }
  | { readonly code: 'handshake-timeout' }
  | { readonly code: 'idle-timeout' }
  | { readonly code: 'duplicate-connection' }
  | { readonly code: 'self-connection' }
  | { readonly code: 'too-many-connections' }
  | { readonly code: 'corrupt-data'; readonly chunkIndex: number }
  | { readonly code: 'request-flood' }
  | { readonly code: 'unsolicited-block' }
  | { readonly code: 'untrusted-peer' }
  | { readonly code: 'shutdown' }
  | { readonly code: 'not-needed' };

export function describeCloseReason(reason: CloseReason): string {
  switch (reason.code) {
    case 'protocol':
      return `protocol error (${reason.error.code}): ${reason.error.message}`;
    case 'corrupt-data':
      return `corrupt data for chunk ${reason.chunkIndex}`;
    default:
      return reason.code;
  }
}

/** Thrown for misuse of an API by our own code: a bug, never a remote's fault. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
