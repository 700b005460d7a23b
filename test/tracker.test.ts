import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type BencodeDictionary, decodeBencode, latin1Bytes } from '../src/engine/bencode.ts';
import { nodeNameOf } from '../src/engine/peer-id.ts';
import { Random } from '../src/engine/random.ts';
import {
  ANNOUNCE_PARAMS,
  type AnnounceQuery,
  encodeBinaryParam,
  MAX_NUMWANT,
  parseAnnounceQuery,
} from '../src/transport/announce-query.ts';
import { type AnnounceResult, DOWNLOAD_FROM_KEY } from '../src/transport/announce-response.ts';
import { normaliseAddress } from '../src/transport/ip-address.ts';
import { Tracker, type TrackerOptions } from '../src/transport/tracker.ts';
import {
  type AnnounceOutcome,
  type AnnounceRequest,
  announce,
  fetchTorrent,
  parseAnnounceResponse,
  parseHostPort,
} from '../src/transport/tracker-client.ts';

// Bytes that need escaping: NUL, '%', '&', '+', '=', '?', '#', high bytes.
const INFO_HASH = Uint8Array.from([
  0x00, 0x25, 0x26, 0x2b, 0x3d, 0x3f, 0x23, 0xff, 0x80, 0x41, 0x7e, 0x2d, 0x20, 0x0a, 0x10, 0x99, 0xab, 0xcd,
  0xef, 0x01,
]);
const OTHER_HASH = new Uint8Array(20).fill(7);
const TORRENT = latin1Bytes('d8:announce0:4:infod6:lengthi5e4:name1:x12:piece lengthi1e6:pieces0:ee');
const LOCAL = '127.0.0.1';

/** One of our peer ids: `-SW0100-`, the name padded with '.', a 4-char tail. */
function ourId(name: string, tail = 'aaaa'): Uint8Array {
  return latin1Bytes(`-SW0100-${name.padEnd(8, '.')}${tail}`);
}

function makeTracker(options: Partial<TrackerOptions> = {}): Tracker {
  const random = new Random(42);
  return new Tracker({
    infoHash: INFO_HASH,
    torrentBytes: TORRENT,
    intervalSeconds: 2,
    random: () => random.nextUint32() / 2 ** 32,
    ...options,
  });
}

function query(peerId: Uint8Array, port: number, extra: Partial<AnnounceQuery> = {}): AnnounceQuery {
  return {
    infoHash: INFO_HASH,
    peerId,
    port,
    uploaded: 0,
    downloaded: 0,
    left: 100,
    event: 'empty',
    compact: true,
    noPeerId: false,
    numwant: 50,
    ...extra,
  };
}

function ok(result: AnnounceResult): Extract<AnnounceResult, { ok: true }> {
  if (!result.ok) throw new Error(`announce failed: ${result.failure}`);
  return result;
}

function announceUrl(fields: Record<string, string>): string {
  return `/announce?${Object.entries(fields)
    .map(([key, value]) => `${key}=${value}`)
    .join('&')}`;
}

function goodFields(peerId: Uint8Array, port: number): Record<string, string> {
  return {
    info_hash: encodeBinaryParam(INFO_HASH),
    peer_id: encodeBinaryParam(peerId),
    port: String(port),
    uploaded: '0',
    downloaded: '0',
    left: '10',
    compact: '1',
  };
}

function failureOf(body: Uint8Array): string | undefined {
  const decoded = decodeBencode(body);
  assert.ok(decoded.ok, 'the answer is bencoded');
  if (!decoded.ok || !(decoded.value instanceof Map)) return undefined;
  const reason = decoded.value.get('failure reason');
  return reason instanceof Uint8Array ? new TextDecoder().decode(reason) : undefined;
}

const ports = (result: Extract<AnnounceResult, { ok: true }>): number[] =>
  result.peers.map((peer) => peer.port).sort((a, b) => a - b);

// ---------------------------------------------------------------------------------------------------
// Query parsing

