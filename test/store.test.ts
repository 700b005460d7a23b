import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toHex } from '../src/engine/hash.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { hashFileChunks } from '../src/transport/file-hashing.ts';
import { StorageError } from '../src/transport/storage-error.ts';
import { ChunkStore, type ChunkStoreOptions, type StoreFs } from '../src/transport/store.ts';
import { chunkFileName } from '../src/transport/store-names.ts';
import { formatSummary, parseSummary, SUMMARY_FILE_NAME } from '../src/transport/summary-file.ts';
import { makeFile, type TestFile } from './support/pair.ts';

// Seven chunks of 100 bytes and a last one of 37.
const FILE = makeFile(737, 11, 100);
const INFO_HASH_HEX = toHex(FILE.options.infoHash);

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'swarm-store-'));
  try {
    await body(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function makeStore(dir: string, extra: Partial<ChunkStoreOptions> = {}, file: TestFile = FILE): ChunkStore {
  return new ChunkStore({
    dir,
    geometry: file.options.geometry,
    pieceHashes: file.hashes,
    sha1,
    fileName: 'movie.bin',
    infoHashHex: toHex(file.options.infoHash),
    label: 'peer2',
    ...extra,
  });
}

async function rejects(promise: Promise<unknown>, check: (error: unknown) => boolean, message: string) {
  try {
    await promise;
  } catch (error) {
    assert.ok(check(error), `${message}: got ${String(error)}`);
    return;
  }
  assert.unreachable(`${message}: did not reject`);
}

const storageCode = (code: StorageError['code']) => (error: unknown) =>
  error instanceof StorageError && error.code === code;

async function listDir(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).sort();
}

/** The folder without the combined file in progress (a hidden temp while chunks arrive). */
async function listSettled(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((name) => !/^\.movie\.bin\.tmp-[0-9a-f]{16}$/.test(name));
}

test('chunk file names and the round trip: written chunks read back block by block', async () => {
  assert.is(chunkFileName(5), 'chunk_5');
  await withDir(async (dir) => {
    const store = makeStore(join(dir, 'Peer2Dir'));
    const opened = await store.open();
    assert.equal([opened.have.count, opened.fromOwner.count, opened.discarded], [0, 0, []]);
    for (const index of [3, 0, 7])
      await store.writeChunk(index, FILE.chunks[index] as Uint8Array, index === 0);
    assert.equal(store.held().indices(), [0, 3, 7]);
    assert.equal(store.fromOwnerField().indices(), [0]);
    assert.equal(await store.readBlock(3, 0, 100), FILE.chunks[3]);
    assert.equal(await store.readBlock(3, 10, 5), (FILE.chunks[3] as Uint8Array).subarray(10, 15));
    assert.equal(await store.readBlock(7, 36, 1), (FILE.chunks[7] as Uint8Array).subarray(36, 37));
    // The summary follows the chunk files within SUMMARY_DELAY_MS; flushing writes it now.
    await store.flushSummary();
    const summary = await fsp.readFile(join(dir, 'Peer2Dir', SUMMARY_FILE_NAME), 'utf8');
    assert.match(summary, /^# swarm summary for peer2: chunk IDs held/);
    assert.match(summary, `info-hash ${INFO_HASH_HEX}\n`);
    assert.match(summary, '\nchunks 8\n');
    assert.match(summary, '\nheld 0,3,7\n');
    assert.match(summary, '\nfrom-owner 0\n');
    assert.equal(parseSummary(summary), { held: [0, 3, 7], fromOwner: [0] });
    assert.equal(await listSettled(join(dir, 'Peer2Dir')), ['chunk_0', 'chunk_3', 'chunk_7', 'summary.txt']);
    await store.close();
  });
});

test('readBlock is bounds-checked and only serves held chunks', async () => {
  await withDir(async (dir) => {
    const store = makeStore(dir, { sync: false });
    await store.open();
    await store.writeChunk(1, FILE.chunks[1] as Uint8Array, false);
    await store.writeChunk(7, FILE.chunks[7] as Uint8Array, false);
    const range = (error: unknown) => error instanceof RangeError;
    await rejects(store.readBlock(1, 90, 11), range, 'past the end');
    await rejects(store.readBlock(7, 0, 38), range, 'past the short last chunk');
    await rejects(store.readBlock(1, -1, 5), range, 'negative begin');
    await rejects(store.readBlock(1, 0, 0), range, 'empty block');
    await rejects(store.readBlock(1, 0.5, 5), range, 'fractional begin');
    await rejects(store.readBlock(8, 0, 1), range, 'index past the last chunk');
    await rejects(store.readBlock(-1, 0, 1), range, 'negative index');
    await rejects(store.readBlock(2, 0, 1), storageCode('io'), 'a chunk not held');
    assert.equal(await store.readBlock(1, 90, 10), (FILE.chunks[1] as Uint8Array).subarray(90));
    await store.close();
    await rejects(store.readBlock(1, 0, 1), storageCode('io'), 'after close');
  });
});

test('writeChunk refuses bytes that do not match the chunk hash or length, and writes nothing', async () => {
  await withDir(async (dir) => {
    const store = makeStore(dir, { sync: false });
    await store.open();
    const bad = (FILE.chunks[2] as Uint8Array).slice();
    bad[4] = (bad[4] as number) ^ 1;
    await rejects(store.writeChunk(2, bad, false), storageCode('corrupt'), 'wrong bytes');
    await rejects(store.writeChunk(2, bad.subarray(1), false), storageCode('corrupt'), 'wrong length');
    assert.is(store.held().count, 0);
    assert.equal(await listDir(dir), ['summary.txt']);
    await store.close();
  });
});

test('open() re-verifies: corrupt and truncated chunks are discarded, temp files removed', async () => {
  await withDir(async (dir) => {
    const first = makeStore(dir, { sync: false });
    await first.open();
    for (let index = 0; index < 6; index++)
      await first.writeChunk(index, FILE.chunks[index] as Uint8Array, index < 3);
    await first.close();

    const corrupt = await fsp.readFile(join(dir, 'chunk_1'));
    corrupt[50] = (corrupt[50] as number) ^ 0x40;
    await fsp.writeFile(join(dir, 'chunk_1'), corrupt);
    await fsp.truncate(join(dir, 'chunk_4'), 99);
    await fsp.writeFile(
      join(dir, 'chunk_5'),
      Buffer.concat([FILE.chunks[5] as Uint8Array, Buffer.from([0])]),
    );
    await fsp.writeFile(join(dir, '.chunk_6.tmp-0123456789abcdef'), 'half a chunk');
    await fsp.writeFile(join(dir, '.summary.txt.tmp-fedcba9876543210'), 'half a summary');
    await fsp.writeFile(join(dir, 'chunk_99'), 'not ours: out of range');
    await fsp.writeFile(join(dir, 'notes.txt'), 'not ours');

    const second = makeStore(dir);
    const opened = await second.open();
    assert.equal(opened.discarded, [1, 4, 5]);
    assert.equal(opened.have.indices(), [0, 2, 3]);
    assert.equal(opened.fromOwner.indices(), [0, 2], 'marks survive only for verified chunks');
    assert.equal(second.held().indices(), [0, 2, 3]);
    assert.equal(await listDir(dir), [
      'chunk_0',
      'chunk_2',
      'chunk_3',
      'chunk_99',
      'notes.txt',
      'summary.txt',
    ]);
    const summary = parseSummary(await fsp.readFile(join(dir, SUMMARY_FILE_NAME), 'utf8'));
    assert.equal(summary, { held: [0, 2, 3], fromOwner: [0, 2] });
    await second.close();
  });
});

test('open() keeps summary from-owner marks only for chunks whose files verify', async () => {
  await withDir(async (dir) => {
    await fsp.writeFile(join(dir, 'chunk_0'), FILE.chunks[0] as Uint8Array);
    await fsp.writeFile(join(dir, 'chunk_5'), FILE.chunks[5] as Uint8Array);
    const claims = formatSummary({
      label: 'peer2',
      infoHashHex: INFO_HASH_HEX,
      chunks: 8,
      held: [0, 1, 2, 3, 4, 5, 6, 7],
      fromOwner: [0, 1, 2, 3, 4, 5, 6, 7],
    });
    await fsp.writeFile(join(dir, SUMMARY_FILE_NAME), claims);
    const store = makeStore(dir, { sync: false });
    const opened = await store.open();
    assert.equal(
      [opened.have.indices(), opened.fromOwner.indices()],
      [
        [0, 5],
        [0, 5],
      ],
    );
    assert.equal(parseSummary(await fsp.readFile(join(dir, SUMMARY_FILE_NAME), 'utf8')), {
      held: [0, 5],
      fromOwner: [0, 5],
    });
    await store.close();
  });
});

test('open() ignores a garbage summary, or one for another torrent', async () => {
  const garbage = [
    '\u0000\u00ff\u0001binary',
    'held 0-4\nfrom-owner 0,0\n',
    `info-hash ${INFO_HASH_HEX}\nchunks 8\nheld 0-99999999\nfrom-owner 0\n`,
    formatSummary({ label: 'x', infoHashHex: 'ab'.repeat(20), chunks: 8, held: [0], fromOwner: [0] }),
    formatSummary({ label: 'x', infoHashHex: INFO_HASH_HEX, chunks: 9, held: [0], fromOwner: [0] }),
  ];
  for (const text of garbage) {
    await withDir(async (dir) => {
      await fsp.writeFile(join(dir, 'chunk_0'), FILE.chunks[0] as Uint8Array);
      await fsp.writeFile(join(dir, SUMMARY_FILE_NAME), text);
      const store = makeStore(dir, { sync: false });
      const opened = await store.open();
      assert.equal([opened.have.indices(), opened.fromOwner.indices()], [[0], []], JSON.stringify(text));
      assert.equal(parseSummary(await fsp.readFile(join(dir, SUMMARY_FILE_NAME), 'utf8')), {
        held: [0],
        fromOwner: [],
      });
      await store.close();
    });
  }
});

test('parseSummary round-trips the format, bounds its input, and never throws', () => {
  const text = formatSummary({
    label: 'peer2',
    infoHashHex: INFO_HASH_HEX,
    chunks: 21,
    held: [0, 1, 2, 3, 4, 7, 9, 10],
    fromOwner: [0, 3],
  });
  assert.match(text, '\nheld 0-4,7,9-10\nfrom-owner 0,3\n');
  assert.equal(parseSummary(text), { held: [0, 1, 2, 3, 4, 7, 9, 10], fromOwner: [0, 3] });
  assert.equal(parseSummary(text.replaceAll('\n', '\r\n')), parseSummary(text));
  assert.equal(parseSummary('held none\nfrom-owner none\n'), { held: [], fromOwner: [] });
  const refused = [
    '',
    'hello world',
    'held 0-4\nheld 5\n',
    'held 4,2\n',
    'held 0-4,3\n',
    'held 5-2\n',
    'held 01\n',
    'held 1048576\n',
    'held 0-1048576\n',
    'held 99999999999999999999\n',
    'held -1\n',
    'held 0-4\nfrom-owner 5\n',
    'chunks 5\nheld 0-5\n',
    'info-hash xyz\nheld 0\n',
    'held 0\nsecret 1\n',
    'from-owner 0\n',
  ];
  for (const bad of refused) assert.is(parseSummary(bad), undefined, JSON.stringify(bad));
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (junk) => {
      const result = parseSummary(junk);
      return result === undefined || Array.isArray(result.held);
    }),
    { seed: 4242, numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 30 }), fc.nat(4), (noise, where) => {
      const lines = text.split('\n');
      lines[where] = `${lines[where]}${Buffer.from(noise).toString('latin1')}`;
      parseSummary(lines.join('\n'));
    }),
    { seed: 4243, numRuns: 200 },
  );
});

