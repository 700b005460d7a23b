/**
 * Issue #19 in the simulator: peer exchange over the modelled wire, the owner and its tracker gone,
 * and peers that join knowing one live peer only.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, ownerGoneArbitrary } from '../src/sim/fuzz.ts';
import { parseScenarioText, type Scenario } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/simulator.ts';

function load(path: string): Scenario {
  const result = parseScenarioText(readFileSync(path, 'utf8'));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.scenario;
}

const ownerGone = load('scenarios/owner-gone.json');
const JOINERS = 20;
const FIRST_JOIN_MS = 5_000;

/** Each node's distinct peers it dialled and reached, and the time of the owner's last activity. */
function run(scenario: Scenario) {
  const connected = new Map<string, Set<string>>();
  let ownerLastMs = 0;
  const result = runScenario(scenario, {
    onActivity: (nowMs, node, event) => {
      if (node === scenario.owner.id) ownerLastMs = nowMs;
      if (event.kind !== 'connected' || event.direction !== 'outbound') return;
      const peers = connected.get(node) ?? new Set<string>();
      peers.add(event.peer);
      connected.set(node, peers);
    },
  });
  return { result, connected, ownerLastMs };
}

test('owner-gone: the owner leaves once the swarm holds every chunk, 20 joiners know one peer, all 50 finish', () => {
  const { result, connected, ownerLastMs } = run(ownerGone);
  assert.is(result.failure, undefined);
  assert.is(result.peers.length, 50);
  for (const peer of result.peers) {
    assert.ok(peer.complete, `${peer.id} incomplete`);
    assert.is(peer.fileSha256, result.fileSha256);
  }
  assert.ok(ownerLastMs < FIRST_JOIN_MS, `the owner was still active at ${ownerLastMs} ms`);
  const joiners = result.peers.slice(-JOINERS);
  for (const joiner of joiners) {
    assert.is(joiner.chunksFromOwner, 0, `${joiner.id} took chunks from the owner`);
    // Told of one peer, it dialled more, learned through peer exchange.
    const met = connected.get(joiner.id)?.size ?? 0;
    assert.ok(met >= 5, `${joiner.id} dialled only ${met} peers`);
  }
});

test('owner-gone without peer exchange: each joiner dials only the one peer it was told of', () => {
  const plain: Scenario = { ...ownerGone, policies: { ...ownerGone.policies, peerExchange: false } };
  const { result, connected } = run(plain);
  assert.is(result.failure, undefined);
  for (const joiner of result.peers.slice(-JOINERS)) {
    assert.is(
      connected.get(joiner.id)?.size,
      1,
      `${joiner.id} dialled ${connected.get(joiner.id)?.size} peers`,
    );
  }
});

test('fuzz: random join times, the owner leaving, joiners knowing one live peer: every peer finishes', () => {
  fc.assert(
    fc.property(ownerGoneArbitrary, (input) => {
      const failure = check(input);
      assert.is(failure, undefined, failure?.message);
      return true;
    }),
    { numRuns: 60, seed: 20261126 },
  );
});

test.run();