test('binary params round-trip through encodeBinaryParam and the query parser', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 20, maxLength: 20 }),
      fc.uint8Array({ minLength: 20, maxLength: 20 }),
      (hash, id) => {
        const parsed = parseAnnounceQuery(
          `info_hash=${encodeBinaryParam(hash)}&peer_id=${encodeBinaryParam(id)}&port=1&key=zz&left=3`,
        );
        assert.ok(parsed.ok);
        if (!parsed.ok) return;
        assert.equal(parsed.query.infoHash, hash);
        assert.equal(parsed.query.peerId, id);
        assert.is(parsed.query.left, 3);
      },
    ),
    { seed: 1, numRuns: 200 },
  );
  assert.is(encodeBinaryParam(latin1Bytes('aZ9-._~ %&+')), 'aZ9-._~%20%25%26%2B');
});

test('query parser defaults and edge values', () => {
  const parsed = parseAnnounceQuery(
    `info_hash=${encodeBinaryParam(INFO_HASH)}&peer_id=${encodeBinaryParam(ourId('a'))}&port=65535&numwant=-1&event=paused&compact=0&no_peer_id=1&uploaded=-5`,
  );
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.is(parsed.query.port, 65535);
  assert.is(parsed.query.numwant, 50);
  assert.is(parsed.query.event, 'empty');
  assert.is(parsed.query.compact, false);
  assert.is(parsed.query.noPeerId, true);
  assert.is(parsed.query.uploaded, 0);
  assert.is(parsed.query.left, undefined);
  const many = parseAnnounceQuery(
    `info_hash=${encodeBinaryParam(INFO_HASH)}&peer_id=${encodeBinaryParam(ourId('a'))}&port=1&numwant=100000`,
  );
  assert.is(many.ok && many.query.numwant, MAX_NUMWANT);
});

test('node names come from our peer ids only', () => {
  assert.is(nodeNameOf(ourId('peer1')), 'peer1');
  assert.is(nodeNameOf(ourId('abcdefgh')), 'abcdefgh');
  assert.is(nodeNameOf(ourId('')), undefined);
  assert.is(nodeNameOf(latin1Bytes('-qB4500-abcdefghijkl')), undefined);
  assert.is(normaliseAddress('::ffff:127.0.0.1'), '127.0.0.1');
  assert.is(normaliseAddress('0:0:0:0:0:0:0:1'), '::1');
  assert.is(normaliseAddress('fe80::1%eth0'), 'fe80::1');
  assert.is(normaliseAddress('localhost'), undefined);
});

// ---------------------------------------------------------------------------------------------------
// Announce core

test('compact peers exclude the asker', () => {
  const tracker = makeTracker();
  tracker.announce(query(ourId('a'), 7001), LOCAL);
  tracker.announce(query(ourId('b'), 7002), LOCAL);
  const body = tracker.respondToAnnounce(announceUrl(goodFields(ourId('c'), 7003)), LOCAL);
  const parsed = parseAnnounceResponse(body);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  assert.equal(parsed.response.peers.map((peer) => `${peer.host}:${peer.port}`).sort(), [
    '127.0.0.1:7001',
    '127.0.0.1:7002',
  ]);
  assert.is(parsed.response.intervalSeconds, 2);
  assert.is(parsed.response.minIntervalSeconds, 1);
  assert.is(parsed.response.incomplete, 3);
  assert.is(parsed.response.complete, 0);
  // Raw check of the compact form: 6 bytes per peer, port big-endian.
  const decoded = decodeBencode(body);
  const peers = decoded.ok && decoded.value instanceof Map ? decoded.value.get('peers') : undefined;
  assert.instance(peers, Uint8Array);
  assert.is((peers as Uint8Array).length, 12);
  assert.equal([...(peers as Uint8Array).subarray(0, 4)], [127, 0, 0, 1]);
});

test('ring: one peer has no download neighbour', () => {
  const tracker = makeTracker();
  const result = ok(tracker.announce(query(ourId('solo'), 7000), LOCAL));
  assert.is(result.downloadFrom, undefined);
  assert.equal(result.peers, []);
  const decoded = decodeBencode(
    tracker.respondToAnnounce(announceUrl(goodFields(ourId('solo'), 7000)), LOCAL),
  );
  assert.ok(decoded.ok && decoded.value instanceof Map && !decoded.value.has(DOWNLOAD_FROM_KEY));
});