test('combine writes the exact file and its SHA-256, through a temp file', async () => {
  await withDir(async (dir) => {
    const store = makeStore(dir);
    await store.open();
    await rejects(store.combine(), storageCode('io'), 'incomplete');
    for (let index = 7; index >= 0; index--)
      await store.writeChunk(index, FILE.chunks[index] as Uint8Array, false);
    const combined = await store.combine();
    assert.is(combined.path, join(dir, 'movie.bin'));
    assert.equal(new Uint8Array(await fsp.readFile(combined.path)), FILE.bytes);
    assert.is(combined.sha256, createHash('sha256').update(FILE.bytes).digest('hex'));
    assert.ok(!(await listDir(dir)).some((name) => name.startsWith('.')), 'no temp file left');
    await store.close();
  });
});

test('the combined file grows as chunks arrive; a store closed before the end leaves none of it', async () => {
  await withDir(async (dir) => {
    const store = makeStore(dir, { sync: false });
    await store.open();
    for (const index of [5, 0, 2]) await store.writeChunk(index, FILE.chunks[index] as Uint8Array, false);
    const partial = (await listDir(dir)).filter((name) => name.startsWith('.movie.bin.tmp-'));
    assert.is(partial.length, 1, 'one partial combined file');
    const bytes = await fsp.readFile(join(dir, partial[0] as string));
    assert.equal(new Uint8Array(bytes.subarray(500, 600)), FILE.chunks[5], 'chunk 5 at its offset');
    await store.close();
    assert.equal(await listDir(dir), ['chunk_0', 'chunk_2', 'chunk_5', 'summary.txt']);
  });
});

