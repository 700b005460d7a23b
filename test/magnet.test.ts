/**
 * Magnet links (issue #18): the strict parser, the per-peer metadata exchange fed hostile bytes, the
 * fetcher against a real owner process and against lying or oversized in-process peers, the
 * rebuilt .torrent, and `swarm peer --torrent MAGNET`.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { torrentBytes } from '../src/app/magnet.ts';
import { sha256File } from '../src/app/processes.ts';
import { findDictionaryValueSpan } from '../src/engine/bencode.ts';
import { encodeHandshake, encodeMessage } from '../src/engine/codec.ts';
import {
  EXTENSION_HANDSHAKE_ID,
  encodeExtensionHandshake,
  encodeMetadataMessage,
  METADATA_PIECE_BYTES,
  parseMetadataMessage,
  UT_METADATA,
} from '../src/engine/extension.ts';
import { toHex } from '../src/engine/hash.ts';
import {
  MAX_MAGNET_LENGTH,
  MAX_MAGNET_PARAMETERS,
  MAX_MAGNET_PEERS,
  MAX_MAGNET_TRACKERS,
} from '../src/engine/limits.ts';
import { parseMagnet } from '../src/engine/magnet.ts';
import { MetadataExchange, type MetadataStep } from '../src/engine/metadata-exchange.ts';
import { parseTorrent } from '../src/engine/metainfo.ts';
import { sha1 } from '../src/platform/sha1.ts';
import { fetchMetadata } from '../src/transport/metadata-fetch.ts';
import { Workspace } from './support/processes.ts';

const HEX = '8ca3916c5bc63a24b321a3f34568e0e68d2ade1c';
const PEER_ID = new TextEncoder().encode('-SW0100-magnettest01');

// ------------------------------------------------------------------------------------------------
// The parser

test('parseMagnet reads a hex info hash, dn, tr and x.pe', () => {
  const link = `magnet:?xt=urn:btih:${HEX.toUpperCase()}&dn=my%20file+1.bin&tr=http%3A%2F%2F127.0.0.1%3A6881%2Fannounce&tr=udp://t.example:80&x.pe=10.0.0.1:6881&x.pe=[::1]:7000&x.pe=peer.example:1&ws=http://ignored`;
  const parsed = parseMagnet(link);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  if (!parsed.ok) return;
  assert.is(toHex(parsed.magnet.infoHash), HEX);
  assert.is(parsed.magnet.displayName, 'my file 1.bin');
  assert.equal(parsed.magnet.trackers, ['http://127.0.0.1:6881/announce', 'udp://t.example:80']);
  assert.equal(parsed.magnet.peers, [
    { host: '10.0.0.1', port: 6881 },
    { host: '::1', port: 7000 },
    { host: 'peer.example', port: 1 },
  ]);
});

test('parseMagnet reads a base32 info hash as the same 20 bytes', () => {
  // RFC 4648 base32 of the 20 bytes of HEX.
  const bytes = Buffer.from(HEX, 'hex');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  let base32 = '';
  for (let i = 0; i < bits.length; i += 5) base32 += alphabet[Number.parseInt(bits.slice(i, i + 5), 2)];
  for (const text of [base32, base32.toLowerCase()]) {
    const parsed = parseMagnet(`magnet:?xt=urn:btih:${text}`);
    assert.ok(parsed.ok);
    if (parsed.ok) assert.is(toHex(parsed.magnet.infoHash), HEX);
  }
});

test('parseMagnet keeps one of each tracker and peer, at most the limits', () => {
  const trackers = Array.from({ length: 40 }, (_, i) => `tr=http://t${i % 20}.example/a`).join('&');
  const peers = Array.from({ length: 80 }, (_, i) => `x.pe=10.0.0.${i % 60}:1`).join('&');
  const parsed = parseMagnet(`magnet:?xt=urn:btih:${HEX}&${trackers}&${peers}`);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.is(parsed.magnet.trackers.length, MAX_MAGNET_TRACKERS);
  assert.is(parsed.magnet.peers.length, MAX_MAGNET_PEERS);
  assert.is(new Set(parsed.magnet.peers.map((peer) => peer.host)).size, MAX_MAGNET_PEERS);
});

test('parseMagnet refuses hostile links with a typed error', () => {
  const cases: [string, string][] = [
    [`http://example.com/?xt=urn:btih:${HEX}`, 'not-magnet'],
    [`magnet:?xt=urn:btih:${HEX}&dn=${'a'.repeat(MAX_MAGNET_LENGTH)}`, 'too-long'],
    [`magnet:?${'a=1&'.repeat(MAX_MAGNET_PARAMETERS)}xt=urn:btih:${HEX}`, 'too-many-parameters'],
    ['magnet:?dn=x', 'missing-info-hash'],
    ['magnet:?xt=urn:btmh:1220abcd', 'missing-info-hash'],
    [`magnet:?xt=urn:btih:${HEX.slice(1)}`, 'bad-info-hash'],
    [`magnet:?xt=urn:btih:${HEX}0`, 'bad-info-hash'],
    [`magnet:?xt=urn:btih:${'g'.repeat(40)}`, 'bad-info-hash'],
    [`magnet:?xt=urn:btih:${'1'.repeat(32)}`, 'bad-info-hash'],
    [`magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${'0'.repeat(40)}`, 'conflicting-info-hash'],
    [`magnet:?xt=urn:btih:${HEX}&dn=%zz`, 'bad-encoding'],
    [`magnet:?xt=urn:btih:${HEX}&dn=%e2%82`, 'bad-encoding'],
    [`magnet:?xt=urn:btih:${HEX}&dn=caf\u00e9`, 'bad-encoding'],
    [`magnet:?xt=urn:btih:${HEX}&tr=file:///etc/passwd`, 'bad-tracker'],
    [`magnet:?xt=urn:btih:${HEX}&tr=javascript:alert(1)`, 'bad-tracker'],
    [`magnet:?xt=urn:btih:${HEX}&tr=http://a%20b/`, 'bad-tracker'],
    [`magnet:?xt=urn:btih:${HEX}&tr=http://user@host/`, 'bad-tracker'],
    [`magnet:?xt=urn:btih:${HEX}&tr=http://${'a'.repeat(2100)}/`, 'bad-tracker'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:0`, 'bad-peer'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:65536`, 'bad-peer'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1`, 'bad-peer'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=a b:1`, 'bad-peer'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=..:1`, 'bad-peer'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=[zz]:1`, 'bad-peer'],
  ];
  for (const [link, code] of cases) {
    const parsed = parseMagnet(link);
    assert.not.ok(parsed.ok, link);
    if (!parsed.ok) assert.is(parsed.error.code, code, link.slice(0, 100));
  }
});

test('parseMagnet never throws on random text', () => {
  let seed = 7;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const pieces = [
    'magnet:?',
    'xt=urn:btih:',
    HEX,
    '&',
    '=',
    '%',
    '%4',
    'tr=',
    'x.pe=',
    '[',
    ']',
    ':',
    '\u00ff',
    '+',
  ];
  for (let i = 0; i < 2000; i++) {
    let link = '';
    for (let j = next() % 12; j > 0; j--) link += pieces[next() % pieces.length];
    const parsed = parseMagnet(link);
    assert.type(parsed.ok, 'boolean');
  }
});

// ------------------------------------------------------------------------------------------------
// The exchange, pure

/** A remote's opening: its handshake (extension bit set) and extension handshake. */
function remoteOpening(
  infoHash: Uint8Array,
  handshake: Parameters<typeof encodeExtensionHandshake>[0],
): Uint8Array {
  const reserved = new Uint8Array(8);
  reserved[5] = 0x10;
  return Buffer.concat([
    encodeHandshake({ reserved, infoHash, peerId: PEER_ID }),
    encodeMessage({
      type: 'extended',
      extendedId: EXTENSION_HANDSHAKE_ID,
      payload: encodeExtensionHandshake(handshake),
    }),
  ]);
}

