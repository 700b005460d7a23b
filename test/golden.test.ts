/**
 * The behaviour guard: every scenario of 50 peers or fewer, at seeds 1, 2 and 3, must give the trace
 * digest recorded in test/golden/digests.json. A refactor never changes this file; a change of
 * behaviour updates it in the same commit and says why. `UPDATE_GOLDEN=1` rewrites it.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseScenarioText, planPeers, type Scenario } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/simulator.ts';

const GOLDEN = 'test/golden/digests.json';
const SEEDS = [1, 2, 3] as const;
const MAX_PEERS = 50;

function load(path: string): Scenario {
  const result = parseScenarioText(readFileSync(path, 'utf8'));
  if (!result.ok) throw new Error(`${path}: ${JSON.stringify(result.issues)}`);
  return result.scenario;
}

const small = readdirSync('scenarios')
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => ({ name, scenario: load(`scenarios/${name}`) }))
  .filter(({ scenario }) => planPeers(scenario).length <= MAX_PEERS);

const actual: Record<string, string> = {};
for (const { name, scenario } of small) {
  for (const seed of SEEDS) actual[`${name} seed ${seed}`] = runScenario(scenario, { seed }).digest;
}

test('the golden set covers the small scenarios, and only those', () => {
  assert.ok(small.length >= 4, `only ${small.length} scenarios of ${MAX_PEERS} peers or fewer`);
});

if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, `${JSON.stringify(actual, null, 2)}\n`);
const expected = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Record<string, string>;

test('every small scenario at seeds 1, 2, 3 gives its recorded digest', () => {
  assert.equal(Object.keys(actual).sort(), Object.keys(expected).sort(), 'the set of runs changed');
  for (const key of Object.keys(expected)) {
    assert.is(actual[key], expected[key], `${key}: the trace changed`);
  }
});

test.run();