test('combine copies in, re-hashed, the chunks held from an earlier run; a tampered one is refused', async () => {
  await withDir(async (dir) => {
    const first = makeStore(dir, { sync: false });
    await first.open();
    for (let index = 0; index < 8; index++)
      await first.writeChunk(index, FILE.chunks[index] as Uint8Array, false);
    await first.close();
    // A chunk file changed after this run verified it (the next open would discard it).
    const store = makeStore(dir, { sync: false });
    await store.open();
    const tampered = await fsp.readFile(join(dir, 'chunk_6'));
    tampered[0] = (tampered[0] as number) ^ 1;
    await fsp.writeFile(join(dir, 'chunk_6'), tampered);
    await rejects(store.combine(), storageCode('corrupt'), 'flipped byte');
    await fsp.truncate(join(dir, 'chunk_6'), 10);
    await rejects(store.combine(), storageCode('corrupt'), 'truncated chunk');
    let names = await listDir(dir);
    assert.ok(!names.includes('movie.bin'), 'no combined file');
    assert.ok(!names.some((name) => name.startsWith('.')), 'no temp file left');
    // Chunks that came through writeChunk go into the combined file from memory, as verified.
    await store.writeChunk(6, FILE.chunks[6] as Uint8Array, false);
    const combined = await store.combine();
    assert.equal(new Uint8Array(await fsp.readFile(combined.path)), FILE.bytes);
    assert.is(combined.sha256, createHash('sha256').update(FILE.bytes).digest('hex'));
    names = await listDir(dir);
    assert.ok(!names.some((name) => name.startsWith('.')), 'no temp file left');
    await store.close();
  });
});

