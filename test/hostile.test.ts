/**
 * The real runtime in a hostile world (issue 5): a lying seeder, SIGKILL at random points, a full
 * disk, floods of idle and half-open connections, random and mutated frames, garbage HTTP.
 * Every wait is on an event and bounded by a deadline; every random choice comes from a fixed seed.
 */
import { readFileSync } from 'node:fs';
import * as nodeFs from 'node:fs/promises';
import { basename } from 'node:path';
import * as fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256File } from '../src/app/processes.ts';
import { encodeHandshake, MAX_FRAME_BYTES } from '../src/engine/codec.ts';
import { toHex } from '../src/engine/hash.ts';
import { Random } from '../src/engine/random.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { StorageError } from '../src/transport/storage-error.ts';
import { ChunkStore, type StoreFs } from '../src/transport/store.ts';
import { startHostileSeeder } from './support/hostile-seeder.ts';
import {
  auditDir,
  InProcessNode,
  MemoryDisk,
  ownerMetainfo,
  type RawClient,
  rawClient,
  socketCount,
  Tally,
  within,
} from './support/inproc.ts';
import { Workspace } from './support/processes.ts';

/** The driver's MAX_PENDING_SOCKETS. */
const PENDING_LIMIT = 64;

test('a lying seeder on real sockets is caught, dropped and never redialled; the file is exact', async () => {
  let lies = 0;
  const swarm = await startHostileSeeder({
    fileName: 'lie.bin',
    sizeBytes: 2 * 1024 * 1024,
    fileSeed: 11,
    ownerArgs: ['--advertise', 'all'],
    seeder: { name: 'liar', seed: 101 },
    // Every block it serves has one byte flipped.
    seederStorage: (chunks) =>
      new MemoryDisk(chunks, (block) => {
        lies++;
        block[block.length >> 1] = (block[block.length >> 1] as number) ^ 0xff;
        return block;
      }),
    peer: { name: 'honest', seed: 102 },
  });
  try {
    const { peer, disk, geometry, original, seeder: liar, seederAddress: liarAddress } = swarm;
    // The liar first, alone, so that the first chunk is all its own: when the owner is connected too,
    // chunks mix blocks from both senders (see the next test).
    peer.driver.addPeers([{ address: liarAddress, role: 'neighbour' }]);
    await within(
      10_000,
      'the lie is detected',
      peer.waitFor((event) => event.kind === 'chunk-corrupt'),
    );
    peer.driver.addPeers([{ address: swarm.ownerAddress, role: 'owner' }]);
    await within(
      10_000,
      'connected to the owner',
      peer.waitFor((e) => e.kind === 'connected' && e.peer === 'owner'),
    );
    // A tracker listing the liar again must not bring it back.
    peer.driver.addPeers([{ address: liarAddress, role: 'neighbour' }]);
    await within(20_000, 'the download completes', peer.completed);

    assert.is(Buffer.compare(disk.file(geometry.pieceCount), original), 0, 'the exact file');
    assert.ok(lies > 0, 'the liar served corrupt blocks');
    const corrupt = peer.events.filter((event) => event.kind === 'chunk-corrupt');
    assert.ok(corrupt.length >= 1);
    const bad = corrupt[0]?.kind === 'chunk-corrupt' ? corrupt[0].chunk : -1;
    assert.ok(
      peer.events.some(
        (e) => e.kind === 'disconnected' && e.peer === 'liar' && e.reason === `corrupt data for chunk ${bad}`,
      ),
      'the liar was closed for corrupt data',
    );
    assert.ok(
      peer.events.some((e) => e.kind === 'chunk-received' && e.chunk === bad && e.from === 'owner'),
      `chunk ${bad} was fetched again from the owner`,
    );
    assert.is(
      peer.events.filter((e) => e.kind === 'connected' && e.peer === 'liar').length,
      1,
      'never redialled',
    );
    assert.is(liar.count('connected'), 1, 'the liar saw one connection only');
    assert.ok(
      !peer.events.some((e) => e.kind === 'chunk-received' && e.from === 'liar'),
      'nothing kept from the liar',
    );
  } finally {
    await swarm.close();
  }
});

