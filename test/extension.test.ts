/**
 * BEP 10 (extension handshake) and BEP 9 (ut_metadata) messages, and how the engine uses them.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeBencode, encodeBencode } from '../src/engine/bencode.ts';
import { encodeHandshake, encodeMessage, WireDecoder } from '../src/engine/codec.ts';
import type { Effect } from '../src/engine/engine.ts';
import {
  ExtensionSession,
  encodeExtensionHandshake,
  encodeMetadataMessage,
  METADATA_PIECE_BYTES,
  OUR_UT_METADATA_ID,
  parseExtensionHandshake,
  parseMetadataMessage,
} from '../src/engine/extension.ts';
import type { Message } from '../src/engine/messages.ts';
import { Harness, makeFile } from './support/pair.ts';

const FILE = makeFile(700_000);
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

test('extension handshake: round trip, unknown keys ignored, disabled extensions dropped', () => {
  const payload = encodeExtensionHandshake({
    messages: new Map([
      ['ut_metadata', 3],
      ['ut_pex', 1],
    ]),
    client: 'swarm 0.1',
    listenPort: 6881,
    requestQueue: 256,
    metadataSize: 12345,
  });
  const parsed = parseExtensionHandshake(payload);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.equal(
    [...parsed.value.messages],
    [
      ['ut_metadata', 3],
      ['ut_pex', 1],
    ],
  );
  assert.equal(parsed.value.client, 'swarm 0.1');
  assert.equal(parsed.value.listenPort, 6881);
  assert.equal(parsed.value.requestQueue, 256);
  assert.equal(parsed.value.metadataSize, 12345);
  // What libtorrent sends, roughly: extra keys of every type, an extension switched off (0).
  const foreign = parseExtensionHandshake(
    bytes(
      'd1:ei0e4:ipv416:................1:md11:lt_donthavei7e6:ut_pexi0ee4:reqqi500e1:v18:libtorrent 2.0.8.0e',
    ),
  );
  assert.ok(foreign.ok);
  if (!foreign.ok) return;
  assert.equal([...foreign.value.messages], [['lt_donthave', 7]]);
  assert.equal(foreign.value.requestQueue, 500);
  assert.equal(foreign.value.client, 'libtorrent 2.0.8.0');
});

test('extension handshake: anything but a bencoded dictionary (with m a dictionary) is refused', () => {
  for (const text of ['', 'i1e', 'le', 'd1:mi1ee', 'd1:m', 'd1:mdee3:xyz']) {
    const parsed = parseExtensionHandshake(bytes(text));
    assert.not.ok(parsed.ok, text);
    if (!parsed.ok) assert.is(parsed.error.code, 'bad-extension-message');
  }
});

test('ut_metadata messages: request, data (piece after the dictionary) and reject round trip', () => {
  const data = new Uint8Array(1000).fill(7);
  const cases = [
    { type: 'request', piece: 2 },
    { type: 'data', piece: 1, totalSize: METADATA_PIECE_BYTES + 1000, data },
    { type: 'reject', piece: 0 },
  ] as const;
  for (const message of cases) {
    const parsed = parseMetadataMessage(encodeMetadataMessage(message));
    assert.ok(parsed.ok);
    if (parsed.ok) assert.equal(parsed.value, message);
  }
  // A data piece of the wrong length for its index is refused.
  const short = encodeMetadataMessage({ type: 'data', piece: 0, totalSize: 20000, data });
  assert.not.ok(parseMetadataMessage(short).ok);
});

test('hostile extension payloads never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (payload) => {
      parseExtensionHandshake(payload);
      parseMetadataMessage(payload);
      const session = new ExtensionSession({ requestQueue: 10, metadata: new Uint8Array(40_000) });
      const remote = {};
      session.open(remote, Uint8Array.of(0, 0, 0, 0, 0, 0x10, 0, 0));
      session.receive(remote, 0, payload);
      session.receive(remote, OUR_UT_METADATA_ID, payload);
    }),
  );
});

test('the session serves metadata in 16 KiB pieces, rejects bad pieces, and stops repeating itself', () => {
  const metadata = new Uint8Array(40_000).map((_, i) => i & 0xff);
  const session = new ExtensionSession({ requestQueue: 10, metadata });
  const remote = {};
  assert.is(session.open(remote, new Uint8Array(8)), undefined, 'no BEP 10 bit, no handshake');
  const ours = session.open(remote, Uint8Array.of(0, 0, 0, 0, 0, 0x10, 0, 0));
  assert.ok(ours !== undefined && ours.type === 'extended' && ours.extendedId === 0);
  if (ours?.type !== 'extended') return;
  const handshake = parseExtensionHandshake(ours.payload);
  assert.ok(handshake.ok && handshake.value.metadataSize === 40_000);
  assert.ok(handshake.ok && handshake.value.messages.get('ut_metadata') === OUR_UT_METADATA_ID);

  const request = (piece: number) =>
    session.receive(remote, OUR_UT_METADATA_ID, encodeMetadataMessage({ type: 'request', piece }));
  assert.not.ok(request(0).ok, 'a request before the remote announced ut_metadata');
  const theirs = encodeExtensionHandshake({ messages: new Map([['ut_metadata', 9]]) });
  assert.ok(session.receive(remote, 0, theirs).ok);

  const pieces: Uint8Array[] = [];
  for (let piece = 0; piece < 3; piece++) {
    const outcome = request(piece);
    assert.ok(outcome.ok);
    if (!outcome.ok) return;
    const reply = outcome.replies[0] as Message;
    assert.ok(reply.type === 'extended' && reply.extendedId === 9, 'sent with the id the remote chose');
    if (reply.type !== 'extended') return;
    const parsed = parseMetadataMessage(reply.payload);
    assert.ok(parsed.ok && parsed.value.type === 'data');
    if (parsed.ok && parsed.value.type === 'data') pieces.push(parsed.value.data);
  }
  assert.equal(Buffer.concat(pieces), Buffer.from(metadata));
  const rejectOf = (outcome: ReturnType<typeof request>): string | undefined => {
    if (!outcome.ok) return 'error';
    const reply = outcome.replies[0];
    if (reply?.type !== 'extended') return undefined;
    const parsed = parseMetadataMessage(reply.payload);
    return parsed.ok ? parsed.value.type : 'bad';
  };
  assert.is(rejectOf(request(3)), 'reject', 'no such piece');
  for (let i = 0; i < 9; i++) request(i % 3);
  assert.is(rejectOf(request(0)), 'reject', 'served each piece four times, then no more');
  assert.not.ok(session.receive({}, 0, theirs).ok, 'extended message from a peer without the BEP 10 bit');
});

/** The messages in `effects`, read by one decoder per connection (the first bytes are a handshake). */
function sent(effects: Effect[], decoder = new WireDecoder(FILE.options.geometry)): Message[] {
  const out: Message[] = [];
  for (const effect of effects) {
    if (effect.kind !== 'send') continue;
    for (const event of decoder.push(effect.bytes).events) if (event.type !== 'handshake') out.push(event);
  }
  return out;
}