test('the seed beside the tracker is named to every asker, first, but is never a ring neighbour', () => {
  const seed = { peerId: ourId('owner'), host: LOCAL, port: 6881 };
  const tracker = makeTracker({ seed });
  const solo = ok(tracker.announce(query(ourId('solo'), 7000), LOCAL));
  assert.equal(
    solo.peers.map((peer) => peer.port),
    [6881],
  );
  assert.is(solo.downloadFrom, undefined, 'one peer and the seed make no ring');
  assert.is(solo.complete, 1, 'the seed counts as a seeder');
  tracker.announce(query(ourId('p1'), 7001), LOCAL);
  const again = ok(tracker.announce(query(ourId('solo'), 7000), LOCAL));
  assert.equal(
    again.peers.map((peer) => peer.port),
    [6881, 7001],
  );
  assert.is(again.downloadFrom?.port, 7001);
  const one = ok(tracker.announce(query(ourId('solo'), 7000, { numwant: 1 }), LOCAL));
  assert.equal(
    one.peers.map((peer) => peer.port),
    [6881],
    'numwant counts the seed',
  );
  const none = ok(tracker.announce(query(ourId('solo'), 7000, { numwant: 0 }), LOCAL));
  assert.equal(none.peers, []);
});

test('ring: two peers download from each other', () => {
  const tracker = makeTracker();
  tracker.announce(query(ourId('p0'), 7000), LOCAL);
  const second = ok(tracker.announce(query(ourId('p1'), 7001), LOCAL));
  const first = ok(tracker.announce(query(ourId('p0'), 7000), LOCAL));
  assert.is(first.downloadFrom?.port, 7001);
  assert.is(second.downloadFrom?.port, 7000);
});

test('ring: five peers in join order, k from k+1 and the last from the first', () => {
  const tracker = makeTracker();
  // Join in an order unrelated to names or ports.
  const joins = [
    { name: 'echo', port: 7400 },
    { name: 'alpha', port: 7100 },
    { name: 'dee', port: 7300 },
    { name: 'bravo', port: 7500 },
    { name: 'charlie', port: 7200 },
  ];
  for (const join of joins) tracker.announce(query(ourId(join.name), join.port, { event: 'started' }), LOCAL);
  for (let k = 0; k < joins.length; k++) {
    const join = joins[k] as (typeof joins)[number];
    const next = joins[(k + 1) % joins.length] as (typeof joins)[number];
    const result = ok(tracker.announce(query(ourId(join.name), join.port), LOCAL));
    assert.is(result.downloadFrom?.port, next.port, `${join.name} downloads from ${next.name}`);
    assert.is(result.downloadFrom?.host, LOCAL);
    assert.is(result.peers.length, 4);
  }
  assert.equal(
    tracker.peers().map((peer) => peer.name),
    joins.map((join) => join.name),
  );
});

test('a restarted peer keeps its slot and the others learn its new port', () => {
  const tracker = makeTracker();
  const names = ['p0', 'p1', 'p2', 'p3', 'p4'];
  names.forEach((name, i) => {
    tracker.announce(query(ourId(name, 'aaaa'), 7000 + i, { event: 'started' }), LOCAL);
  });
  // p2 crashes (no stopped) and comes back with a new random tail on a new port.
  const back = ok(tracker.announce(query(ourId('p2', 'zzzz'), 9002, { event: 'started' }), LOCAL));
  assert.is(back.downloadFrom?.port, 7003, 'p2 still downloads from p3');
  const p1 = ok(tracker.announce(query(ourId('p1', 'aaaa'), 7001), LOCAL));
  assert.is(p1.downloadFrom?.port, 9002, 'p1 now downloads from the new p2');
  assert.ok(ports(p1).includes(9002));
  assert.not.ok(ports(p1).includes(7002), 'the old address is gone');
  const list = tracker.peers();
  assert.is(list.length, 5);
  assert.equal(
    list.map((peer) => peer.name),
    names,
  );
  assert.equal(list[2]?.peerId, ourId('p2', 'zzzz'));
  assert.is(list[2]?.port, 9002);
});

