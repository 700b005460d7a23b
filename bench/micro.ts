/**
 * Micro benchmarks with mitata: the wire codec, and SHA-1 chunk verification against bare
 * `crypto.createHash` measured in the same run.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { do_not_optimize, measure } from 'mitata';
import { concatBytes } from '../src/engine/bytes.ts';
import { planChunks } from '../src/engine/chunking.ts';
import { encodeHandshake, encodeMessage, WireDecoder } from '../src/engine/codec.ts';
import { bytesEqual } from '../src/engine/hash.ts';
import type { Message } from '../src/engine/messages.ts';
import { Random } from '../src/engine/random.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { MB, MiB, median } from './lib.ts';

export interface MicroOptions {
  /** mitata's minimum CPU time per measurement, in ms. */
  readonly cpuTimeMs: number;
  /** Each pair of measurements that form a ratio is repeated this often; the medians are kept. */
  readonly rounds: number;
}

const BLOCK_BYTES = 16384;
const CHUNK_BYTES = 102400;

/** mitata's median time per call, in ns, turned into MB/s for `bytes` bytes per call. */
async function megabytesPerSecond(bytes: number, fn: () => unknown, options: MicroOptions): Promise<number> {
  const stats = await measure(fn, {
    min_cpu_time: options.cpuTimeMs * 1e6,
    min_samples: 12,
    // mitata batches fast functions 4096 calls a sample by default: seconds for a 60 µs hash.
    batch_samples: 128,
  });
  return (bytes / stats.p50) * (1e9 / MB);
}

function geometry() {
  const plan = planChunks(200 * MiB);
  if (!plan.ok) throw new Error(plan.error.message);
  return plan.geometry;
}

/** Cuts `bytes` into the slices a socket would hand over. */
function slice(bytes: Uint8Array, sizes: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const end = Math.min(bytes.length, at + sizes());
    out.push(bytes.subarray(at, end));
    at = end;
  }
  return out;
}

/**
 * A realistic inbound stream of a peer that downloads and uploads at once: handshake, bitfield,
 * unchoke and interest, then mostly piece messages with requests, haves, the odd cancel and
 * keep-alive in between, cut at random points into socket reads of 1 byte to 64 KiB.
 */
function mixedStream(random: Random, pieceCount: number, blocks: number): Uint8Array[] {
  const block = randomFillSync(new Uint8Array(BLOCK_BYTES));
  const bits = new Uint8Array(Math.ceil(pieceCount / 8));
  for (let i = 0; i < pieceCount; i += 3) bits[i >> 3] = (bits[i >> 3] as number) | (0x80 >> (i & 7));
  const messages: Message[] = [{ type: 'bitfield', bits }, { type: 'unchoke' }, { type: 'interested' }];
  for (let i = 0; i < blocks; i++) {
    const index = random.nextInt(pieceCount);
    messages.push({ type: 'piece', index, begin: (i % 6) * BLOCK_BYTES, block });
    messages.push({ type: 'request', index: random.nextInt(pieceCount), begin: 0, length: BLOCK_BYTES });
    if (i % 2 === 0) messages.push({ type: 'have', index: random.nextInt(pieceCount) });
    if (i % 16 === 0) messages.push({ type: 'cancel', index, begin: 0, length: BLOCK_BYTES });
    if (i % 64 === 0) messages.push({ type: 'keep-alive' });
  }
  const handshake = encodeHandshake({
    reserved: new Uint8Array(8),
    infoHash: new Uint8Array(20).fill(1),
    peerId: new Uint8Array(20).fill(2),
  });
  const bytes = concatBytes([handshake, ...messages.map(encodeMessage)]);
  return slice(bytes, () => {
    const roll = random.nextInt(100);
    if (roll < 20) return 1 + random.nextInt(100);
    if (roll < 50) return 100 + random.nextInt(4000);
    return 4096 + random.nextInt(65536 - 4096);
  });
}

export async function codecBench(options: MicroOptions): Promise<Record<string, number>> {
  const shape = geometry();
  const random = new Random(4);
  const block = randomFillSync(new Uint8Array(BLOCK_BYTES));
  let index = 0;
  const encodeMBps = await megabytesPerSecond(
    BLOCK_BYTES,
    () => {
      index = (index + 1) % shape.pieceCount;
      return encodeMessage({ type: 'piece', index, begin: 0, block });
    },
    options,
  );

  // 1 MiB of 16 KiB piece messages, read in 64 KiB socket reads.
  const pieces = concatBytes(
    Array.from({ length: 64 }, (_, i) =>
      encodeMessage({ type: 'piece', index: Math.floor(i / 6), begin: (i % 6) * BLOCK_BYTES, block }),
    ),
  );
  const pieceReads = slice(pieces, () => 65536);
  const decodeOnce = (reads: readonly Uint8Array[], expectHandshake: boolean): number => {
    const decoder = new WireDecoder(shape, { expectHandshake });
    let events = 0;
    for (const read of reads) {
      const result = decoder.push(read);
      if (!result.ok) throw new Error(`decode failed: ${result.error.message}`);
      events += result.events.length;
    }
    return events;
  };
  const decodeMBps = await megabytesPerSecond(
    pieces.length,
    () => do_not_optimize(decodeOnce(pieceReads, false)),
    options,
  );

  const mixedReads = mixedStream(random, shape.pieceCount, 256);
  const mixedBytes = mixedReads.reduce((sum, read) => sum + read.length, 0);
  const mixedMBps = await megabytesPerSecond(
    mixedBytes,
    () => do_not_optimize(decodeOnce(mixedReads, true)),
    options,
  );
  return { codecEncodeMBps: encodeMBps, codecDecodeMBps: decodeMBps, codecMixedDecodeMBps: mixedMBps };
}

export async function verifyBench(options: MicroOptions): Promise<Record<string, number>> {
  const chunk = randomFillSync(new Uint8Array(CHUNK_BYTES));
  const expected = sha1(chunk);
  const engine: number[] = [];
  const bare: number[] = [];
  // Alternate the two so a burst of load on a shared machine hits both alike.
  for (let round = 0; round < options.rounds; round++) {
    engine.push(
      await megabytesPerSecond(
        CHUNK_BYTES,
        () => {
          if (!bytesEqual(sha1(chunk), expected)) throw new Error('hash mismatch');
        },
        options,
      ),
    );
    bare.push(
      await megabytesPerSecond(
        CHUNK_BYTES,
        () => do_not_optimize(createHash('sha1').update(chunk).digest()),
        options,
      ),
    );
  }
  const verifyMBps = median(engine);
  const verifyBareMBps = median(bare);
  return { verifyMBps, verifyBareMBps, verifyRatio: verifyMBps / verifyBareMBps };
}
