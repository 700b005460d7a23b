/** Byte-array helpers shared by the engine, the simulator, the transport, tests and benchmarks. */

/** One new array holding every part, in order (always a copy, even of a single part). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let totalBytes = 0;
  for (const part of parts) totalBytes += part.length;
  const out = new Uint8Array(totalBytes);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A big-endian unsigned 32-bit integer at `offset` (the caller checked four bytes are there). */
export function readUint32(bytes: Uint8Array, offset: number): number {
  // Multiply rather than shift the top byte: `<< 24` would go negative.
  return (
    (bytes[offset] as number) * 0x1000000 +
    (((bytes[offset + 1] as number) << 16) |
      ((bytes[offset + 2] as number) << 8) |
      (bytes[offset + 3] as number))
  );
}

/** Stores `value` as a big-endian unsigned 32-bit integer at `offset`. */
export function writeUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}