test('stopped removes the peer; a name that comes back takes its old position', () => {
  const tracker = makeTracker();
  ['p0', 'p1', 'p2'].forEach((name, i) => {
    tracker.announce(query(ourId(name), 7000 + i), LOCAL);
  });
  // A stopped from a stale id of the same name is ignored.
  ok(tracker.announce(query(ourId('p1', 'old0'), 7001, { event: 'stopped' }), LOCAL));
  assert.is(tracker.peers().length, 3);
  const stopped = ok(tracker.announce(query(ourId('p1'), 7001, { event: 'stopped' }), LOCAL));
  assert.equal(stopped.peers, []);
  assert.equal(
    tracker.peers().map((peer) => peer.name),
    ['p0', 'p2'],
  );
  const p0 = ok(tracker.announce(query(ourId('p0'), 7000), LOCAL));
  assert.is(p0.downloadFrom?.port, 7002, 'the ring closes over the gap');
  assert.equal(ports(p0), [7002]);
  tracker.announce(query(ourId('p1', 'new0'), 8001, { event: 'started' }), LOCAL);
  assert.equal(
    tracker.peers().map((peer) => peer.name),
    ['p0', 'p1', 'p2'],
  );
  assert.is(ok(tracker.announce(query(ourId('p0'), 7000), LOCAL)).downloadFrom?.port, 8001);
});

test('peers not heard from within the timeout are dropped', () => {
  let now = 0;
  const tracker = makeTracker({ now: () => now });
  tracker.announce(query(ourId('old'), 7000), LOCAL);
  now = 3000;
  tracker.announce(query(ourId('young'), 7001), LOCAL);
  now = 6000; // default timeout: 3 × 2 s
  assert.is(tracker.peers().length, 2);
  now = 6001;
  assert.equal(
    tracker.peers().map((peer) => peer.name),
    ['young'],
  );
  const result = ok(tracker.announce(query(ourId('young'), 7001), LOCAL));
  assert.equal(result.peers, []);
  assert.is(result.downloadFrom, undefined);
  now = 20_000;
  const again = ok(tracker.announce(query(ourId('old'), 7000), LOCAL));
  assert.equal(again.peers, []);
  // The old name kept its join position.
  tracker.announce(query(ourId('young'), 7001), LOCAL);
  assert.equal(
    tracker.peers().map((peer) => peer.name),
    ['old', 'young'],
  );
});

test('a new id at a tracked address replaces the stale record', () => {
  const tracker = makeTracker();
  const foreign = (tail: string): Uint8Array => latin1Bytes(`-qB4500-${tail.padEnd(12, 'x')}`);
  tracker.announce(query(foreign('one'), 7000), LOCAL);
  tracker.announce(query(foreign('two'), 7000), LOCAL);
  assert.equal(
    tracker.peers().map((peer) => peer.peerId),
    [foreign('two')],
  );
  assert.is(tracker.peers()[0]?.key.startsWith('id:'), true);
});

test('numwant samples distinct peers, never the asker, deterministically', () => {
  const run = (): number[] => {
    const tracker = makeTracker();
    for (let i = 0; i < 30; i++) tracker.announce(query(ourId(`n${i}`), 7000 + i), LOCAL);
    return ports(ok(tracker.announce(query(ourId('n7'), 7007, { numwant: 5 }), LOCAL)));
  };
  const first = run();
  assert.is(first.length, 5);
  assert.is(new Set(first).size, 5);
  assert.not.ok(first.includes(7007));
  assert.equal(run(), first);
  const tracker = makeTracker();
  tracker.announce(query(ourId('a'), 7000), LOCAL);
  assert.equal(ok(tracker.announce(query(ourId('b'), 7001, { numwant: 0 }), LOCAL)).peers, []);
});

test('compact=0 answers in the dictionary model', () => {
  const tracker = makeTracker();
  tracker.announce(query(ourId('a'), 7000), LOCAL);
  const fields = { ...goodFields(ourId('b'), 7001), compact: '0' };
  const decoded = decodeBencode(tracker.respondToAnnounce(announceUrl(fields), LOCAL));
  assert.ok(decoded.ok && decoded.value instanceof Map);
  const peers = (decoded.value as BencodeDictionary).get('peers');
  assert.ok(Array.isArray(peers));
  const entry = (peers as BencodeDictionary[])[0] as BencodeDictionary;
  assert.equal(entry.get('ip'), latin1Bytes(LOCAL));
  assert.is(entry.get('port'), 7000);
  assert.equal(entry.get('peer id'), ourId('a'));
  const parsed = parseAnnounceResponse(tracker.respondToAnnounce(announceUrl(fields), LOCAL));
  assert.equal(parsed.ok && parsed.response.peers, [{ host: LOCAL, port: 7000 }]);
  assert.equal(parsed.ok && parsed.response.downloadFrom, { host: LOCAL, port: 7000 });
  const noIds = decodeBencode(tracker.respondToAnnounce(announceUrl({ ...fields, no_peer_id: '1' }), LOCAL));
  const first = noIds.ok
    ? ((noIds.value as BencodeDictionary).get('peers') as BencodeDictionary[])[0]
    : undefined;
  assert.is(first?.has('peer id'), false);
});

