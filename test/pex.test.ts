/**
 * Peer exchange (BEP 11): the `ut_pex` codec, the engine telling and learning addresses, and the
 * hostile cases, each refused with a typed error while the node keeps serving.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeBencode } from '../src/engine/bencode.ts';
import {
  encodeHandshake,
  encodeMessage,
  MAX_EXTENDED_PAYLOAD_BYTES,
  WireDecoder,
} from '../src/engine/codec.ts';
import type { Effect, Engine } from '../src/engine/engine.ts';
import { encodeExtensionHandshake, OUR_UT_PEX_ID, parseExtensionHandshake } from '../src/engine/extension.ts';
import {
  MAX_PEX_PAYLOAD_BYTES,
  MAX_PEX_RECEIVED_ENTRIES,
  MIN_PEX_RECEIVE_INTERVAL_MS,
  PEX_INTERVAL_MS,
} from '../src/engine/limits.ts';
import type { Message } from '../src/engine/messages.ts';
import {
  canonicalAddress,
  compactAddress,
  encodePexMessage,
  PEX_FLAG_REACHABLE,
  parsePexMessage,
  screenPexAdded,
} from '../src/engine/pex.ts';
import { Harness, makeFile } from './support/pair.ts';

const FILE = makeFile(700_000);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const BEP10 = Uint8Array.of(0, 0, 0, 0, 0, 0x10, 0, 0);

const pexDict = (entries: Record<string, Uint8Array>): Uint8Array =>
  encodeBencode(new Map(Object.entries(entries)));
const ipv4Entries = (count: number, port = 6881): Uint8Array => {
  const out = new Uint8Array(count * 6);
  for (let i = 0; i < count; i++) out.set([10, 1, i >> 8, i & 0xff, port >> 8, port & 0xff], i * 6);
  return out;
};
const errorCode = (payload: Uint8Array): string | undefined => {
  const parsed = parsePexMessage(payload);
  return parsed.ok ? undefined : parsed.error.code;
};

// ---- codec --------------------------------------------------------------------------------------

test('ut_pex codec: IPv4 and IPv6 round trip with flags, IPv4-mapped IPv6 sent as IPv4', () => {
  const payload = encodePexMessage({
    added: [
      { address: '10.0.0.2:6881', flags: PEX_FLAG_REACHABLE },
      { address: '2001:db8::7:51413', flags: 0x02 },
      { address: '::ffff:127.0.0.1:7000', flags: 0 },
      { address: 'not-an-ip:1', flags: 0 },
    ],
    dropped: ['10.0.0.3:80', '::1:9000'],
  });
  const parsed = parsePexMessage(payload);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.equal(parsed.value.added, [
    { address: '10.0.0.2:6881', flags: PEX_FLAG_REACHABLE },
    { address: '127.0.0.1:7000', flags: 0 },
    { address: '2001:db8::7:51413', flags: 0x02 },
  ]);
  assert.equal(parsed.value.dropped, ['10.0.0.3:80', '::1:9000']);
  assert.is(compactAddress('1.2.3.4:258')?.length, 6);
  assert.is(compactAddress('fe80::1:1')?.length, 18);
  assert.is(canonicalAddress('[2001:0db8:0:0:0:0:0:1]:80'), '2001:db8::1:80');
  assert.is(canonicalAddress('1.2.3.256:80'), undefined);
  assert.is(canonicalAddress('1.2.3.4:0'), undefined);
  // Missing lists are empty lists; a flags string of the wrong length is ignored, not fatal.
  const bare = parsePexMessage(pexDict({ added: ipv4Entries(2), 'added.f': Uint8Array.of(1) }));
  assert.ok(
    bare.ok && bare.value.added.every((entry) => entry.flags === 0) && bare.value.dropped.length === 0,
  );
});

test('ut_pex codec: lies are typed errors; duplicates are dropped', () => {
  assert.is(errorCode(text('not bencode')), 'bad-pex-message');
  assert.is(errorCode(encodeBencode([1, 2])), 'bad-pex-message');
  assert.is(errorCode(encodeBencode(new Map([['added', 5]]))), 'bad-pex-message');
  assert.is(errorCode(pexDict({ added: new Uint8Array(7) })), 'bad-pex-length');
  assert.is(errorCode(pexDict({ dropped: new Uint8Array(5) })), 'bad-pex-length');
  assert.is(errorCode(pexDict({ added6: new Uint8Array(17) })), 'bad-pex-length');
  assert.is(errorCode(pexDict({ dropped6: new Uint8Array(36 + 6) })), 'bad-pex-length');
  assert.is(errorCode(pexDict({ added: ipv4Entries(MAX_PEX_RECEIVED_ENTRIES + 1) })), 'pex-too-many-entries');
  assert.is(errorCode(pexDict({ added: ipv4Entries(10_000) })), 'pex-too-many-entries');
  assert.is(errorCode(pexDict({ added: ipv4Entries(1, 0) })), 'pex-bad-address');
  assert.is(errorCode(pexDict({ added: ipv4Entries(MAX_PEX_RECEIVED_ENTRIES) })), undefined);
  const twice = new Uint8Array(12);
  twice.set(ipv4Entries(1));
  twice.set(ipv4Entries(1), 6);
  const parsed = parsePexMessage(pexDict({ added: twice }));
  assert.ok(parsed.ok && parsed.value.added.length === 1);
});

test('ut_pex codec, the hostile cases of issue #19: oversized, truncated, self-address, 10,000 entries', () => {
  const valid = encodePexMessage({
    added: [
      { address: '10.0.0.2:6881', flags: PEX_FLAG_REACHABLE },
      { address: '2001:db8::7:51413', flags: 0x02 },
    ],
    dropped: ['10.0.0.3:80', '2001:db8::9:80'],
  });
  assert.ok(parsePexMessage(valid).ok);
  // Oversized: a payload over MAX_PEX_PAYLOAD_BYTES, whatever fills it; over 64 KiB the wire
  // decoder refuses the frame from its length prefix, before reading the payload.
  assert.is(errorCode(pexDict({ 'added.f': new Uint8Array(MAX_PEX_PAYLOAD_BYTES) })), 'pex-oversized');
  assert.is(errorCode(pexDict({ junk: new Uint8Array(MAX_PEX_PAYLOAD_BYTES) })), 'pex-oversized');
  const decoder = new WireDecoder(FILE.options.geometry);
  const peerId = new Uint8Array(20);
  assert.ok(decoder.push(encodeHandshake({ reserved: BEP10, infoHash: FILE.options.infoHash, peerId })).ok);
  const length = 2 + MAX_EXTENDED_PAYLOAD_BYTES + 1;
  const header = Uint8Array.of(length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  const refused = decoder.push(Uint8Array.from([...header, 20, OUR_UT_PEX_ID]));
  assert.is(refused.ok ? undefined : refused.error.code, 'frame-too-large');
  // Truncated: every proper prefix of a valid message, and entries cut short.
  for (let cut = 0; cut < valid.length; cut++) {
    assert.is(errorCode(valid.subarray(0, cut)), 'bad-pex-message', `cut at ${cut} of ${valid.length}`);
  }
  assert.is(errorCode(pexDict({ added: ipv4Entries(3).subarray(0, 17) })), 'bad-pex-length');
  // Self-address: the entry naming us is refused, typed; the others are kept.
  const own = new Set(['10.0.0.1:7000']);
  const parsed = parsePexMessage(
    pexDict({ added: Uint8Array.from([10, 0, 0, 1, 0x1b, 0x58, 10, 0, 0, 2, 0x1b, 0x58]) }),
  );
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  const screened = screenPexAdded(parsed.value, own, new Set());
  assert.equal(screened.fresh, ['10.0.0.2:7000']);
  assert.equal(
    screened.refused.map((error) => error.code),
    ['pex-self-address'],
  );
  // 10,000 entries, IPv4 or IPv6, added or dropped.
  assert.is(errorCode(pexDict({ added: ipv4Entries(10_000) })), 'pex-too-many-entries');
  assert.is(errorCode(pexDict({ dropped: ipv4Entries(10_000) })), 'pex-too-many-entries');
  assert.is(errorCode(pexDict({ added6: new Uint8Array(10_000 * 18).fill(1) })), 'pex-too-many-entries');
});

// ---- engine -------------------------------------------------------------------------------------

/** Three empty peers (so none completes and all keep dialling) on IP-named harness nodes. */
function threePeers() {
  const harness = new Harness(FILE);
  const options = { role: 'peer' as const, topology: 'mesh' as const, peerExchange: true };
  const hub = harness.add('10.0.0.1', options);
  const left = harness.add('10.0.0.2', options);
  const right = harness.add('10.0.0.3', options);
  for (const node of [hub, left, right]) node.engine.handleListening(0, 1, [node.address]);
  return { harness, hub, left, right };
}

