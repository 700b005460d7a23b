/**
 * Peer ids: Azureus style, `-SW0100-` then twelve bytes. Ours carry a readable node name of up to eight characters
 * (padded with '.') and random characters, so activity lines can name the remote node.
 */
import { latin1String } from './bencode.ts';
import type { Random } from './random.ts';

const CLIENT_PREFIX = '-SW0100-';
const NAME_SLOT_LENGTH = 8;
const PEER_ID_LENGTH_BYTES = 20;
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
/** An Azureus-style client tag: a dash, six letters or digits, a dash. */
const CLIENT_TAG = /^-[A-Za-z0-9]{6}-$/;
const NODE_NAME = /^[A-Za-z0-9_-]+$/;

export function makePeerId(name: string, random: Random): Uint8Array {
  const slot = name
    .replace(/[^A-Za-z0-9_-]/g, '')
    .slice(0, NAME_SLOT_LENGTH)
    .padEnd(NAME_SLOT_LENGTH, '.');
  let tail = '';
  for (let i = 0; i < PEER_ID_LENGTH_BYTES - CLIENT_PREFIX.length - NAME_SLOT_LENGTH; i++)
    tail += ALPHABET[random.nextInt(ALPHABET.length)];
  return new TextEncoder().encode(CLIENT_PREFIX + slot + tail);
}

/** Our node name from a `-SW0100-` peer id ('.' padding stripped), or undefined for foreign ids. */
export function nodeNameOf(peerId: Uint8Array): string | undefined {
  if (peerId.length !== PEER_ID_LENGTH_BYTES) return undefined;
  if (latin1String(peerId.subarray(0, CLIENT_PREFIX.length)) !== CLIENT_PREFIX) return undefined;
  const slot = latin1String(peerId.subarray(CLIENT_PREFIX.length, CLIENT_PREFIX.length + NAME_SLOT_LENGTH));
  const name = slot.replace(/\.+$/, '');
  return NODE_NAME.test(name) ? name : undefined;
}

/** A short label for a remote peer: our node name if it is one of ours, else its client tag and address. */
export function peerLabel(peerId: Uint8Array, address: string): string {
  const name = nodeNameOf(peerId);
  if (name !== undefined) return name;
  const tag = latin1String(peerId.subarray(0, 8));
  if (CLIENT_TAG.test(tag)) return `${tag.slice(1, 7)}@${address}`;
  return address;
}