test('hostile file names are refused as bad-path', async () => {
  const hostile = [
    '',
    '.',
    '..',
    '../escape',
    'a/b',
    '/etc/passwd',
    'a\\b',
    'nul\0byte',
    'line\nbreak',
    'C:x',
    'é'.repeat(128),
  ];
  for (const fileName of hostile) {
    assert.throws(
      () => makeStore('/nonexistent', { fileName }),
      (error: unknown) => error instanceof StorageError && error.code === 'bad-path',
      JSON.stringify(fileName),
    );
  }
  await withDir(async (dir) => {
    for (const fileName of ['summary.txt', 'chunk_3', '.chunk_3.tmp-0123456789abcdef']) {
      const store = makeStore(dir, { fileName, sync: false });
      await store.open();
      for (let index = 0; index < 8; index++)
        await store.writeChunk(index, FILE.chunks[index] as Uint8Array, false);
      await rejects(store.combine(), storageCode('bad-path'), `reserved ${fileName}`);
      await store.close();
    }
    assert.ok((await listDir(dir)).includes('chunk_3'), 'the chunk file is untouched');
  });
});

test('ENOSPC while writing maps to disk-full and leaves no file behind', async () => {
  await withDir(async (dir) => {
    let full = false;
    const open: StoreFs['open'] = async (path, flags, mode) => {
      const handle = await fsp.open(path, flags, mode);
      if (full && flags === 'wx') {
        handle.write = (async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }) as typeof handle.write;
      }
      return handle;
    };
    const store = makeStore(dir, { fs: { open } });
    await store.open();
    await store.writeChunk(0, FILE.chunks[0] as Uint8Array, true);
    full = true;
    await rejects(
      store.writeChunk(1, FILE.chunks[1] as Uint8Array, false),
      storageCode('disk-full'),
      'chunk write',
    );
    assert.equal(store.held().indices(), [0]);
    assert.equal(await listSettled(dir), ['chunk_0', 'summary.txt']);
    full = false;
    await store.writeChunk(1, FILE.chunks[1] as Uint8Array, false);
    assert.equal(store.held().indices(), [0, 1]);
    await store.close();
  });
});

