import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Bitfield } from '../src/engine/bitfield.ts';
import { encodeHandshake, encodeMessage } from '../src/engine/codec.ts';
import type { Effect, Engine } from '../src/engine/engine.ts';
import { activities, Harness, makeFile } from './support/pair.ts';

const FILE = makeFile(700_000); // 7 chunks, the last one short

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

test('a peer downloads the whole file from an owner and every chunk verifies', () => {
  const harness = new Harness(FILE);
  const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all' });
  const peer = harness.add('peer1', { role: 'peer', topology: 'star' });
  peer.engine.handlePeers(0, [{ address: owner.address, role: 'owner' }]);
  harness.run();
  assert.ok(peer.engine.isComplete);
  const file = concat([...Array(FILE.chunks.length).keys()].map((i) => peer.disk.get(i) as Uint8Array));
  assert.equal(Buffer.compare(file, FILE.bytes), 0);
  assert.equal(peer.engine.getStats().chunksFromOwner, FILE.chunks.length);
  assert.equal(peer.engine.getStats().bytesDown, FILE.bytes.length);
  const kinds = new Set([...activities(peer), ...activities(owner)]);
  for (const kind of [
    'chunk-received',
    'chunk-sent',
    'list-received',
    'list-sent',
    'request-sent',
    'request-received',
  ]) {
    assert.ok(kinds.has(kind), `missing activity ${kind}`);
  }
  assert.ok(peer.log.some((effect) => effect.kind === 'complete'));
});

test('bytes split at arbitrary points still give the same file', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 2 ** 31 }), (maxPiece, seed) => {
      let state = seed;
      const split = (bytes: Uint8Array): Uint8Array[] => {
        const out: Uint8Array[] = [];
        for (let at = 0; at < bytes.length; ) {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          const size = 1 + (state % maxPiece);
          out.push(bytes.subarray(at, at + size));
          at += size;
        }
        return out;
      };
      const harness = new Harness(FILE, split);
      const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all' });
      const peer = harness.add('peer1', { role: 'peer', topology: 'star' });
      peer.engine.handlePeers(0, [{ address: owner.address, role: 'owner' }]);
      harness.run();
      return peer.engine.isComplete;
    }),
    { seed: 11, numRuns: 15 },
  );
});

test('two peers in a two-phase ring each take a share from the owner, then trade the rest', () => {
  const harness = new Harness(FILE);
  const owner = harness.add('owner', { role: 'owner', ownerShareChunks: 4 });
  const a = harness.add('peerA', { role: 'peer', topology: 'ring' });
  const b = harness.add('peerB', { role: 'peer', topology: 'ring' });
  a.engine.handlePeers(0, [
    { address: owner.address, role: 'owner' },
    { address: b.address, role: 'download-neighbour' },
  ]);
  b.engine.handlePeers(0, [
    { address: owner.address, role: 'owner' },
    { address: a.address, role: 'download-neighbour' },
  ]);
  harness.run({ untilMs: 60_000, stop: () => a.engine.isComplete && b.engine.isComplete });
  assert.ok(a.engine.isComplete && b.engine.isComplete);
  for (const node of [a, b]) {
    const stats = node.engine.getStats();
    assert.ok(stats.chunksFromOwner >= 1, `${node.name} took nothing from the owner`);
    assert.ok(stats.chunksFromPeers >= 1, `${node.name} traded nothing`);
    assert.equal(stats.chunksFromOwner + stats.chunksFromPeers, FILE.chunks.length);
  }
});

test('a corrupt block is caught by the chunk hash, never stored, and the liar is dropped', () => {
  const harness = new Harness(FILE);
  const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all' });
  const liar = harness.add('liar', { role: 'owner', ownerAdvertising: 'all' });
  const peer = harness.add('peer1', { role: 'peer', topology: 'mesh', phases: 'overlapped' });
  harness.corrupt = (from, bytes) => {
    if (from !== 'liar' || bytes.length < 1000) return bytes;
    const copy = bytes.slice();
    copy[0] = (copy[0] as number) ^ 0xff;
    return copy;
  };
  peer.engine.handlePeers(0, [{ address: liar.address, role: 'neighbour' }]);
  harness.run();
  assert.ok(peer.engine.getStats().corruptChunks >= 1);
  assert.equal(peer.disk.size, 0, 'nothing unverified is stored');
  assert.ok(peer.log.some((effect) => effect.kind === 'close' && effect.reason.code === 'corrupt-data'));
  peer.engine.handlePeers(0, [{ address: owner.address, role: 'owner' }]);
  harness.run({ untilMs: 60_000, stop: () => peer.engine.isComplete });
  assert.ok(peer.engine.isComplete);
  for (const [index, bytes] of peer.disk)
    assert.equal(Buffer.compare(bytes, FILE.chunks[index] as Uint8Array), 0);
});