const connects = (log: readonly Effect[]): string[] =>
  log.flatMap((effect) => (effect.kind === 'connect' ? [effect.address] : []));

test('a peer that knows one peer learns the others through it, and dials them', () => {
  const { harness, hub, left, right } = threePeers();
  left.engine.handlePeers(0, [{ address: hub.address, role: 'neighbour' }]);
  right.engine.handlePeers(0, [{ address: hub.address, role: 'neighbour' }]);
  harness.run({ untilMs: 5_000 });
  // The hub was dialled by both; each learned the other from the hub's first ut_pex message.
  const leftDials = connects(left.log);
  const rightDials = connects(right.log);
  assert.ok(
    leftDials.includes('10.0.0.3:1') || rightDials.includes('10.0.0.2:1'),
    `${leftDials} ${rightDials}`,
  );
  assert.is(left.engine.openConnectionCount(), 2);
  assert.is(right.engine.openConnectionCount(), 2);
  // Nothing to tell and a minute not passed: no second message, and never our own address.
  const extended = sentMessages(hub.log, hub.address).filter((message) => message.type === 'extended');
  assert.ok(extended.length <= 6, `${extended.length} extended messages`);
});

test('without peerExchange the handshake does not announce ut_pex and nothing is exchanged', () => {
  const harness = new Harness(FILE);
  const hub = harness.add('10.0.0.1', { role: 'peer', topology: 'mesh' });
  const left = harness.add('10.0.0.2', { role: 'peer', topology: 'mesh' });
  const right = harness.add('10.0.0.3', { role: 'peer', topology: 'mesh' });
  left.engine.handlePeers(0, [{ address: hub.address, role: 'neighbour' }]);
  right.engine.handlePeers(0, [{ address: hub.address, role: 'neighbour' }]);
  harness.run({ untilMs: 5_000 });
  assert.equal(connects(left.log), [hub.address]);
  assert.equal(connects(right.log), [hub.address]);
});