test('concurrent writes serialize and coalesce summary rewrites', async () => {
  const big = makeFile(64 * 50, 3, 50);
  await withDir(async (dir) => {
    let summaryRenames = 0;
    let writing = 0;
    let overlapped = false;
    const rename: StoreFs['rename'] = async (from, to) => {
      if (String(to).endsWith(SUMMARY_FILE_NAME)) {
        summaryRenames++;
        if (++writing > 1) overlapped = true;
        await new Promise((resolve) => setTimeout(resolve, 1));
        await fsp.rename(from, to);
        writing--;
        return;
      }
      await fsp.rename(from, to);
    };
    const store = makeStore(dir, { fs: { rename }, sync: false }, big);
    await store.open();
    summaryRenames = 0;
    await Promise.all(big.chunks.map((chunk, index) => store.writeChunk(index, chunk, index % 2 === 0)));
    await store.flushSummary();
    assert.ok(!overlapped, 'summary writes never overlap');
    assert.ok(summaryRenames < 64, `coalesced: ${summaryRenames} summary writes for 64 chunks`);
    const summary = parseSummary(await fsp.readFile(join(dir, SUMMARY_FILE_NAME), 'utf8'));
    assert.equal(summary?.held.length, 64);
    assert.equal(summary?.fromOwner.length, 32);
    await store.close();
  });
});

test('reads through a tiny handle cache stay correct under concurrency, and close releases every handle', async () => {
  const big = makeFile(40 * 64, 5, 64);
  await withDir(async (dir) => {
    let opened = 0;
    let closed = 0;
    const open: StoreFs['open'] = async (path, flags, mode) => {
      const handle = await fsp.open(path, flags, mode);
      if (flags === 'r' && String(path).includes('chunk_')) {
        opened++;
        const close = handle.close.bind(handle);
        handle.close = async () => {
          closed++;
          await close();
        };
      }
      return handle;
    };
    const store = makeStore(
      dir,
      { readHandleCacheSize: 3, readCacheBytes: 0, sync: false, fs: { open } },
      big,
    );
    await store.open();
    for (let index = 0; index < 40; index++)
      await store.writeChunk(index, big.chunks[index] as Uint8Array, false);
    const reads: Promise<void>[] = [];
    for (let k = 0; k < 400; k++) {
      const index = (k * 7) % 40;
      const begin = k % 60;
      reads.push(
        store.readBlock(index, begin, 4).then((bytes) => {
          assert.equal(bytes, (big.chunks[index] as Uint8Array).subarray(begin, begin + 4));
        }),
      );
    }
    await Promise.all(reads);
    await store.close();
    assert.ok(opened > 0);
    assert.is(closed, opened, 'every opened handle was closed');
  });
});

test('owner side: hashFileChunks streams piece hashes and importFrom cuts the file into chunks', async () => {
  await withDir(async (dir) => {
    const source = join(dir, 'movie.bin');
    await fsp.writeFile(source, FILE.bytes);
    const streamed = await hashFileChunks(source, 100);
    const gathered = await hashFileChunks(source, 100, sha1);
    assert.is(streamed.totalLengthBytes, 737);
    assert.equal(streamed.pieceHashes, FILE.hashes);
    assert.equal(gathered.pieceHashes, FILE.hashes);
    const store = makeStore(join(dir, 'movie.bin.chunks'), { label: 'owner' });
    await store.importFrom(source);
    assert.ok(store.held().complete);
    assert.equal(await store.readBlock(7, 0, 37), FILE.chunks[7]);
    for (let index = 0; index < 8; index++) {
      assert.equal(
        new Uint8Array(await fsp.readFile(join(dir, 'movie.bin.chunks', chunkFileName(index)))),
        FILE.chunks[index],
      );
    }
    await store.close();
    // The source changed after it was hashed: the import refuses it.
    const changed = Buffer.from(FILE.bytes);
    changed[350] = (changed[350] as number) ^ 1;
    await fsp.writeFile(source, changed);
    const again = makeStore(join(dir, 'again'), { label: 'owner' });
    await rejects(again.importFrom(source), storageCode('corrupt'), 'changed source');
    await again.close();
  });
});