/** A plausible info dictionary of `sizeBytes` bytes (a long name pads it). */
function infoOf(sizeBytes: number): Uint8Array {
  const text = `d6:lengthi1e4:name${sizeBytes - 40}:`;
  const name = 'n'.repeat(sizeBytes - 40);
  return new TextEncoder().encode(`${text}${name}12:piece lengthi1e6:pieces0:e`.slice(0, sizeBytes));
}

/** Answers every metadata request in `sent` from `metadata`, as the remote would. */
function answers(sent: readonly Uint8Array[], metadata: Uint8Array): Uint8Array[] {
  return sent.map((frame) => {
    const request = parseMetadataMessage(frame.subarray(6));
    assert.ok(request.ok && request.value.type === 'request');
    const piece = request.ok ? request.value.piece : 0;
    const data = metadata.subarray(piece * METADATA_PIECE_BYTES, (piece + 1) * METADATA_PIECE_BYTES);
    const payload = encodeMetadataMessage({ type: 'data', piece, totalSize: metadata.length, data });
    return encodeMessage({ type: 'extended', extendedId: 1, payload });
  });
}

/** Runs an exchange against a scripted remote serving `served` for `infoHash`, fed one byte at a time. */
function runExchange(infoHash: Uint8Array, served: Uint8Array, announcedBytes = served.length): MetadataStep {
  const exchange = new MetadataExchange(infoHash, PEER_ID, sha1);
  assert.is(exchange.opening().length, 2);
  let pending: Uint8Array[] = [
    remoteOpening(infoHash, { messages: new Map([[UT_METADATA, 3]]), metadataSize: announcedBytes }),
  ];
  for (let round = 0; round < 100; round++) {
    const sent: Uint8Array[] = [];
    for (const chunk of pending) {
      for (const byte of chunk) {
        const step = exchange.receive(Uint8Array.of(byte));
        if (step.kind !== 'continue') return step;
        sent.push(...step.send);
      }
    }
    pending = answers(sent, served);
  }
  throw new Error('the exchange did not end');
}

