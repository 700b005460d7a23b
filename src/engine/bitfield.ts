/**
 * The chunk ID list: one bit per chunk, most significant bit first, as BEP 3's bitfield message.
 */
export class Bitfield {
  readonly bits: Uint8Array;
  private setCount = 0;

  constructor(
    readonly size: number,
    bits?: Uint8Array,
  ) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`bad bitfield size ${size}`);
    const byteLength = Math.ceil(size / 8);
    if (bits !== undefined && bits.length !== byteLength) {
      throw new RangeError(`bitfield of ${size} bits needs ${byteLength} bytes, got ${bits.length}`);
    }
    this.bits = bits === undefined ? new Uint8Array(byteLength) : bits.slice();
    if (bits !== undefined) {
      // Spare bits are cleared so counts and comparisons only see real chunks.
      if (size % 8 !== 0 && byteLength > 0) {
        this.bits[byteLength - 1] = (this.bits[byteLength - 1] as number) & (0xff << (8 - (size % 8)));
      }
      for (let i = 0; i < size; i++) if (this.has(i)) this.setCount++;
    }
  }

  static full(size: number): Bitfield {
    const field = new Bitfield(size);
    for (let i = 0; i < size; i++) field.set(i);
    return field;
  }

  get count(): number {
    return this.setCount;
  }

  get complete(): boolean {
    return this.setCount === this.size;
  }

  has(index: number): boolean {
    return (((this.bits[index >> 3] as number) >> (7 - (index & 7))) & 1) === 1;
  }

  set(index: number): void {
    this.check(index);
    if (this.has(index)) return;
    this.bits[index >> 3] = (this.bits[index >> 3] as number) | (1 << (7 - (index & 7)));
    this.setCount++;
  }

  clear(index: number): void {
    this.check(index);
    if (!this.has(index)) return;
    this.bits[index >> 3] = (this.bits[index >> 3] as number) & ~(1 << (7 - (index & 7)));
    this.setCount--;
  }

  /** Indices that are set, ascending. */
  indices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.has(i)) out.push(i);
    return out;
  }

  copy(): Bitfield {
    return new Bitfield(this.size, this.bits);
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`chunk index ${index} outside 0..${this.size - 1}`);
    }
  }
}

/**
 * Visits, ascending, each index set in `field` but in neither `held` nor `skip` (when given), until
 * `visit` returns true; returns that index, or -1. Whole bytes with no such bit are skipped, so a
 * scan for what a peer offers that we lack costs a byte per eight chunks, not a call per chunk.
 */
export function findOffered(
  field: Bitfield,
  held: Bitfield,
  skip: Bitfield | undefined,
  visit: (index: number) => boolean,
): number {
  const theirs = field.bits;
  const ours = held.bits;
  const skipped = skip?.bits;
  for (let byte = 0; byte < theirs.length; byte++) {
    let bits = (theirs[byte] as number) & ~(ours[byte] as number);
    if (skipped !== undefined) bits &= ~(skipped[byte] as number);
    if (bits === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((bits & (0x80 >> bit)) !== 0 && visit(byte * 8 + bit)) return byte * 8 + bit;
    }
  }
  return -1;
}

/** Compact text for logs: ranges like "0-4,7,9-12". */
export function formatIndices(indices: readonly number[]): string {
  const parts: string[] = [];
  let start = -1;
  let previous = -2;
  for (const index of indices) {
    if (index !== previous + 1) {
      if (start >= 0) parts.push(start === previous ? `${start}` : `${start}-${previous}`);
      start = index;
    }
    previous = index;
  }
  if (start >= 0) parts.push(start === previous ? `${start}` : `${start}-${previous}`);
  return parts.length === 0 ? 'none' : parts.join(',');
}
