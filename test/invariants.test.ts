/**
 * The engine's limit checks are incremental: only connections whose counts grew since the last check
 * are looked at. These cases show that nothing over a limit slips through that a full scan would catch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Bitfield } from '../src/engine/bitfield.ts';
import type { ChunkAssembly } from '../src/engine/chunk-assembly.ts';
import { planChunks } from '../src/engine/chunking.ts';
import { type Connection, newConnectionRecord } from '../src/engine/connection.ts';
import { brokenInvariant, GrowthWatch } from '../src/engine/invariants.ts';
import { DEFAULT_LIMITS } from '../src/engine/limits.ts';
import type { Serving } from '../src/engine/serving.ts';

const plan = planChunks(1_000_000);
if (!plan.ok) throw new Error('plan');
const geometry = plan.geometry;
const limits = { ...DEFAULT_LIMITS, maxQueuedRequestsFromPeer: 2 };

function setup() {
  const connections = new Map<string, Connection>();
  const add = (id: string): Connection => {
    const conn = newConnectionRecord(id, 'inbound', id, undefined, geometry, 0);
    connections.set(id, conn);
    return conn;
  };
  const growth = new GrowthWatch();
  const assembly = { downloads: new Map(), starts: 0 };
  const rooms = {
    assembly: assembly as unknown as ChunkAssembly,
    serving: { readsInFlight: 0 } as Serving,
    growth,
  };
  const have = new Bitfield(geometry.pieceCount);
  const check = () => brokenInvariant({ limits, have, connections, rooms }, false);
  const overfill = (conn: Connection) => {
    for (let i = 0; i < 3; i++) conn.queued.push({ index: 0, begin: i * 16384, length: 16384, sequence: i });
  };
  return { connections, add, growth, check, overfill, assembly, have };
}

test('the first check scans every connection, grown or not', () => {
  const { add, check, overfill } = setup();
  overfill(add('a'));
  assert.match(check() ?? '', /queued requests from a over the limit/);
});

test('after that, a connection that grew past its limit is found', () => {
  const { add, growth, check, overfill } = setup();
  const a = add('a');
  add('b');
  assert.is(check(), undefined);
  overfill(a);
  growth.grew(a);
  assert.match(check() ?? '', /queued requests from a/);
  assert.is(check(), undefined, 'each growth is checked once');
});

test('a connection closed after it grew is not checked, as a full scan would not see it', () => {
  const { connections, add, growth, check, overfill } = setup();
  const a = add('a');
  assert.is(check(), undefined);
  overfill(a);
  growth.grew(a);
  connections.delete('a');
  assert.is(check(), undefined);
});

test('a download of a held chunk is found when a chunk is started or newly held', () => {
  const { check, assembly, have } = setup();
  assert.is(check(), undefined);
  assembly.downloads.set(2, {});
  have.set(2);
  assert.match(check() ?? '', /downloading chunk 2 that is already held/);
  assembly.downloads.set(3, {});
  assembly.starts++;
  assert.match(check() ?? '', /downloading chunk 2/);
});

test.run();
