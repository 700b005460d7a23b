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