test('the engine sets the BEP 10 bit, sends its handshake to BEP 10 peers only, and serves metadata', () => {
  const metadata = encodeBencode(new Map([['name', bytes('x')]]));
  const harness = new Harness(FILE);
  const owner = harness.add('owner', { role: 'owner', ownerAdvertising: 'all', metadata }).engine;
  const remoteHandshake = (reserved: Uint8Array, id: string) =>
    encodeHandshake({ reserved, infoHash: FILE.options.infoHash, peerId: bytes(`-LT2080-abcdefghijk${id}`) });

  owner.handleAccepted(0, 'in:1', 'remote:1');
  owner.handleData(0, 'in:1', remoteHandshake(new Uint8Array(8), '1'));
  const plain = owner.pollEffects();
  const handshakeBytes = (plain.find((effect) => effect.kind === 'send') as { bytes: Uint8Array }).bytes;
  assert.is((handshakeBytes[20 + 5] ?? 0) & 0x10, 0x10, 'reserved[5] & 0x10');
  assert.is((handshakeBytes[20 + 7] ?? 0) & 0x04, 0x04, 'reserved[7] & 0x04 still');
  assert.not.ok(
    sent(plain).some((message) => message.type === 'extended'),
    'no extension handshake to a peer without BEP 10',
  );

  owner.handleAccepted(0, 'in:2', 'remote:2');
  owner.handleData(0, 'in:2', remoteHandshake(Uint8Array.of(0, 0, 0, 0, 0, 0x10, 0, 0), '2'));
  const decoder = new WireDecoder(FILE.options.geometry);
  const extended = sent(owner.pollEffects(), decoder).filter((message) => message.type === 'extended');
  assert.is(extended.length, 1);
  const handshake =
    extended[0]?.type === 'extended' ? parseExtensionHandshake(extended[0].payload) : undefined;
  assert.ok(handshake?.ok && handshake.value.metadataSize === metadata.length);
  assert.ok(
    handshake?.ok &&
      handshake.value.requestQueue !== undefined &&
      handshake.value.client?.startsWith('swarm'),
  );

  owner.handleData(
    1,
    'in:2',
    encodeMessage({
      type: 'extended',
      extendedId: 0,
      payload: encodeExtensionHandshake({ messages: new Map([['ut_metadata', 4]]) }),
    }),
  );
  owner.handleData(
    2,
    'in:2',
    encodeMessage({
      type: 'extended',
      extendedId: OUR_UT_METADATA_ID,
      payload: encodeMetadataMessage({ type: 'request', piece: 0 }),
    }),
  );
  const reply = sent(owner.pollEffects(), decoder).find((message) => message.type === 'extended');
  assert.ok(reply?.type === 'extended' && reply.extendedId === 4);
  const data = reply?.type === 'extended' ? parseMetadataMessage(reply.payload) : undefined;
  assert.ok(data?.ok && data.value.type === 'data');
  if (data?.ok && data.value.type === 'data') {
    assert.equal(decodeBencode(data.value.data), decodeBencode(metadata));
  }

  // A handshake that is not bencode closes that connection with a typed reason.
  owner.handleData(3, 'in:2', encodeMessage({ type: 'extended', extendedId: 0, payload: bytes('nope') }));
  const close = owner.pollEffects().find((effect) => effect.kind === 'close');
  assert.ok(close?.kind === 'close' && close.reason.code === 'protocol');
  assert.ok(
    close?.kind === 'close' &&
      close.reason.code === 'protocol' &&
      close.reason.error.code === 'bad-extension-message',
  );
});

test.run();