function sentMessages(log: readonly Effect[], _name: string): Message[] {
  const decoders = new Map<string, WireDecoder>();
  const out: Message[] = [];
  for (const effect of log) {
    if (effect.kind !== 'send') continue;
    let decoder = decoders.get(effect.connection);
    if (decoder === undefined) {
      decoder = new WireDecoder(FILE.options.geometry);
      decoders.set(effect.connection, decoder);
    }
    for (const event of decoder.push(effect.bytes).events) if (event.type !== 'handshake') out.push(event);
  }
  return out;
}

// ---- hostile ------------------------------------------------------------------------------------

/** An engine with one raw inbound remote that announced ut_pex; returns a sender of ut_pex payloads. */
function rawRemote(engine: Engine, id: string, remoteAddress: string, atMs = 0) {
  const peerId = text(`-XX0001-${id.padEnd(12, 'x')}`.slice(0, 20));
  engine.handleAccepted(atMs, id, remoteAddress);
  engine.handleData(atMs, id, encodeHandshake({ reserved: BEP10, infoHash: FILE.options.infoHash, peerId }));
  engine.handleData(
    atMs,
    id,
    encodeMessage({
      type: 'extended',
      extendedId: 0,
      payload: encodeExtensionHandshake({ messages: new Map([['ut_pex', 7]]), listenPort: 7000 }),
    }),
  );
  engine.pollEffects();
  return (nowMs: number, payload: Uint8Array): Effect[] => {
    engine.handleData(nowMs, id, encodeMessage({ type: 'extended', extendedId: OUR_UT_PEX_ID, payload }));
    return engine.pollEffects();
  };
}

const closeCode = (effects: readonly Effect[]): string | undefined => {
  const close = effects.find((effect) => effect.kind === 'close');
  if (close?.kind !== 'close') return undefined;
  return close.reason.code === 'protocol' ? close.reason.error.code : close.reason.code;
};