test('MetadataExchange assembles and verifies a multi-piece info dictionary, input split anywhere', () => {
  const info = infoOf(3 * METADATA_PIECE_BYTES + 100);
  const step = runExchange(sha1(info), info);
  assert.is(step.kind, 'done');
  if (step.kind === 'done') assert.ok(Buffer.from(step.info).equals(Buffer.from(info)));
});

test('MetadataExchange refuses metadata that does not hash to the info hash', () => {
  const info = infoOf(20_000);
  const lie = info.slice();
  lie[10] = 0x41;
  const step = runExchange(sha1(info), lie);
  assert.is(step.kind, 'failed');
  if (step.kind === 'failed') assert.is(step.error.code, 'metadata-hash-mismatch');
});

test('MetadataExchange refuses a metadata_size over the limit, 0, or a peer without ut_metadata', () => {
  const infoHash = sha1(infoOf(100));
  const over = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    remoteOpening(infoHash, { messages: new Map([[UT_METADATA, 3]]), metadataSize: 5 * 1024 * 1024 }),
  );
  assert.equal(over.kind === 'failed' && over.error.code, 'metadata-too-large');
  const zero = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    remoteOpening(infoHash, { messages: new Map([[UT_METADATA, 3]]), metadataSize: 0 }),
  );
  assert.equal(zero.kind === 'failed' && zero.error.code, 'bad-metadata-size');
  const none = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    remoteOpening(infoHash, { messages: new Map(), metadataSize: 100 }),
  );
  assert.equal(none.kind === 'failed' && none.error.code, 'no-metadata-support');
});