test('a stalled seeder on real sockets: its requests time out and the blocks come from the owner', async () => {
  const stalled: (() => void)[] = [];
  const swarm = await startHostileSeeder({
    fileName: 'stall.bin',
    sizeBytes: 1024 * 1024,
    fileSeed: 12,
    ownerArgs: ['--advertise', 'all'],
    seeder: { name: 'staller', seed: 111 },
    // Holds every chunk, answers no read: the socket stays open and silent.
    seederStorage: () => ({
      readBlock: () =>
        new Promise<Uint8Array>((_resolve, reject) => stalled.push(() => reject(new Error('stopped')))),
      writeChunk: async () => undefined,
    }),
    peer: { name: 'patient', seed: 112, limits: { requestTimeoutMs: 1_000 } },
  });
  try {
    const { peer, disk, geometry, file, seederAddress: stallerAddress } = swarm;
    peer.driver.addPeers([{ address: stallerAddress, role: 'neighbour' }]);
    await within(
      10_000,
      'requests to the staller',
      peer.waitFor((event) => event.kind === 'request-sent'),
    );
    peer.driver.addPeers([{ address: swarm.ownerAddress, role: 'owner' }]);
    await within(30_000, 'the download completes despite the staller', peer.completed);
    assert.is(Buffer.compare(disk.file(geometry.pieceCount), readFileSync(file)), 0, 'the exact file');
    assert.ok(stalled.length > 0, 'the staller was asked and never answered');
    assert.not.ok(
      peer.events.some((event) => event.kind === 'chunk-received' && event.from === 'staller'),
      'nothing came from the staller',
    );
  } finally {
    for (const release of stalled) release();
    await swarm.close();
  }
});

test('a liar and an owner at once: the liar is named by a chunk of its own, dropped, never redialled', async () => {
  const swarm = await startHostileSeeder({
    fileName: 'both.bin',
    sizeBytes: 2 * 1024 * 1024,
    fileSeed: 12,
    // Shares of 3 chunks: the owner offers a few chunks at a time, the liar offers everything.
    ownerArgs: ['--peers', '7'],
    seeder: { name: 'liar', seed: 201 },
    seederStorage: (chunks) =>
      new MemoryDisk(chunks, (block) => {
        block[0] = (block[0] as number) ^ 0x01;
        return block;
      }),
    peer: { name: 'honest', seed: 202 },
  });
  try {
    const { peer, disk, geometry, original, seeder: liar, seederAddress: liarAddress } = swarm;
    peer.driver.addPeers([
      { address: swarm.ownerAddress, role: 'owner' },
      { address: liarAddress, role: 'neighbour' },
    ]);
    await within(20_000, 'the download completes', peer.completed);
    assert.is(Buffer.compare(disk.file(geometry.pieceCount), original), 0, 'the exact file');
    assert.ok(peer.count('chunk-corrupt') >= 1);
    assert.ok(
      peer.events.some(
        (e) => e.kind === 'disconnected' && e.peer === 'liar' && e.reason.startsWith('corrupt data'),
      ),
      'the liar was closed for corrupt data',
    );
    assert.ok(
      !peer.events.some((e) => e.kind === 'disconnected' && e.peer === 'owner'),
      'the honest owner was never dropped',
    );
    assert.is(liar.count('connected'), 1, 'the liar was never redialled');
  } finally {
    await swarm.close();
  }
});