test('the ip parameter counts only when loopback, from loopback', () => {
  const tracker = makeTracker();
  tracker.announce(query(ourId('a'), 7000, { ip: '127.0.0.5' }), '::ffff:127.0.0.1');
  tracker.announce(query(ourId('b'), 7001, { ip: '10.0.0.1' }), '::ffff:127.0.0.1');
  tracker.announce(query(ourId('c'), 7002, { ip: '127.0.0.9' }), '192.0.2.7');
  assert.equal(
    tracker.peers().map((peer) => peer.host),
    ['127.0.0.5', '127.0.0.1', '192.0.2.7'],
  );
});

test('seeders and leechers are counted; scrape reports them', () => {
  const tracker = makeTracker();
  tracker.announce(query(ourId('a'), 7000, { left: 0 }), LOCAL);
  tracker.announce(query(ourId('b'), 7001, { left: 5 }), LOCAL);
  const c = ok(tracker.announce(query(ourId('c'), 7002, { left: 0, event: 'completed' }), LOCAL));
  assert.is(c.complete, 2);
  assert.is(c.incomplete, 1);
  const decoded = decodeBencode(tracker.scrape(`info_hash=${encodeBinaryParam(INFO_HASH)}`));
  assert.ok(decoded.ok);
  const files = decoded.ok
    ? ((decoded.value as BencodeDictionary).get('files') as BencodeDictionary)
    : undefined;
  const stats = files?.get(String.fromCharCode(...INFO_HASH)) as BencodeDictionary | undefined;
  assert.is(stats?.get('complete'), 2);
  assert.is(stats?.get('incomplete'), 1);
  assert.is(stats?.get('downloaded'), 1);
  const other = decodeBencode(tracker.scrape(`info_hash=${encodeBinaryParam(OTHER_HASH)}`));
  assert.is(other.ok && ((other.value as BencodeDictionary).get('files') as BencodeDictionary).size, 0);
});

test('bad requests get a bencoded failure reason', () => {
  const tracker = makeTracker({ maxPeers: 2 });
  const cases: [Record<string, string>, RegExp][] = [
    [{ ...goodFields(ourId('a'), 7000), info_hash: encodeBinaryParam(OTHER_HASH) }, /info_hash/],
    [
      { ...goodFields(ourId('a'), 7000), info_hash: encodeBinaryParam(INFO_HASH.subarray(0, 19)) },
      /info_hash/,
    ],
    [{ ...goodFields(ourId('a'), 7000), peer_id: 'short' }, /peer_id/],
    [{ ...goodFields(ourId('a'), 7000), port: '0' }, /port/],
    [{ ...goodFields(ourId('a'), 7000), port: '65536' }, /port/],
    [{ ...goodFields(ourId('a'), 7000), port: '8x' }, /port/],
    [{ ...goodFields(ourId('a'), 7000), left: 'lots' }, /left/],
    [{ ...goodFields(ourId('a'), 7000), info_hash: '%zz' }, /percent/],
    [{ ...goodFields(ourId('a'), 7000), port: '1&port=2' }, /more than once/],
    [{ peer_id: encodeBinaryParam(ourId('a')), port: '1' }, /missing info_hash/],
    [{ ...goodFields(ourId('a'), 7000), key: 'x'.repeat(5000) }, /too long/],
  ];
  for (const [fields, expected] of cases) {
    const reason = failureOf(tracker.respondToAnnounce(announceUrl(fields), LOCAL));
    assert.ok(reason !== undefined && expected.test(reason), `${reason} should match ${expected}`);
  }
  assert.is(
    failureOf(tracker.respondToAnnounce(announceUrl(goodFields(ourId('a'), 7000)), 'not-an-ip')),
    'cannot tell your address',
  );
  tracker.announce(query(ourId('a'), 7000), LOCAL);
  tracker.announce(query(ourId('b'), 7001), LOCAL);
  const full = tracker.announce(query(ourId('c'), 7002), LOCAL);
  assert.ok(!full.ok && /full/.test(full.failure));
  assert.ok(tracker.announce(query(ourId('b', 'bbbb'), 7003), LOCAL).ok, 'known names still get in');
});

