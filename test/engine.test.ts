import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACTIVITY_KINDS } from '../src/engine/activity.ts';
import { Bitfield } from '../src/engine/bitfield.ts';
import { concatBytes } from '../src/engine/bytes.ts';
import { encodeHandshake, encodeMessage, WireDecoder } from '../src/engine/codec.ts';
import type { Effect, Engine, EngineLimits, PhaseMode, Topology } from '../src/engine/engine.ts';
import type { Message } from '../src/engine/messages.ts';
import { activities, Harness, makeFile } from './support/pair.ts';

const FILE = makeFile(700_000); // 7 chunks, the last one short

test('a peer downloads the whole file from an owner and every chunk verifies', () => {
  const harness = new Harness(FILE);
  const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all' });
  const peer = harness.add('peer1', { role: 'peer', topology: 'star' });
  peer.engine.handlePeers(0, [{ address: owner.address, role: 'owner' }]);
  harness.run();
  assert.ok(peer.engine.isComplete);
  const file = concatBytes([...Array(FILE.chunks.length).keys()].map((i) => peer.disk.get(i) as Uint8Array));
  assert.equal(Buffer.compare(file, FILE.bytes), 0);
  assert.equal(peer.engine.getStats().chunksFromOwner, FILE.chunks.length);
  assert.equal(peer.engine.getStats().bytesDown, FILE.bytes.length);
  const kinds = new Set([...activities(peer), ...activities(owner)]);
  for (const kind of ACTIVITY_KINDS) {
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

const remoteHandshake = (infoHash = FILE.options.infoHash, name = 'abcdefghijkl') =>
  encodeHandshake({
    reserved: new Uint8Array(8),
    infoHash,
    peerId: new TextEncoder().encode(`-XX0001-${name.padEnd(12, '.')}`),
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
  const effects = drive(peer, concatBytes(frames));
  const close = effects.find((effect) => effect.kind === 'close');
  assert.ok(close !== undefined && close.kind === 'close');
  assert.equal(close.reason.code, 'request-flood');
  assert.not.ok(effects.some((effect) => effect.kind === 'read-block'));
});

test('a 12800-byte request inside a chunk (as Transmission sends) is served exactly', () => {
  const engine = ownerEngine();
  const effects = drive(
    engine,
    concatBytes([
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

test('with BEP 6, a request for a chunk we lack and a cancelled queued request are answered with REJECT', () => {
  const have = Bitfield.full(FILE.chunks.length);
  have.clear(5);
  const peer = new Harness(FILE).add('peer1', { role: 'peer', have, limits: { maxReadsInFlight: 1 } }).engine;
  const fast = new Uint8Array(8);
  fast[7] = 0x04;
  const handshake = encodeHandshake({
    reserved: fast,
    infoHash: FILE.options.infoHash,
    peerId: new TextEncoder().encode('-XX0001-abcdefghijkl'),
  });
  const effects = drive(
    peer,
    concatBytes([
      handshake,
      encodeMessage({ type: 'have-none' }),
      encodeMessage({ type: 'interested' }),
      encodeMessage({ type: 'request', index: 0, begin: 0, length: 16384 }),
      encodeMessage({ type: 'request', index: 0, begin: 16384, length: 16384 }),
      encodeMessage({ type: 'cancel', index: 0, begin: 16384, length: 16384 }),
      encodeMessage({ type: 'request', index: 5, begin: 0, length: 16384 }),
    ]),
  );
  const decoder = new WireDecoder(FILE.options.geometry, { expectHandshake: true });
  const sent: Message[] = [];
  for (const effect of effects) {
    if (effect.kind !== 'send') continue;
    for (const event of decoder.push(effect.bytes).events) if ('type' in event) sent.push(event as Message);
  }
  const answers = sent.filter(
    (message) => message.type === 'reject' || message.type === 'cancel' || message.type === 'request',
  );
  assert.equal(answers, [
    { type: 'reject', index: 0, begin: 16384, length: 16384 },
    { type: 'reject', index: 5, begin: 0, length: 16384 },
  ]);
});

test('a super-seeding owner starts a chunk it has never sent before one it has already sent', () => {
  // One block read at a time, so the owner must choose between two waiting requests.
  const owner = new Harness(FILE).add('owner', {
    role: 'owner',
    ownerAdvertising: 'shares',
    limits: { maxReadsInFlight: 1 },
  }).engine;
  const ask = (remote: string, index: number): Effect[] => {
    owner.handleAccepted(0, remote, `${remote}:1`);
    owner.handleData(
      0,
      remote,
      concatBytes([
        remoteHandshake(FILE.options.infoHash, remote),
        encodeMessage({ type: 'interested' }),
        encodeMessage({ type: 'request', index, begin: 0, length: 16384 }),
      ]),
    );
    return owner.pollEffects().filter((effect) => effect.kind === 'read-block');
  };
  assert.equal(ask('a', 0).length, 1, 'the first request is read at once');
  assert.equal(ask('b', 0), [], 'b, older, waits for chunk 0: a copy of one already on its way');
  assert.equal(ask('c', 3), [], 'c waits for chunk 3, never sent');
  owner.handleBlockRead(0, 'a', 0, 0, (FILE.chunks[0] as Uint8Array).subarray(0, 16384));
  const next = owner.pollEffects().filter((effect) => effect.kind === 'read-block');
  assert.equal(
    next.map((read) => read.kind === 'read-block' && [read.connection, read.index]),
    [['c', 3]],
    'the never-sent chunk goes first',
  );
});

test('time going backwards is our bug and throws', () => {
  const engine = ownerEngine();
  engine.handleTimeout(10);
  assert.throws(() => engine.handleTimeout(5), /never decreases/);
});

/** A peer engine wired to scripted remotes: what it sends is decoded per remote. */
class Scripted {
  readonly engine: Engine;
  private readonly connections = new Map<string, string>(); // address -> connection
  private readonly decoders = new Map<string, WireDecoder>();
  readonly sent = new Map<string, Message[]>(); // address -> messages
  nowMs = 0;

  constructor(
    have: Bitfield,
    peers: { address: string; role: 'owner' | 'neighbour' | 'download-neighbour' }[],
    options: {
      endgame?: boolean;
      limits?: Partial<EngineLimits>;
      topology?: Topology;
      phases?: PhaseMode;
    } = {},
  ) {
    this.engine = new Harness(FILE).add('peer1', {
      topology: 'mesh',
      phases: 'overlapped',
      ...options,
      role: 'peer',
      picker: 'rarest-first',
      have,
    }).engine;
    this.engine.handlePeers(0, peers);
    this.collect();
  }

  /** The remote at `address` accepts, shakes hands and sends `messages`. */
  open(address: string, messages: Message[]): void {
    const connection = this.connections.get(address) as string;
    this.engine.handleConnected(this.nowMs, connection);
    const peerId = new TextEncoder().encode(`-XX0001-${address.padEnd(12, '.').slice(0, 12)}`);
    const handshake = encodeHandshake({
      reserved: new Uint8Array(8),
      infoHash: FILE.options.infoHash,
      peerId,
    });
    this.engine.handleData(this.nowMs, connection, concatBytes([handshake, ...messages.map(encodeMessage)]));
    this.collect();
  }

  tick(nowMs: number): void {
    this.nowMs = nowMs;
    this.engine.handleTimeout(nowMs);
    this.collect();
  }

  requested(address: string, type: 'request' | 'cancel' = 'request'): number[] {
    return (this.sent.get(address) ?? []).flatMap((m) => (m.type === type ? [m.index] : []));
  }

  private collect(): void {
    const byConnection = new Map([...this.connections].map(([address, id]) => [id, address]));
    for (const effect of this.engine.pollEffects()) {
      if (effect.kind === 'connect') {
        this.connections.set(effect.address, effect.connection);
        byConnection.set(effect.connection, effect.address);
        this.decoders.set(effect.address, new WireDecoder(FILE.options.geometry, { expectHandshake: true }));
        continue;
      }
      if (effect.kind !== 'send') continue;
      const address = byConnection.get(effect.connection) as string;
      const result = (this.decoders.get(address) as WireDecoder).push(effect.bytes);
      assert.ok(result.ok, 'the engine sends well-formed frames');
      const list = this.sent.get(address) ?? [];
      for (const event of result.events) if (event.type !== 'handshake') list.push(event);
      this.sent.set(address, list);
    }
  }
}

const allBits = (): Uint8Array => Bitfield.full(FILE.chunks.length).bits;

/**
 * A peer one chunk (6) short, its owner share, talking to the owner and one neighbour that has
 * everything; without endgame, which would ask the neighbour for the last few blocks at once anyway.
 */
function oneChunkShort(ownerSends: Message[]): Scripted {
  const have = Bitfield.full(FILE.chunks.length);
  have.clear(6);
  const peer = new Scripted(
    have,
    [
      { address: 'owner:1', role: 'owner' },
      { address: 'n1:1', role: 'neighbour' },
    ],
    { endgame: false },
  );
  const share = new Bitfield(FILE.chunks.length);
  share.set(6);
  peer.open('owner:1', [{ type: 'bitfield', bits: share.bits }, { type: 'unchoke' }, ...ownerSends]);
  assert.ok(peer.requested('owner:1').includes(6), 'the owner share is asked of the owner');
  peer.open('n1:1', [{ type: 'bitfield', bits: allBits() }, { type: 'unchoke' }]);
  return peer;
}

test('overlapped: a neighbour takes over the chunk the owner was asked for but has not started', () => {
  // The owner is busy with hundreds of others; a neighbour with nothing else for us shows up.
  const peer = oneChunkShort([]);
  assert.equal(peer.requested('owner:1', 'cancel'), [], 'the owner gets a moment first');
  assert.not.ok(peer.requested('n1:1').includes(6));
  peer.tick(250);
  assert.equal(peer.requested('owner:1', 'cancel'), [], 'still its turn at 250 ms');
  // One chunk short of done, an owner silent for half a second is no longer waited on.
  peer.tick(600);
  const cancelled = peer.requested('owner:1', 'cancel');
  assert.ok(
    cancelled.length > 0 && cancelled.every((index) => index === 6),
    'the owner is told to forget it',
  );
  assert.ok(peer.requested('n1:1').includes(6), 'and the neighbour is asked instead');
});

test('overlapped: while the owner is sending its share, a neighbour leaves that chunk alone', () => {
  const chunk = FILE.chunks[6] as Uint8Array;
  const peer = oneChunkShort([{ type: 'piece', index: 6, begin: 0, block: chunk.subarray(0, 16_384) }]);
  peer.tick(1_250);
  assert.equal(peer.requested('owner:1', 'cancel'), []);
  assert.not.ok(peer.requested('n1:1').includes(6));
});

test('overlapped: the owner is not asked for the rest of a chunk a neighbour is sending', () => {
  for (const neighbourChokes of [false, true]) {
    // Two blocks in flight per sender, so a chunk (7 blocks) is never asked of one sender at once.
    const peer = new Scripted(
      new Bitfield(FILE.chunks.length),
      [
        { address: 'n1:1', role: 'neighbour' },
        { address: 'owner:1', role: 'owner' },
      ],
      { limits: { minOutstandingRequestsPerPeer: 2 } },
    );
    peer.open('n1:1', [
      { type: 'bitfield', bits: allBits() },
      { type: 'unchoke' },
      ...(neighbourChokes ? [{ type: 'choke' } as const] : []),
    ]);
    const [started] = peer.requested('n1:1');
    assert.ok(started !== undefined);
    // The owner offers everything, as a plain seed does.
    peer.open('owner:1', [{ type: 'bitfield', bits: allBits() }, { type: 'unchoke' }]);
    const fromOwner = peer.requested('owner:1');
    assert.ok(fromOwner.length > 0, 'the owner is asked for something');
    if (neighbourChokes) assert.ok(fromOwner.includes(started), 'a chunk the neighbour can no longer send');
    else assert.not.ok(fromOwner.includes(started), 'but not for the chunk the neighbour is sending');
  }
});

test('a peer without chunks takes its first from one neighbour, and asks others after a second', () => {
  const peer = new Scripted(new Bitfield(FILE.chunks.length), [
    { address: 'n1:1', role: 'neighbour' },
    { address: 'n2:1', role: 'neighbour' },
  ]);
  peer.open('n1:1', [{ type: 'bitfield', bits: allBits() }, { type: 'unchoke' }]);
  peer.open('n2:1', [{ type: 'bitfield', bits: allBits() }, { type: 'unchoke' }]);
  assert.ok(peer.requested('n1:1').length > 0);
  assert.equal(peer.requested('n2:1'), [], 'one first chunk at a time, at full speed');
  peer.tick(500);
  assert.equal(peer.requested('n2:1'), [], 'still patient at 0.5 s');
  peer.tick(1_250);
  assert.ok(peer.requested('n2:1').length > 0, 'a silent sender is not waited on for ever');
});

test('ring: once the download neighbour has nothing new, a chunk on another connection is asked for at once', () => {
  const have = Bitfield.full(FILE.chunks.length);
  have.clear(5);
  have.clear(6);
  /** A two-phase ring peer lacking 5 and 6; `other:1` (not its download neighbour) has everything. */
  const ringPeer = (): Scripted => {
    const peers = [
      { address: 'next:1', role: 'download-neighbour' as const },
      { address: 'other:1', role: 'neighbour' as const },
    ];
    const peer = new Scripted(have, peers, { topology: 'ring', phases: 'two-phase' });
    peer.open('other:1', [{ type: 'bitfield', bits: allBits() }, { type: 'unchoke' }]);
    return peer;
  };
  const dry = ringPeer();
  assert.equal(dry.requested('other:1'), [], 'the ring neighbour is not known to be dry yet');
  dry.open('next:1', [{ type: 'bitfield', bits: have.bits }, { type: 'unchoke' }]);
  assert.ok(dry.requested('other:1').length > 0, 'no pause: the neighbour holds nothing we lack');
  // When the download neighbour has a chunk we lack, the ring is strict again.
  const strict = ringPeer();
  strict.open('next:1', [{ type: 'bitfield', bits: allBits() }, { type: 'unchoke' }]);
  assert.equal(strict.requested('other:1'), []);
  assert.ok(strict.requested('next:1').length > 0);
});

test('ring: two peers that dialled each other keep their download neighbour when the tracker names it again', () => {
  const harness = new Harness(FILE);
  const haveA = new Bitfield(FILE.chunks.length);
  const haveB = Bitfield.full(FILE.chunks.length);
  for (const index of [0, 1, 2]) {
    haveA.set(index);
    haveB.clear(index);
  }
  const ring = { role: 'peer', topology: 'ring', phases: 'two-phase' } as const;
  const a = harness.add('peerA', { ...ring, have: haveA });
  const b = harness.add('peerB', { ...ring, have: haveB });
  for (const [node, other] of [
    [a, b],
    [b, a],
  ] as const) {
    for (const index of node.engine.haveField().indices())
      node.disk.set(index, FILE.chunks[index] as Uint8Array);
    node.engine.handlePeers(0, [{ address: other.address, role: 'download-neighbour' }]);
  }
  // Both dial: one connection survives, inbound on one side. Then the tracker names the neighbour again.
  const duplicateClosed = (): boolean =>
    [a, b].some((node) => node.log.some((effect) => effect.kind === 'close'));
  harness.run({ stop: duplicateClosed });
  assert.ok(duplicateClosed(), 'the two connections were resolved to one');
  for (const [node, other] of [
    [a, b],
    [b, a],
  ] as const) {
    node.engine.handlePeers(harness.nowMs, [{ address: other.address, role: 'download-neighbour' }]);
  }
  // Well before starvationMs (2 s): only the download neighbour role lets them trade this soon.
  harness.run({ untilMs: 1_000 });
  assert.ok(a.engine.isComplete && b.engine.isComplete, 'both took the rest from their download neighbour');
});

test.run();