test('MetadataExchange refuses another torrent, a peer without BEP 10, and a huge frame', () => {
  const infoHash = sha1(infoOf(100));
  const other = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    remoteOpening(sha1(infoOf(101)), { messages: new Map([[UT_METADATA, 3]]), metadataSize: 100 }),
  );
  assert.equal(other.kind === 'failed' && other.error.code, 'info-hash-mismatch');
  const plain = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    encodeHandshake({ reserved: new Uint8Array(8), infoHash, peerId: PEER_ID }),
  );
  assert.equal(plain.kind === 'failed' && plain.error.code, 'no-extension-protocol');
  const reserved = new Uint8Array(8);
  reserved[5] = 0x10;
  const huge = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    Buffer.concat([
      encodeHandshake({ reserved, infoHash, peerId: PEER_ID }),
      Buffer.from([0x7f, 0, 0, 0, 20]),
    ]),
  );
  assert.equal(huge.kind === 'failed' && huge.error.code, 'frame-too-large');
  const http = new MetadataExchange(infoHash, PEER_ID, sha1).receive(
    new TextEncoder().encode('HTTP/1.1 200'),
  );
  assert.equal(http.kind === 'failed' && http.error.code, 'not-bittorrent');
});

test("torrentBytes keeps the info bytes exactly, so the info hash is the magnet's", () => {
  const info = new TextEncoder().encode(
    'd6:lengthi10e4:name5:a.bin12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae',
  );
  const bytes = torrentBytes(info, 'http://127.0.0.1:1/announce');
  const parsed = parseTorrent(bytes, sha1);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  if (!parsed.ok) return;
  assert.equal(parsed.metainfo.infoHash, sha1(info));
  assert.is(parsed.metainfo.announce, 'http://127.0.0.1:1/announce');
  assert.is(parsed.metainfo.name, 'a.bin');
  const bare = parseTorrent(torrentBytes(info, undefined), sha1);
  assert.ok(bare.ok && bare.metainfo.announce === undefined);
});

// ------------------------------------------------------------------------------------------------
// The fetcher on sockets

/** An in-process peer that answers the handshake and serves `metadata` (a lie, maybe) as `announced` bytes. */
async function fakePeer(
  infoHash: Uint8Array,
  metadata: Uint8Array,
  announcedBytes = metadata.length,
): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => undefined);
    socket.write(
      remoteOpening(infoHash, { messages: new Map([[UT_METADATA, 3]]), metadataSize: announcedBytes }),
    );
    let buffered = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      if (buffered.length >= 68 && buffered[0] === 19) buffered = buffered.subarray(68);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
        const frame = buffered.subarray(0, 4 + buffered.readUInt32BE(0));
        buffered = buffered.subarray(frame.length);
        if (frame[4] === 20 && frame[5] === 3)
          for (const reply of answers([frame], metadata)) socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test('fetchMetadata gets the info dictionary from a swarm owner process', async () => {
  const space = new Workspace();
  try {
    const file = space.file('data.bin', 700_000, 3);
    const owner = await space.owner(file);
    const torrent = readFileSync(space.path('data.bin.torrent'));
    const span = findDictionaryValueSpan(torrent, 'info');
    assert.ok(span);
    const info = torrent.subarray(span?.start, span?.end);
    const result = await fetchMetadata({
      infoHash: sha1(info),
      peerId: PEER_ID,
      peers: [{ host: '127.0.0.1', port: owner.port }],
      sha1,
      totalTimeoutMs: 20_000,
    });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.error));
    if (result.ok) assert.ok(Buffer.from(result.info).equals(info));
  } finally {
    await space.close();
  }
});