test('SIGKILL at 22 seeded-random points: nothing unverified is ever held, and the peer finishes', async () => {
  const space = new Workspace();
  try {
    const file = space.file('kill.bin', 16 * 1024 * 1024, 23);
    const { port } = await space.owner(file, ['--advertise', 'all']);
    const metainfo = await ownerMetainfo(port);
    const dir = space.path('Peer7Dir');
    const random = new Random(0x6b111);
    let kept = 0;
    for (let round = 0; round < 22; round++) {
      // A fifth of the rounds die right after listening, a fifth after 5 to 14 new chunks, the rest
      // after 1 to 3 (the kill lands while later chunks are in flight or being written).
      const draw = random.nextInt(5);
      const after = draw === 0 ? 0 : draw === 1 ? 5 + random.nextInt(10) : 1 + random.nextInt(3);
      let received = 0;
      const peer = space.peer(port, '7', ['--topology', 'star']);
      const listening = await within(
        15_000,
        'the peer listens',
        peer.waitFor((line) => line.event === 'listening'),
      );
      // What the last kill left on disk is exactly what this run starts with.
      assert.is(Number(listening.have), kept, `round ${round}: resumed with every verified chunk`);
      if (after > 0) {
        await within(
          15_000,
          `round ${round}: ${after} chunks arrive`,
          peer.waitFor(
            (line) => line.event === 'activity' && line.kind === 'chunk-received' && ++received >= after,
          ),
        );
      }
      peer.child.kill('SIGKILL');
      await peer.exited;
      const audit = auditDir(dir, metainfo);
      assert.equal(audit.bad, [], `round ${round}: no chunk file fails its hash`);
      if (audit.summaryExists) {
        assert.ok(audit.summaryHeld !== undefined, `round ${round}: the summary parses`);
        const onDisk = new Set(audit.verified);
        const ghost = (audit.summaryHeld ?? []).filter((index) => !onDisk.has(index));
        assert.equal(ghost, [], `round ${round}: the summary holds only verified chunk files`);
      }
      kept = audit.verified.length;
      assert.ok(audit.verified.length < metainfo.geometry.pieceCount, `round ${round}: killed mid-download`);
    }
    const last = space.peer(port, '7', ['--topology', 'star']);
    const done = await within(
      30_000,
      'the last run completes',
      last.waitFor((line) => line.event === 'complete'),
    );
    assert.is(done.fileSha256, await sha256File(file));
    const audit = auditDir(dir, metainfo);
    assert.is(audit.verified.length, metainfo.geometry.pieceCount);
    assert.equal(audit.summaryHeld, audit.verified);
  } finally {
    await space.close();
  }
});

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    errno: -28,
    syscall: 'write',
  });
}

test('a full disk: one clear error per failed write, no partial chunk file, then the exact file', async () => {
  const space = new Workspace();
  let store: ChunkStore | undefined;
  let node: InProcessNode | undefined;
  try {
    const file = space.file('full.bin', 2 * 1024 * 1024, 29);
    const { port } = await space.owner(file, ['--advertise', 'all']);
    const metainfo = await ownerMetainfo(port);
    const dir = space.path('FullDir');
    const KEEP = 5;
    const FAILURES = 6;
    let placed = 0;
    let freed = false;
    const failed: number[] = [];
    const failures = new Tally();
    const full = (): boolean => placed >= KEEP && !freed;
    // The seam: after KEEP chunk files are in place, every chunk write stops half-way with ENOSPC,
    // leaving half a temp file behind for the store to clean up, until the test frees the disk. (The
    // small summary still fits, as on a nearly full disk.)
    const open = (async (path: string, flags?: string, mode?: number) => {
      const handle = await nodeFs.open(path, flags, mode);
      const name = basename(String(path));
      if (flags !== 'wx' || !name.startsWith('.chunk_') || !full()) return handle;
      const index = Number(/^\.chunk_(\d+)\./.exec(name)?.[1]);
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'write') {
            return async (buffer: Uint8Array, offset: number, length: number, position: number) => {
              await target.write(buffer, offset, Math.floor(length / 2), position);
              failed.push(index);
              failures.add();
              throw enospc();
            };
          }
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    }) as StoreFs['open'];
    const rename: StoreFs['rename'] = async (from, to) => {
      await nodeFs.rename(from, to);
      if (/^chunk_\d+$/.test(basename(String(to)))) placed++;
    };
    store = new ChunkStore({
      dir,
      geometry: metainfo.geometry,
      pieceHashes: metainfo.pieceHashes,
      sha1,
      fileName: metainfo.name,
      infoHashHex: toHex(metainfo.infoHash),
      label: 'full',
      sync: false,
      fs: { open, rename },
    });
    const opened = await store.open();
    node = new InProcessNode({
      metainfo,
      name: 'full',
      seed: 31,
      storage: store,
      have: opened.have,
      topology: 'star',
      // The engine writes a failed chunk again after a doubling pause; short pauses keep this quick.
      limits: { storageRetryMs: 100, storageRetryMaxMs: 800 },
    });
    await node.driver.listen();
    node.driver.addPeers([{ address: `127.0.0.1:${port}`, role: 'owner' }]);
    await within(20_000, `${FAILURES} writes fail`, failures.reach(FAILURES));
    // While the disk is full: nothing partial or wrong under a chunk name, nothing unverified held.
    const during = auditDir(dir, metainfo);
    assert.equal(during.bad, [], 'no partial or corrupt chunk file');
    assert.ok(during.verified.length >= KEEP, 'every chunk written before the disk filled is kept');
    const onDisk = new Set(during.verified);
    assert.ok(
      during.summaryHeld?.every((index) => onDisk.has(index)),
      'the summary holds only chunk files',
    );
    freed = true;
    await within(20_000, 'the download completes once the disk is freed', node.completed);
    const combined = await store.combine();
    assert.is(combined.sha256, await sha256File(file), 'the exact file');

    // One clear storage error per failed write: from the store, through the driver, into the engine.
    const errors = node.storageErrors;
    const sorted = (list: number[]): number[] => [...list].sort((a, b) => a - b);
    assert.equal(
      sorted(errors.map((error) => error.index)),
      sorted(failed),
      'one storage error per failed write (concurrent writes may fail in any order)',
    );
    for (const { index, error } of errors) {
      assert.instance(error, StorageError);
      assert.is((error as StorageError).code, 'disk-full');
      assert.match(error.message, new RegExp(`^cannot store chunk ${index}: disk full \\(ENOSPC`));
    }
    assert.is(node.count('storage-error'), failed.length);
    const after = auditDir(dir, metainfo);
    assert.equal(after.bad, []);
    assert.equal(after.temps, [], 'no temp file left behind');
    assert.is(after.verified.length, metainfo.geometry.pieceCount);
  } finally {
    await node?.driver.stop();
    await store?.close();
    await space.close();
  }
});

