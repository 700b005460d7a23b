/**
 * The tracker's bencoded answer to an announce: the result as data, and its encoding, compact
 * (BEP 23 `peers`, BEP 7 `peers6`) or the BEP 3 dictionary model, with the ring extension key.
 */
import { type BencodeDictionary, type BencodeValue, encodeBencode, latin1Bytes } from '../engine/bencode.ts';
import { encodeCompactEntry, encodeCompactPeers } from './compact-peers.ts';

/** The ring extension key in announce answers: the one peer the asker should download from. */
export const DOWNLOAD_FROM_KEY = 'swarm download from';

export interface PeerEntry {
  readonly peerId: Uint8Array;
  readonly host: string;
  readonly port: number;
}

export type AnnounceResult =
  | {
      readonly ok: true;
      readonly intervalSeconds: number;
      readonly minIntervalSeconds: number;
      /** Peers with nothing left (seeders), the asker included. */
      readonly complete: number;
      readonly incomplete: number;
      /** Never the asker, nor anything at the asker's address. */
      readonly peers: readonly PeerEntry[];
      readonly downloadFrom?: PeerEntry;
    }
  | { readonly ok: false; readonly failure: string };

const ascii = (text: string): Uint8Array => latin1Bytes(text);

/** The bencoded failure answer. */
export function encodeFailure(reason: string): Uint8Array {
  const body: BencodeDictionary = new Map([['failure reason', new TextEncoder().encode(reason)]]);
  return encodeBencode(body);
}

/** Bencodes an announce result: compact (BEP 23 `peers`, BEP 7 `peers6`) or the BEP 3 dictionary model. */
export function encodeAnnounceResult(
  result: AnnounceResult,
  format: { readonly compact: boolean; readonly noPeerId: boolean },
): Uint8Array {
  if (!result.ok) return encodeFailure(result.failure);
  const body: BencodeDictionary = new Map<string, BencodeValue>([
    ['interval', result.intervalSeconds],
    ['min interval', result.minIntervalSeconds],
    ['complete', result.complete],
    ['incomplete', result.incomplete],
  ]);
  if (format.compact) {
    const compact = encodeCompactPeers(result.peers);
    body.set('peers', compact.peers);
    if (compact.peers6.length > 0) body.set('peers6', compact.peers6);
  } else {
    body.set(
      'peers',
      result.peers.map((peer): BencodeValue => {
        const entry: BencodeDictionary = new Map<string, BencodeValue>([
          ['ip', ascii(peer.host)],
          ['port', peer.port],
        ]);
        if (!format.noPeerId) entry.set('peer id', peer.peerId);
        return entry;
      }),
    );
  }
  if (result.downloadFrom !== undefined) {
    const entry = encodeCompactEntry(result.downloadFrom.host, result.downloadFrom.port);
    if (entry !== undefined) body.set(DOWNLOAD_FROM_KEY, entry);
  }
  return encodeBencode(body);
}
