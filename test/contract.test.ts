/**
 * One contract, two drivers: the same scenario run in the simulator and over real sockets must
 * end with byte-identical files at every peer (as hono runs one router test suite per router).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runLocalSwarm } from '../src/app/local-swarm.ts';
import { scenarioFile } from '../src/sim/memory-disk.ts';
import { parseScenarioText, type Scenario } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/simulator.ts';
import { Workspace } from './support/processes.ts';

interface ContractResult {
  readonly fileSha256: string;
  readonly peerFileSha256: readonly (string | null)[];
}

interface Driver {
  readonly name: string;
  run(scenario: Scenario): Promise<ContractResult>;
}

const simulator: Driver = {
  name: 'simulator',
  run: async (scenario) => {
    const result = runScenario(scenario);
    assert.is(result.failure, undefined, result.failure?.message);
    return { fileSha256: result.fileSha256, peerFileSha256: result.peers.map((peer) => peer.fileSha256) };
  },
};

const sockets: Driver = {
  name: 'real sockets',
  run: async (scenario) => {
    const space = new Workspace();
    try {
      const file = space.path('scenario.bin');
      writeFileSync(file, scenarioFile(scenario).bytes);
      const result = await runLocalSwarm({
        file,
        dir: space.dir,
        peers: scenario.peers.length + scenario.peerGroups.reduce((sum, group) => sum + group.count, 0),
        topology: scenario.topology.kind,
        picker: scenario.policies.picker,
        phases: scenario.policies.phases,
        timeoutMs: 120_000,
      });
      assert.ok(result.ok, result.failure);
      return { fileSha256: result.fileSha256, peerFileSha256: result.peers.map((peer) => peer.fileSha256) };
    } finally {
      await space.close();
    }
  },
};

function load(path: string): Scenario {
  const parsed = parseScenarioText(readFileSync(path, 'utf8'));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.scenario;
}

const scenarios = ['scenarios/ring6.json'];
const fileHashes = new Map<string, string>();

for (const path of scenarios) {
  for (const driver of [simulator, sockets]) {
    test(`${path} over ${driver.name}: every peer ends with the owner's exact file`, async () => {
      const scenario = load(path);
      const result = await driver.run(scenario);
      assert.ok(result.peerFileSha256.length > 0);
      for (const hash of result.peerFileSha256) assert.is(hash, result.fileSha256);
      const earlier = fileHashes.get(path);
      if (earlier !== undefined)
        assert.is(result.fileSha256, earlier, 'both drivers distributed the same bytes');
      fileHashes.set(path, result.fileSha256);
    });
  }
}

test.run();