test('random query strings never throw', () => {
  const tracker = makeTracker({ maxPeers: 50 });
  const hexByte = fc.integer({ min: 0, max: 255 }).map((byte) => `%${byte.toString(16).padStart(2, '0')}`);
  const piece = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('%', '%g', '+', '=', '&', '&&', '?', '-', '0', '65535', '-1', 'started', 'stopped'),
    hexByte,
    fc.uint8Array({ minLength: 20, maxLength: 20 }).map(encodeBinaryParam),
  );
  const key = fc.constantFrom(...ANNOUNCE_PARAMS, 'key');
  const structured = fc
    .array(fc.tuple(key, fc.array(piece, { maxLength: 4 })), { maxLength: 10 })
    .map((pairs) => pairs.map(([name, parts]) => `${name}=${parts.join('')}`).join('&'));
  const withOurHash = structured.map((rest) => `info_hash=${encodeBinaryParam(INFO_HASH)}&${rest}`);
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ maxLength: 200 }), structured, withOurHash),
      fc.constantFrom(LOCAL, '::1', '::ffff:127.0.0.1', 'junk', ''),
      (text, remote) => {
        const parsed = parseAnnounceQuery(text);
        if (parsed.ok) assert.type(tracker.announce(parsed.query, remote).ok, 'boolean');
        const body = tracker.respondToAnnounce(`/announce?${text}`, remote);
        assert.ok(decodeBencode(body).ok);
        assert.ok(decodeBencode(tracker.scrape(text)).ok);
      },
    ),
    { seed: 7, numRuns: 400 },
  );
});

// ---------------------------------------------------------------------------------------------------
// Over HTTP

