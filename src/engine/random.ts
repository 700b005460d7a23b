/**
 * A small seeded PRNG (xoshiro128**) with splitting, so one master seed reproduces a whole run and
 * each node draws from its own stream. Integer-only, so results are identical on every machine.
 */

function splitMix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** Mixes a label (a number or a string) into a seed, giving an independent seed for a substream. */
export function deriveSeed(seed: number, label: number | string): number {
  let state = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x27d4eb2d);
  const text = typeof label === 'number' ? `#${label}` : label;
  for (let i = 0; i < text.length; i++) {
    state = Math.imul(state ^ text.charCodeAt(i), 0x01000193);
    [state] = splitMix32(state);
  }
  const [, out] = splitMix32(state);
  return out;
}

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** Counts draws, so tests can compare two runs' use of randomness. */
  draws = 0;

  constructor(seed: number) {
    let state = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x9e3779b1);
    let out: number;
    [state, out] = splitMix32(state);
    this.a = out;
    [state, out] = splitMix32(state);
    this.b = out;
    [state, out] = splitMix32(state);
    this.c = out;
    [, out] = splitMix32(state);
    this.d = out;
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    this.draws++;
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A uniform integer in [0, maxExclusive), without modulo bias. */
  nextInt(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive <= 0 || maxExclusive > 0x100000000) {
      throw new RangeError(`nextInt bound must be an integer in 1..2^32, got ${maxExclusive}`);
    }
    const limit = 0x100000000 - (0x100000000 % maxExclusive);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % maxExclusive;
    }
  }

  /** A uniform integer in [min, max]. */
  nextIntBetween(min: number, max: number): number {
    return min + this.nextInt(max - min + 1);
  }

  /** True with probability numerator / denominator. */
  chance(numerator: number, denominator: number): boolean {
    return this.nextInt(denominator) < numerator;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.nextInt(items.length)] as T;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const swap = items[i] as T;
      items[i] = items[j] as T;
      items[j] = swap;
    }
    return items;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    // nextUint32 with the state in locals (this fills whole files): the same draws, in the same order.
    let a = this.a | 0;
    let b = this.b | 0;
    let c = this.c | 0;
    let d = this.d | 0;
    const words = Math.ceil(length / 4);
    const whole = Math.floor(length / 4);
    for (let word = 0; word < words; word++) {
      const value = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      const i = word * 4;
      if (word < whole) {
        // A typed array keeps the low 8 bits of what is stored.
        out[i] = value;
        out[i + 1] = value >>> 8;
        out[i + 2] = value >>> 16;
        out[i + 3] = value >>> 24;
      } else {
        for (let k = 0; i + k < length; k++) out[i + k] = value >>> (8 * k);
      }
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    this.draws += words;
    return out;
  }

  /** An independent stream for a sub-component, derived from this one's next draw and a label. */
  fork(label: number | string): Random {
    return new Random(deriveSeed(this.nextUint32(), label));
  }
}

function rotl(value: number, shift: number): number {
  return (value << shift) | (value >>> (32 - shift));
}