test('fetchMetadata drops a lying peer with a typed error and goes on to an honest one', async () => {
  const info = infoOf(40_000);
  const infoHash = sha1(info);
  const lie = info.slice();
  lie[20_000] = 0x41 + (((info[20_000] as number) + 1) % 26);
  const liar = await fakePeer(infoHash, lie);
  const honest = await fakePeer(infoHash, info);
  try {
    const failures: string[] = [];
    const result = await fetchMetadata({
      infoHash,
      peerId: PEER_ID,
      peers: [
        { host: '127.0.0.1', port: liar.port },
        { host: '127.0.0.1', port: honest.port },
      ],
      sha1,
      totalTimeoutMs: 10_000,
      concurrency: 1,
      attemptsPerPeer: 3,
      onFailure: (failure) => failures.push(`${failure.peer} ${failure.code}`),
    });
    assert.ok(result.ok, JSON.stringify(!result.ok && result.error));
    if (!result.ok) return;
    assert.ok(Buffer.from(result.info).equals(Buffer.from(info)));
    assert.is(result.peer, `127.0.0.1:${honest.port}`);
    assert.equal(failures, [`127.0.0.1:${liar.port} metadata-hash-mismatch`]);
    assert.is(liar.connections(), 1, 'a liar is not asked again');
  } finally {
    await liar.close();
    await honest.close();
  }
});

test('fetchMetadata refuses an oversized metadata_size and retries an unreachable peer boundedly', async () => {
  const info = infoOf(1000);
  const infoHash = sha1(info);
  const oversized = await fakePeer(infoHash, info, 64 * 1024 * 1024);
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  try {
    const result = await fetchMetadata({
      infoHash,
      peerId: PEER_ID,
      peers: [
        { host: '127.0.0.1', port: oversized.port },
        { host: '127.0.0.1', port: deadPort },
      ],
      sha1,
      totalTimeoutMs: 10_000,
      attemptsPerPeer: 2,
    });
    assert.not.ok(result.ok);
    if (result.ok) return;
    assert.is(result.error.code, 'all-peers-failed');
    const codes = result.error.failures.map((failure) => failure.code).sort();
    assert.equal(codes, ['connect-failed', 'connect-failed', 'metadata-too-large']);
    assert.is(oversized.connections(), 1);
  } finally {
    await oversized.close();
  }
});

test('fetchMetadata with no peers, and a total deadline that ends a silent peer', async () => {
  const infoHash = sha1(infoOf(100));
  const none = await fetchMetadata({ infoHash, peerId: PEER_ID, peers: [], sha1, totalTimeoutMs: 1000 });
  assert.equal(!none.ok && none.error.code, 'no-peers');
  const silent = net.createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const started = Date.now();
    const result = await fetchMetadata({
      infoHash,
      peerId: PEER_ID,
      peers: [{ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port }],
      sha1,
      totalTimeoutMs: 500,
    });
    assert.equal(!result.ok && result.error.code, 'timed-out');
    assert.ok(Date.now() - started < 3000);
  } finally {
    silent.close();
  }
});

// ------------------------------------------------------------------------------------------------
// The commands

test('swarm peer --torrent MAGNET fetches the metadata and downloads; bad links are usage errors', async () => {
  const space = new Workspace();
  try {
    const file = space.file('clip.bin', 600_000, 5);
    const seed = space.spawn(['seed', file, '--port', '0']);
    const listening = await seed.waitFor((line) => line.event === 'listening');
    const peer = space.spawn([
      'peer',
      '--torrent',
      String(listening.magnet),
      '--connect',
      `127.0.0.1:${listening.port}`,
      ...space.peerArgs('7'),
      '--exit-when-done',
    ]);
    await peer.waitFor((line) => line.event === 'metadata');
    assert.is(await peer.exited, 0);
    assert.is(await sha256File(space.path('Peer7Dir', 'clip.bin')), await sha256File(file));
    assert.ok(readFileSync(space.path('Peer7Dir', 'clip.bin.torrent')).length > 0);
    const bad = space.spawn(['get', 'magnet:?xt=urn:btih:1234', '-o', space.path('x.bin')]);
    assert.is(await bad.exited, 2);
  } finally {
    await space.close();
  }
});

test.run();