test('a crash at any file operation leaves nothing wrong on disk', async () => {
  // Every open-for-write, write, rename and unlink counts as a step; after `budget` steps the "process dies":
  // every later call fails. Then the disk must hold only correct chunk files and a summary naming
  // nothing that is missing.
  const steps = ['open', 'rename', 'unlink'] as const;
  for (let budget = 0; budget < 48; budget++) {
    await withDir(async (dir) => {
      let left = budget;
      const dead = () => Object.assign(new Error('killed'), { code: 'EKILLED' });
      const fs: Partial<StoreFs> = {};
      for (const step of steps) {
        const real = { open: fsp.open, rename: fsp.rename, unlink: fsp.unlink }[step] as (
          ...args: unknown[]
        ) => Promise<unknown>;
        (fs as Record<string, unknown>)[step] = async (...args: unknown[]) => {
          if (step === 'open' && args[1] === 'r') return real(...args);
          // One slow rename lets other writes and summary rewrites overtake it.
          if (step === 'rename' && String(args[1]).endsWith('chunk_7'))
            await new Promise((r) => setTimeout(r, 3));
          if (left-- <= 0) throw dead();
          const result = await real(...args);
          if (step === 'open') {
            // Writing is a step too: a crash may land between open and write.
            const handle = result as fsp.FileHandle;
            const write = handle.write.bind(handle) as (...a: unknown[]) => Promise<unknown>;
            handle.write = (async (...a: unknown[]) => {
              if (left-- <= 0) throw dead();
              return write(...a);
            }) as typeof handle.write;
          }
          return result;
        };
      }
      const store = makeStore(dir, { fs, sync: false });
      await store
        .open()
        .then(() =>
          Promise.all(
            [0, 4, 2, 7, 1].map((index) => store.writeChunk(index, FILE.chunks[index] as Uint8Array, true)),
          ),
        )
        .catch(() => undefined);
      await store.close();
      const names = await listDir(dir);
      for (const name of names) {
        const match = /^chunk_(\d+)$/.exec(name);
        if (match === null) continue;
        const index = Number(match[1]);
        assert.equal(
          new Uint8Array(await fsp.readFile(join(dir, name))),
          FILE.chunks[index],
          `budget ${budget}`,
        );
      }
      if (names.includes(SUMMARY_FILE_NAME)) {
        const summary = parseSummary(await fsp.readFile(join(dir, SUMMARY_FILE_NAME), 'utf8'));
        assert.ok(summary !== undefined, `budget ${budget}: the summary is whole`);
        for (const index of summary?.held ?? [])
          assert.ok(names.includes(chunkFileName(index)), `budget ${budget}`);
      }
      const reopened = makeStore(dir, { sync: false });
      const opened = await reopened.open();
      assert.equal(opened.discarded, []);
      assert.ok(!(await listDir(dir)).some((name) => name.startsWith('.')), 'temp files cleaned');
      await reopened.close();
    });
  }
});

test('property: chunks written in any order re-open to the same have and from-owner marks', async () => {
  const small = makeFile(12 * 16, 9, 16);
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.nat(11), { maxLength: 12 }),
      fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      fc.boolean(),
      async (order, owner, together) => {
        await withDir(async (dir) => {
          const store = makeStore(dir, { sync: false }, small);
          await store.open();
          const write = (index: number) =>
            store.writeChunk(index, small.chunks[index] as Uint8Array, owner[index] === true);
          if (together) await Promise.all(order.map(write));
          else for (const index of order) await write(index);
          const have = store.held().indices();
          const fromOwner = store.fromOwnerField().indices();
          assert.equal(
            have,
            [...order].sort((a, b) => a - b),
          );
          assert.equal(
            fromOwner,
            have.filter((index) => owner[index] === true),
          );
          await store.close();
          const reopened = makeStore(dir, { sync: false }, small);
          const opened = await reopened.open();
          assert.equal(
            [opened.have.indices(), opened.fromOwner.indices(), opened.discarded],
            [have, fromOwner, []],
          );
          await reopened.close();
        });
      },
    ),
    { seed: 20240601, numRuns: 25 },
  );
});

test.run();
