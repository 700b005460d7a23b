import fc from 'fast-check';
import { fuzzScenarioArbitrary } from './src/sim/fuzz.ts';
import { parseScenario } from './src/sim/scenario.ts';
import { runScenario } from './src/sim/simulator.ts';
const rows: any[] = [];
fc.assert(fc.property(fuzzScenarioArbitrary, (input) => {
  const p: any = parseScenario(input); const t = performance.now();
  const r = runScenario(p.scenario); const ms = performance.now() - t;
  rows.push({ ms, events: r.events, sim: r.simulatedMs, peers: input.peers?.length, size: input.file.sizeBytes, faults: (input.faults ?? []).map((f: any) => f.kind).join(',') });
  return true;
}), { numRuns: 2000, seed: 1 });
const tot = rows.reduce((a, r) => a + r.ms, 0); const ev = rows.reduce((a, r) => a + r.events, 0);
console.log('total ms', tot.toFixed(0), 'events', ev, 'us/event', (1000 * tot / ev).toFixed(2));
rows.sort((a, b) => b.ms - a.ms);
let cum = 0; for (const [i, r] of rows.entries()) { cum += r.ms; if ([0,9,49,99,199,499,999].includes(i)) console.log(`top ${i+1}: ${(100*cum/tot).toFixed(0)}% of time`); }
for (const r of rows.slice(0, 8)) console.log(JSON.stringify(r));
