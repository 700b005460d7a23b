/**
 * The HTML run report (#18): the recorder keeps bounded data, `npm run sim -- --report` writes a
 * self-contained page, and that page works in a real browser (Debian's chromium, driven headless
 * by playwright-core): every peer and chunk shown, the lower-bound line there, the time slider
 * changing the map, no console error. A screenshot is kept in test-artifacts/ (git-ignored).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderReport } from '../src/app/report-html.ts';
import { type RunRecord, RunRecorder } from '../src/app/run-record.ts';
import { SimReport } from '../src/app/sim-report.ts';
import { parseScenarioText, planPeers } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/simulator.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function scenario(name: string) {
  const parsed = parseScenarioText(readFileSync(join(ROOT, 'scenarios', `${name}.json`), 'utf8'));
  if (!parsed.ok) throw new Error(`${name}: ${parsed.issues.map((issue) => issue.message).join('; ')}`);
  return parsed.scenario;
}

/** The record embedded in a report page. */
function embeddedRecord(html: string): RunRecord {
  const match = /<script id="run-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html);
  if (match === null) throw new Error('no run data in the page');
  return JSON.parse(match[1] as string) as RunRecord;
}

test('the recorder keeps the first arrival per (peer, chunk) and at most 200 rate buckets', () => {
  const recorder = new RunRecorder('owner', 4);
  recorder.node('idle');
  for (let i = 0; i < 10_000; i++) {
    const from = i % 2 === 0 ? 'owner' : 'peer2';
    recorder.activity(i * 7, from, {
      kind: 'chunk-sent',
      chunk: i % 4,
      to: 'peer1',
      bytes: 100,
      chunkBytes: 100,
    });
    recorder.activity(i * 7, 'peer1', {
      kind: 'chunk-received',
      chunk: i % 4,
      from,
      bytes: 100,
      fromOwner: i % 2 === 0,
    });
  }
  const record = recorder.finish({
    title: 't',
    origin: 'simulator',
    fileBytes: 400,
    durationMs: 70_000,
    lowerBoundMs: null,
    lowerBoundNote: 'none',
  });
  assert.equal(record.peers, ['idle', 'peer1', 'peer2'], 'a sender is a peer too');
  assert.equal(record.arrivalsMs.slice(4, 8), [0, 7, 14, 21]);
  assert.equal(record.sources, '000012120000');
  assert.ok(record.rates.peersDown.length <= 200);
  const sum = (series: readonly number[]): number => series.reduce((a, b) => a + b, 0);
  assert.is(sum(record.rates.peersDown), 1_000_000);
  assert.is(sum(record.rates.ownerUp) + sum(record.rates.peersUp), 1_000_000);
  assert.equal(
    record.links.map((link) => [link.from, link.to, link.bytes]),
    [
      ['owner', 'peer1', 500_000],
      ['peer2', 'peer1', 500_000],
    ],
  );
});

test('npm run sim -- mesh50 --report writes a self-contained page with all 50 peers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-report-'));
  try {
    const out = join(dir, 'r.html');
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/app/sim-command.ts', 'scenarios/mesh50.json', '--quiet', '--report', out],
      { cwd: ROOT, encoding: 'utf8' },
    );
    assert.is(run.status, 0, run.stderr);
    const html = readFileSync(out, 'utf8');
    // Nothing is fetched: no script, stylesheet, image or link from the network.
    assert.not.match(html, /\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    assert.ok(html.includes('var uPlot='), 'uPlot is inlined');
    const ids = planPeers(scenario('mesh50')).map((plan) => plan.id);
    assert.is(ids.length, 50);
    assert.equal([...embeddedRecord(html).peers].sort(), [...ids].sort());
    for (const id of ids) assert.ok(html.includes(`data-node="${id}"`), `${id} in the topology`);

    // A folder is refused before the run: one line, exit 2.
    const refused = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/app/sim-command.ts', 'scenarios/ring6.json', '--report', dir],
      { cwd: ROOT, encoding: 'utf8' },
    );
    assert.is(refused.status, 2);
    assert.match(refused.stderr, /^sim: --report .* is a directory\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the ring6 report works in headless chromium: peers, chunks, lower bound, slider, no errors', async () => {
  const ring6 = scenario('ring6');
  const report = new SimReport(ring6);
  const result = runScenario(ring6, { onActivity: report.onActivity });
  const record = report.finish(result);
  const dir = mkdtempSync(join(tmpdir(), 'swarm-report-browser-'));
  const file = join(dir, 'ring6.html');
  writeFileSync(file, renderReport(record));
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1000, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await page.goto(pathToFileURL(file).href);

    const map = page.locator('#chunk-map');
    const peers = ring6.peers.map((peer) => peer.id);
    assert.is(await map.getAttribute('data-peers'), String(peers.length));
    assert.is(await map.getAttribute('data-chunks'), String(record.chunkCount));
    // At the end of the run every (peer, chunk) cell is held, and each peer has its bar.
    assert.is(await map.getAttribute('data-shown'), String(peers.length * record.chunkCount));
    for (const id of peers) assert.is(await page.locator(`#completion [data-peer="${id}"]`).count(), 1, id);

    const bound = page.locator('#lower-bound');
    assert.is(await bound.count(), 1);
    assert.is(await bound.getAttribute('data-ms'), String(result.lowerBoundMs));
    assert.ok((await page.locator('#rates canvas').count()) > 0, 'uPlot drew the rates');

    const pixels = (): Promise<string> =>
      map.evaluate((canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL());
    const before = await pixels();
    await page.locator('#time').fill(String(Math.round(result.simulatedMs / 2)));
    const shown = Number(await map.getAttribute('data-shown'));
    assert.ok(shown > 0 && shown < peers.length * record.chunkCount, `half-way shows ${shown} cells`);
    assert.is.not(await pixels(), before, 'the slider redraws the map');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    assert.equal(errors, []);
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