async function withServer(
  handler: http.RequestListener,
  body: (port: number) => Promise<void>,
): Promise<void> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, LOCAL, resolve));
  try {
    await body((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: LOCAL, port, path, method, agent: false }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (chunk: Buffer) => parts.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: new Uint8Array(Buffer.concat(parts)),
        }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

function request(
  port: number,
  peerId: Uint8Array,
  listenPort: number,
  extra: Partial<AnnounceRequest> = {},
): AnnounceRequest {
  return {
    announceUrl: `http://${LOCAL}:${port}/announce`,
    infoHash: INFO_HASH,
    peerId,
    port: listenPort,
    uploaded: 0,
    downloaded: 0,
    left: 10,
    ...extra,
  };
}

function response(outcome: AnnounceOutcome): Extract<AnnounceOutcome, { ok: true }>['response'] {
  if (!outcome.ok) throw new Error(`announce failed: ${outcome.error}`);
  return outcome.response;
}

test('client and tracker round trip over HTTP', async () => {
  const tracker = makeTracker();
  await withServer(
    (req, res) => tracker.handle(req, res),
    async (port) => {
      const a = response(
        await announce(request(port, ourId('a'), 7000, { event: 'started' }), { timeoutMs: 2000 }),
      );
      assert.equal(a.peers, []);
      assert.is(a.downloadFrom, undefined);
      const b = response(await announce(request(port, ourId('b'), 7001, { event: 'started', numwant: 10 })));
      assert.equal(b.peers, [{ host: LOCAL, port: 7000 }]);
      assert.equal(b.downloadFrom, { host: LOCAL, port: 7000 });
      assert.is(b.intervalSeconds, 2);
      assert.is(b.incomplete, 2);
      const again = response(await announce(request(port, ourId('a'), 7000)));
      assert.equal(again.downloadFrom, { host: LOCAL, port: 7001 });
      // The announce URL may carry its own query (a passkey).
      const keyed = response(
        await announce({
          ...request(port, ourId('c'), 7002),
          announceUrl: `http://${LOCAL}:${port}/announce?pk=1`,
        }),
      );
      assert.is(keyed.peers.length, 2);
      const wrong = await announce({ ...request(port, ourId('d'), 7003), infoHash: OTHER_HASH });
      assert.ok(!wrong.ok && /^tracker: unknown info_hash/.test(wrong.error));
      assert.ok(!(await announce({ ...request(port, ourId('d'), 7003), infoHash: new Uint8Array(3) })).ok);
      const stopped = await announce(request(port, ourId('a'), 7000, { event: 'stopped' }));
      assert.ok(stopped.ok);
      assert.equal(
        tracker.peers().map((peer) => peer.name),
        ['b', 'c'],
      );
    },
  );
});

test('HTTP routes: /torrent, 404, 405, oversize URL', async () => {
  const tracker = makeTracker();
  await withServer(
    (req, res) => tracker.handle(req, res),
    async (port) => {
      const torrent = await get(port, '/torrent');
      assert.is(torrent.status, 200);
      assert.is(torrent.headers['content-type'], 'application/x-bittorrent');
      assert.equal(torrent.body, TORRENT);
      const fetched = await fetchTorrent(`${LOCAL}:${port}`, { timeoutMs: 2000 });
      assert.equal(fetched.ok && fetched.bytes, TORRENT);
      assert.is((await get(port, '/nothing')).status, 404);
      assert.is((await get(port, '/announcex')).status, 404);
      assert.is((await get(port, '/torrent', 'POST')).status, 405);
      const long = await get(port, announceUrl({ ...goodFields(ourId('a'), 7000), pad: 'y'.repeat(5000) }));
      assert.is(long.status, 200);
      assert.match(failureOf(long.body) ?? '', /too long/);
      const bad = await get(port, announceUrl({ ...goodFields(ourId('a'), 7000), port: '70000' }));
      assert.match(failureOf(bad.body) ?? '', /port/);
      const small = await fetchTorrent(`${LOCAL}:${port}`, { maxBytes: 10 });
      assert.ok(!small.ok && /limit/.test(small.error));
      const missing = await fetchTorrent(`${LOCAL}:${port}`.replace(/:\d+$/, ':1'), { timeoutMs: 1000 });
      assert.not.ok(missing.ok);
      assert.ok(!(await fetchTorrent('no port here')).ok);
    },
  );
  assert.equal(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  assert.is(parseHostPort('host:0'), undefined);
});

test('client gives up on garbage, oversize and silent trackers', async () => {
  await withServer(
    (req, res) => {
      if (req.url?.startsWith('/garbage')) res.end('this is not bencode');
      else if (req.url?.startsWith('/huge')) res.end('x'.repeat(5000));
      else if (req.url?.startsWith('/error')) res.writeHead(500).end('d8:intervali5ee');
      else if (req.url?.startsWith('/failure'))
        res.writeHead(400).end('d14:failure reason6:no wayE'.replace('E', 'e'));
      else if (req.url?.startsWith('/peers')) res.end('d8:intervali5e5:peers5:abcdee');
      // anything else: never answer
    },
    async (port) => {
      const at = (path: string): AnnounceRequest => ({
        ...request(port, ourId('a'), 7000),
        announceUrl: `http://${LOCAL}:${port}${path}`,
      });
      const garbage = await announce(at('/garbage'));
      assert.ok(!garbage.ok && /not bencoded/.test(garbage.error));
      const huge = await announce(at('/huge'), { maxResponseBytes: 1000 });
      assert.ok(!huge.ok && /limit/.test(huge.error));
      const error = await announce(at('/error'));
      assert.ok(!error.ok && /HTTP 500/.test(error.error));
      const failure = await announce(at('/failure'));
      assert.ok(!failure.ok && failure.error === 'tracker: no way');
      const peers = await announce(at('/peers'));
      assert.ok(!peers.ok && /not 6 each/.test(peers.error));
      const started = Date.now();
      const hung = await announce(at('/hang'), { timeoutMs: 200 });
      const elapsed = Date.now() - started;
      assert.ok(!hung.ok && /200 ms/.test(hung.error));
      assert.ok(elapsed < 1000, `gave up after ${elapsed} ms`);
      const hungTorrent = await fetchTorrent(`${LOCAL}:${port}`, { timeoutMs: 200 });
      assert.not.ok(hungTorrent.ok);
      assert.ok(!(await announce({ ...at('/x'), announceUrl: 'https://example.invalid/announce' })).ok);
      assert.ok(!(await announce({ ...at('/x'), announceUrl: 'not a url' })).ok);
    },
  );
});

test.run();