test('hostile ut_pex: each lie closes that one connection with a typed error; the node keeps serving', () => {
  const harness = new Harness(FILE);
  const node = harness.add('10.0.0.1', { role: 'owner', peerExchange: true, ownerAdvertising: 'all' });
  node.engine.handleListening(0, 1, ['10.0.0.1:1', '127.0.0.1:1']);
  const lies: [string, Uint8Array][] = [
    ['bad-pex-message', text('garbage')],
    ['bad-pex-length', pexDict({ added: new Uint8Array(13) })],
    ['bad-pex-length', pexDict({ added6: new Uint8Array(20) })],
    ['pex-too-many-entries', pexDict({ added: ipv4Entries(10_000) })],
    ['pex-oversized', pexDict({ junk: new Uint8Array(MAX_PEX_PAYLOAD_BYTES) })],
    ['bad-pex-message', pexDict({ added: ipv4Entries(2) }).subarray(0, 10)],
    ['pex-bad-address', pexDict({ added: ipv4Entries(1, 0) })],
  ];
  for (const [index, [code, payload]] of lies.entries()) {
    const send = rawRemote(node.engine, `in:${index}`, `10.9.0.${index}:5000`, 1);
    assert.is(closeCode(send(1, payload)), code);
  }
  // A flood: the second message within the minute closes.
  const flood = rawRemote(node.engine, 'in:flood', '10.9.1.1:5000', 1);
  assert.is(closeCode(flood(10, pexDict({ added: ipv4Entries(1) }))), undefined);
  assert.is(closeCode(flood(10 + MIN_PEX_RECEIVE_INTERVAL_MS - 1, pexDict({}))), 'pex-flood');
  // Our own address is refused (pex-self-address) and duplicates dropped, neither held against the
  // sender; an owner dials nobody.
  const honest = rawRemote(node.engine, 'in:honest', '10.9.2.1:5000', 40_000);
  const own = compactAddress('10.0.0.1:1') as Uint8Array;
  const effects = honest(40_000, pexDict({ added: Uint8Array.from([...own, ...own]) }));
  assert.is(closeCode(effects), undefined);
  assert.not.ok(effects.some((effect) => effect.kind === 'connect'));
  assert.is(node.engine.openConnectionCount(), 1, 'only the honest one is left');
  // Still serving: a new peer downloads the whole file.
  const peer = harness.add('10.0.0.5', { role: 'peer' });
  harness.nowMs = 40_000;
  peer.engine.handlePeers(harness.nowMs, [{ address: node.address, role: 'owner' }]);
  harness.run({ untilMs: 60_000, stop: () => peer.engine.isComplete });
  assert.ok(peer.engine.isComplete);
});

test('an inbound peer is passed on at its announced port, at most once a minute, never to itself', () => {
  const harness = new Harness(FILE);
  const node = harness.add('10.0.0.1', { role: 'owner', peerExchange: true, ownerAdvertising: 'all' });
  node.engine.handleListening(0, 1, ['10.0.0.1:1']);
  rawRemote(node.engine, 'in:a', '10.9.0.1:5000');
  rawRemote(node.engine, 'in:b', '10.9.0.2:5001');
  const decoder = new Map<string, WireDecoder>();
  const pexTo = (effects: Effect[], connection: string): string[][] => {
    const out: string[][] = [];
    for (const effect of effects) {
      if (effect.kind !== 'send' || effect.connection !== connection) continue;
      let d = decoder.get(connection);
      if (d === undefined) {
        // The handshakes were drained already: this decoder starts after one.
        d = new WireDecoder(FILE.options.geometry);
        d.push(
          encodeHandshake({ reserved: BEP10, infoHash: FILE.options.infoHash, peerId: new Uint8Array(20) }),
        );
        decoder.set(connection, d);
      }
      for (const event of d.push(effect.bytes).events) {
        if (event.type !== 'extended' || event.extendedId !== 7) continue;
        const parsed = parsePexMessage(event.payload);
        if (parsed.ok) out.push(parsed.value.added.map((entry) => entry.address));
      }
    }
    return out;
  };
  node.engine.handleTimeout(500);
  assert.equal(pexTo(node.engine.pollEffects(), 'in:a'), [], 'not before the first delay');
  node.engine.handleTimeout(1_000);
  const first = node.engine.pollEffects();
  assert.equal(pexTo(first, 'in:a'), [['10.9.0.2:7000']]);
  assert.equal(pexTo(first, 'in:b'), [], 'b heard of a with its own extension handshake already');
  rawRemote(node.engine, 'in:c', '10.9.0.3:5002', 1_000);
  node.engine.handleTimeout(30_000);
  assert.equal(pexTo(node.engine.pollEffects(), 'in:a'), [], 'not within the minute');
  node.engine.handleTimeout(1_000 + PEX_INTERVAL_MS);
  assert.equal(pexTo(node.engine.pollEffects(), 'in:a'), [['10.9.0.3:7000']]);
  // Our handshake says ut_pex and our port.
  const ours = encodeExtensionHandshake({ messages: new Map([['ut_pex', OUR_UT_PEX_ID]]), listenPort: 1 });
  assert.ok(parseExtensionHandshake(ours).ok);
});

test.run();