test('a flood of idle and half-open sockets is bounded, times out, and a real peer still gets in', async () => {
  const space = new Workspace();
  const flood: RawClient[] = [];
  try {
    const file = space.file('flood.bin', 2 * 1024 * 1024, 13);
    const { process: owner, port } = await space.owner(file, ['--advertise', 'all']);
    const metainfo = await ownerMetainfo(port);
    const baseline = socketCount(owner.child.pid);
    const random = new Random(404);
    const handshake = encodeHandshake({
      reserved: new Uint8Array(8),
      infoHash: metainfo.infoHash,
      peerId: random.bytes(20),
    });
    const kinds: string[] = [
      ...new Array<string>(300).fill('silent'),
      ...new Array<string>(40).fill('half-handshake'),
      ...new Array<string>(20).fill('half-http'),
    ];
    random.shuffle(kinds);
    const closed = new Tally();
    const floodStarted = performance.now();
    for (const kind of kinds) {
      const client = rawClient(port);
      flood.push(client);
      void client.closed.then(() => closed.add());
      if (kind === 'half-handshake') client.socket.write(handshake.subarray(0, 1 + random.nextInt(66)));
      if (kind === 'half-http') client.socket.write('GET /announce?info_hash=%aa');
    }
    // The owner keeps at most 64 sockets that have not proven themselves and destroys the oldest.
    await within(
      10_000,
      'the owner trims the flood to its limit',
      closed.reach(kinds.length - PENDING_LIMIT),
    );
    const held = socketCount(owner.child.pid);
    if (baseline !== undefined && held !== undefined) {
      assert.ok(held <= baseline + PENDING_LIMIT, `owner holds ${held} sockets (baseline ${baseline})`);
    }
    // At the limit a newcomer that speaks at once displaces the oldest silent socket and is answered.
    const before = closed.value;
    const newcomer = rawClient(port);
    newcomer.socket.write(handshake);
    await within(5_000, 'a handshake answers the newcomer', newcomer.receivedAtLeast(68));
    await within(5_000, 'an old flood socket made room', closed.reach(before + 1));
    newcomer.socket.destroy();

    // A real peer process downloads while the rest of the flood still holds the pending slots.
    const peer = space.peer(port, '1', ['--topology', 'star']);
    const done = await within(
      30_000,
      'the real peer completes',
      peer.waitFor((line) => line.event === 'complete'),
    );
    assert.is(done.fileSha256, await sha256File(file));
    // Whatever is left of the flood is closed by the owner's timeouts (10 s for silent sockets, the
    // engine's handshake timeout, the tracker's idle timeout), not by us.
    const left = 20_000 - (performance.now() - floodStarted);
    await within(Math.max(0, left), 'every flood socket timed out', closed.reach(kinds.length));
    const after = socketCount(owner.child.pid);
    if (baseline !== undefined && after !== undefined) {
      // The real peer's connection and perhaps a tracker request still open: nothing of the flood.
      assert.ok(after <= baseline + 2, `owner holds ${after} sockets after the flood (baseline ${baseline})`);
    }
  } finally {
    for (const client of flood) client.socket.destroy();
    await space.close();
  }
});

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

