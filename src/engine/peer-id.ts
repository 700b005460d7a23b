/**
 * Peer ids: Azureus style, `-SW0100-` then twelve bytes. Ours carry a readable node name of up to eight characters
 * (padded with '.') and random characters, so activity lines can name the remote node.
 */
import type { Random } from './random.ts';

const CLIENT_PREFIX = '-SW0100-';
const NAME_SLOT_LENGTH = 8;
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

export function makePeerId(name: string, random: Random): Uint8Array {
  const slot = name
    .replace(/[^A-Za-z0-9_-]/g, '')
    .slice(0, NAME_SLOT_LENGTH)
    .padEnd(NAME_SLOT_LENGTH, '.');
  let tail = '';
  for (let i = 0; i < 12 - NAME_SLOT_LENGTH; i++) tail += ALPHABET[random.nextInt(ALPHABET.length)];
  return new TextEncoder().encode(CLIENT_PREFIX + slot + tail);
}

/** A short label for a remote peer: our node name if it is one of ours, else its client tag and address. */
export function peerLabel(peerId: Uint8Array, address: string): string {
  const text = latin1(peerId.subarray(0, 8));
  if (text === CLIENT_PREFIX) {
    const name = latin1(peerId.subarray(8, 8 + NAME_SLOT_LENGTH)).replace(/\.+$/, '');
    if (/^[A-Za-z0-9_-]+$/.test(name)) return name;
  }
  if (/^-[A-Za-z0-9]{6}-$/.test(text)) return `${text.slice(1, 7)}@${address}`;
  return address;
}

function latin1(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += String.fromCharCode(byte);
  return out;
}