test('a liar that only fills in blocks of chunks the owner started is still found (smart ban)', () => {
  const harness = new Harness(makeFile(1_100_000));
  const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all' });
  const liar = harness.add('liar', { role: 'owner', ownerAdvertising: 'all' });
  const peer = harness.add('peer1', { role: 'peer', topology: 'mesh', phases: 'overlapped' });
  harness.corrupt = (from, bytes) => {
    if (from !== 'liar' || bytes.length < 1000) return bytes;
    const copy = bytes.slice();
    copy[0] = (copy[0] as number) ^ 0xff;
    return copy;
  };
  peer.engine.handlePeers(0, [
    { address: liar.address, role: 'neighbour' },
    { address: owner.address, role: 'owner' },
  ]);
  harness.run({ untilMs: 600_000, stop: () => peer.engine.isComplete });
  assert.ok(peer.engine.isComplete);
  const closes = peer.log.filter(
    (effect) => effect.kind === 'close' && effect.reason.code === 'corrupt-data',
  );
  assert.is(closes.length, 1, 'the liar, and only the liar, is dropped');
  assert.not.ok(
    peer.log.some(
      (effect) =>
        effect.kind === 'activity' && effect.event.kind === 'disconnected' && effect.event.peer === 'owner',
    ),
    'the honest owner is never blamed',
  );
});

test('a failed write is retried from the verified bytes, with a growing pause, and nothing is fetched twice', () => {
  const harness = new Harness(FILE);
  const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all' });
  const peer = harness.add('peer1', { role: 'peer', topology: 'star' });
  // The disk is full for the first 6 s: writes fail at 0 s, then (pausing 1 s, 2 s, 4 s) at 1 s and
  // 3 s, and succeed at 7 s.
  harness.failWrite = () => harness.nowMs < 6_000;
  peer.engine.handlePeers(0, [{ address: owner.address, role: 'owner' }]);
  harness.run({ untilMs: 600_000, stop: () => peer.engine.isComplete });
  assert.ok(peer.engine.isComplete);
  assert.is(peer.engine.getStats().bytesDown, FILE.bytes.length, 'no chunk downloaded twice');
  const errors = peer.log.filter(
    (effect) => effect.kind === 'activity' && effect.event.kind === 'storage-error',
  );
  assert.ok(errors.length >= 3, `every attempt while full is reported (${errors.length})`);
  assert.ok(harness.nowMs >= 7_000, `the pause doubles: 1 s, 2 s, 4 s (done at ${harness.nowMs} ms)`);
  assert.ok(harness.nowMs < 8_000, `and the write goes through at once after that (${harness.nowMs} ms)`);
});

function drive(engine: Engine, bytes: Uint8Array): Effect[] {
  engine.handleAccepted(0, 'in:1', 'remote:1');
  engine.handleData(0, 'in:1', bytes);
  return engine.pollEffects();
}

function ownerEngine(): Engine {
  const harness = new Harness(FILE);
  return harness.add('owner', { role: 'owner', ownerAdvertising: 'all' }).engine;
}

const remoteHandshake = (infoHash = FILE.options.infoHash) =>
  encodeHandshake({
    reserved: new Uint8Array(8),
    infoHash,
    peerId: new TextEncoder().encode('-XX0001-abcdefghijkl'),
  });

test('a handshake for another torrent closes that one connection with a typed reason', () => {
  const effects = drive(ownerEngine(), remoteHandshake(new Uint8Array(20).fill(9)));
  const close = effects.find((effect) => effect.kind === 'close');
  assert.ok(close !== undefined && close.kind === 'close');
  assert.equal(close.reason.code, 'protocol');
  assert.equal(close.reason.code === 'protocol' && close.reason.error.code, 'info-hash-mismatch');
});

test('an encrypted (MSE) opening is closed at once, at the first byte', () => {
  const effects = drive(ownerEngine(), new Uint8Array([0x8c]));
  const close = effects.find((effect) => effect.kind === 'close');
  assert.ok(close !== undefined && close.kind === 'close' && close.reason.code === 'protocol');
  assert.equal(close.reason.code === 'protocol' && close.reason.error.code, 'not-bittorrent');
});

test('requests for chunks we lack count against the sender until it is closed', () => {
  const harness = new Harness(FILE);
  const peer = harness.add('peer1', { role: 'peer', have: new Bitfield(FILE.chunks.length) }).engine;
  const frames = [remoteHandshake(), encodeMessage({ type: 'interested' })];
  for (let i = 0; i < 40; i++)
    frames.push(encodeMessage({ type: 'request', index: 0, begin: 0, length: 16384 }));
  const effects = drive(peer, concat(frames));
  const close = effects.find((effect) => effect.kind === 'close');
  assert.ok(close !== undefined && close.kind === 'close');
  assert.equal(close.reason.code, 'request-flood');
  assert.not.ok(effects.some((effect) => effect.kind === 'read-block'));
});

test('a 12800-byte request inside a chunk (as Transmission sends) is served exactly', () => {
  const engine = ownerEngine();
  const effects = drive(
    engine,
    concat([
      remoteHandshake(),
      encodeMessage({ type: 'interested' }),
      encodeMessage({ type: 'request', index: 1, begin: 12800, length: 12800 }),
    ]),
  );
  const read = effects.find((effect) => effect.kind === 'read-block');
  assert.ok(read !== undefined && read.kind === 'read-block');
  assert.equal([read.index, read.begin, read.length], [1, 12800, 12800]);
  engine.handleBlockRead(0, 'in:1', 1, 12800, (FILE.chunks[1] as Uint8Array).subarray(12800, 25600));
  const sent = engine.pollEffects().filter((effect) => effect.kind === 'send');
  const header = sent[0];
  assert.ok(header !== undefined && header.kind === 'send');
  assert.equal([...header.bytes.subarray(0, 5)], [0, 0, 0x32, 0x09, 7]);
});

test('time going backwards is our bug and throws', () => {
  const engine = ownerEngine();
  engine.handleTimeout(10);
  assert.throws(() => engine.handleTimeout(5), /never decreases/);
});

test.run();