function frame(id: number, payload: Uint8Array): Buffer {
  return Buffer.concat([u32(1 + payload.length), Buffer.of(id), payload]);
}

/** A frame with a known id and a payload of about the right shape, fields drawn at random. */
function plausibleFrame(pieceCount: number): fc.Arbitrary<Buffer> {
  return fc
    .record({
      id: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 20),
      index: fc.nat(pieceCount + 2),
      begin: fc.oneof(
        fc.nat(6).map((block) => block * 16_384),
        fc.nat(200_000),
      ),
      length: fc.oneof(fc.constant(16_384), fc.nat(40_000)),
      extra: fc.uint8Array({ maxLength: 96 }),
    })
    .map(({ id, index, begin, length, extra }) => {
      const triple = Buffer.concat([u32(index), u32(begin), u32(length)]);
      switch (id) {
        case 4:
        case 13:
        case 17:
          return frame(id, u32(index));
        case 5: {
          const bits = Buffer.alloc(Math.ceil(pieceCount / 8));
          bits.set(extra.subarray(0, bits.length));
          return frame(id, bits);
        }
        case 6:
        case 8:
        case 16:
          return frame(id, triple);
        case 7:
          return frame(id, Buffer.concat([u32(index), u32(begin), extra]));
        case 9:
          return frame(id, extra.subarray(0, 2));
        case 20:
          return frame(id, extra);
        default:
          return frame(id, new Uint8Array(0));
      }
    });
}

/** Leaves a frame alone, cuts it short, flips a byte, or gives it an absurd length prefix. */
const mutate = fc.oneof(
  fc.constant((bytes: Buffer) => bytes),
  fc.nat().map((at) => (bytes: Buffer) => bytes.subarray(0, at % (bytes.length + 1))),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, mask]) => (bytes: Buffer) => {
    const copy = Buffer.from(bytes);
    copy[at % copy.length] = (copy[at % copy.length] as number) ^ mask;
    return copy;
  }),
  fc
    .integer({ min: MAX_FRAME_BYTES + 1, max: 0xffff_ffff })
    .map((length) => (bytes: Buffer) => Buffer.concat([u32(length), bytes.subarray(4)])),
);

