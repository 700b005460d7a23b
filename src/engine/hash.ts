/**
 * Hashing is handed to the engine as a pure function, so the engine itself imports no platform
 * module. Drivers pass `node:crypto`-backed implementations.
 */
export type Sha1 = (data: Uint8Array) => Uint8Array;

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += HEX[byte >> 4] + (HEX[byte & 15] as string);
  return out;
}

/** Orders byte strings lexicographically, a shorter prefix first: a total order. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = (a[i] as number) - (b[i] as number);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}