test('random and mutated frames on 300 connections: the owner closes each, never crashes or stalls', async () => {
  const space = new Workspace();
  try {
    const file = space.file('fuzz.bin', 2 * 1024 * 1024, 17);
    const { process: owner, port } = await space.owner(file, ['--advertise', 'all']);
    const metainfo = await ownerMetainfo(port);
    const pieceCount = metainfo.geometry.pieceCount;
    const during = space.peer(port, '1', ['--topology', 'star']);
    const handshake = (reserved: Uint8Array, peerId: Uint8Array): Buffer =>
      Buffer.from(encodeHandshake({ reserved, infoHash: metainfo.infoHash, peerId }));
    const anyHandshake = fc
      .tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ minLength: 20, maxLength: 20 }))
      .map(([reserved, peerId]) => handshake(reserved, peerId));
    const frames = fc.array(fc.tuple(plausibleFrame(pieceCount), mutate), { maxLength: 8 });

    // Streams that may even be valid: we send them and then close our side; the owner must let go.
    const anything = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      fc.tuple(anyHandshake, mutate).map(([bytes, change]) => change(bytes)),
      fc
        .tuple(anyHandshake, frames)
        .map(([start, list]) => Buffer.concat([start, ...list.map(([bytes, change]) => change(bytes))])),
    );
    await fc.assert(
      fc.asyncProperty(anything, async (bytes) => {
        const client = rawClient(port);
        client.socket.end(bytes);
        await within(3_000, 'the owner closes the connection', client.closed);
      }),
      { seed: 0x5eed_0005, numRuns: 200, endOnFailure: true },
    );

    // Streams that break the protocol: the owner must close them by itself, while we keep ours open.
    const broken = fc.oneof(
      // the wrong torrent
      fc
        .uint8Array({ minLength: 20, maxLength: 20 })
        .filter((hash) => Buffer.compare(hash, metainfo.infoHash) !== 0)
        .map((infoHash) =>
          Buffer.from(encodeHandshake({ reserved: new Uint8Array(8), infoHash, peerId: infoHash })),
        ),
      // 19 and then not "BitTorrent protocol"
      fc
        .uint8Array({ minLength: 67, maxLength: 67 })
        .map((rest) => Buffer.concat([Buffer.of(19, 0), rest.subarray(1)])),
      // a frame larger than any message may be
      fc
        .tuple(anyHandshake, fc.integer({ min: MAX_FRAME_BYTES + 1, max: 0xffff_ffff }))
        .map(([start, length]) => Buffer.concat([start, u32(length), Buffer.of(7)])),
      // a message id nobody defined
      fc
        .tuple(anyHandshake, fc.integer({ min: 21, max: 255 }), fc.uint8Array({ maxLength: 16 }))
        .map(([start, id, payload]) => Buffer.concat([start, frame(id, payload)])),
      // a chunk ID list of the wrong length, or a have for a chunk that does not exist
      fc
        .tuple(
          anyHandshake,
          fc.integer({ min: 0, max: 64 }).filter((n) => n !== Math.ceil(pieceCount / 8)),
        )
        .map(([start, length]) => Buffer.concat([start, frame(5, new Uint8Array(length))])),
      fc
        .tuple(anyHandshake, fc.integer({ min: pieceCount, max: 0xffff_ffff }))
        .map(([start, index]) => Buffer.concat([start, frame(4, u32(index))])),
      // HTTP that is not HTTP (the first byte is no method letter)
      fc
        .tuple(
          fc.integer({ min: 0, max: 64 }).filter((byte) => byte !== 19),
          fc.uint8Array({ maxLength: 64 }),
        )
        .map(([first, rest]) => Buffer.concat([Buffer.of(first), rest, Buffer.from('\r\n\r\n')])),
    );
    await fc.assert(
      fc.asyncProperty(broken, async (bytes) => {
        const client = rawClient(port);
        client.socket.write(bytes);
        await within(3_000, 'the owner closes a broken connection', client.closed);
      }),
      { seed: 0x5eed_0006, numRuns: 100, endOnFailure: true },
    );

    assert.is(owner.child.exitCode, null, 'the owner is still running');
    assert.is(owner.child.signalCode, null);
    assert.equal(owner.stderr, [], 'the owner printed no error');
    const expected = await sha256File(file);
    const first = await within(
      30_000,
      'the peer downloading during the fuzz completes',
      during.waitFor((line) => line.event === 'complete'),
    );
    assert.is(first.fileSha256, expected);
    const after = space.peer(port, '2', ['--topology', 'star']);
    const second = await within(
      30_000,
      'a peer started after the fuzz completes',
      after.waitFor((line) => line.event === 'complete'),
    );
    assert.is(second.fileSha256, expected);
  } finally {
    await space.close();
  }
});

test('garbage HTTP and huge URLs on the tracker port: answered or closed, the owner stays up', async () => {
  const space = new Workspace();
  try {
    const file = space.file('http.bin', 1024 * 1024, 19);
    const { process: owner, port } = await space.owner(file, ['--advertise', 'all']);
    const requests: (string | Buffer)[] = [
      `GET /${'a'.repeat(200_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /announce?info_hash=${'%41'.repeat(50_000)}&port=1 HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /announce?${'x=1&'.repeat(3_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'GET /announce?info_hash=%zz&peer_id=&port=-1&left=NaN&compact=7 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /announce?info_hash=%00%00&port=99999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /torrent HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(100_000)}\r\n\r\n`,
      'GARBAGE GARBAGE GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\nabc',
      'GET /announce HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n',
      Buffer.concat([
        Buffer.from('GET /\u0000\u0001\u00ff'),
        new Random(6).bytes(4096),
        Buffer.from('\r\n\r\n'),
      ]),
      `${'GET /torrent HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200)}`,
      'G',
    ];
    for (const request of requests) {
      const client = rawClient(port);
      client.socket.end(request);
      await within(5_000, `the owner answers or closes ${String(request).slice(0, 40)}`, client.closed);
    }
    assert.is(owner.child.exitCode, null, 'the owner is still running');
    assert.equal(owner.stderr, [], 'the owner printed no error');
    const metainfo = await ownerMetainfo(port);
    assert.is(metainfo.geometry.totalLengthBytes, 1024 * 1024, 'the tracker still serves the torrent');
    const peer = space.peer(port, '1', ['--topology', 'star']);
    const done = await within(
      30_000,
      'a peer completes',
      peer.waitFor((line) => line.event === 'complete'),
    );
    assert.is(done.fileSha256, await sha256File(file));
  } finally {
    await space.close();
  }
});

test.run();
