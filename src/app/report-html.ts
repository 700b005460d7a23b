/**
 * `renderReport(record)`: a run record in, one self-contained HTML page out. Everything the page
 * needs is inlined (uPlot, its stylesheet, our script, the data), so the file opens anywhere with
 * no network. uPlot is read from node_modules when the report is made, never fetched.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PAGE_SCRIPT } from './report-page.ts';
import { completionSvg, escapeHtml, formatBytes, formatMs, linkTable, topologySvg } from './report-svg.ts';
import type { RunRecord } from './run-record.ts';

export interface ReportAssets {
  readonly uplotJs: string;
  readonly uplotCss: string;
}

let assets: ReportAssets | undefined;

/** uPlot's browser build and stylesheet, read once from the installed package. */
export function loadReportAssets(): ReportAssets {
  if (assets === undefined) {
    const require = createRequire(import.meta.url);
    const read = (path: string): string => readFileSync(require.resolve(path), 'utf8');
    assets = { uplotJs: read('uplot/dist/uPlot.iife.min.js'), uplotCss: read('uplot/dist/uPlot.min.css') };
  }
  return assets;
}

/** Text for inside a <script> or <style>: nothing in it may close the element early. */
function inline(text: string): string {
  return text.replace(/<\/(script|style)/gi, '<\\/$1');
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 960px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.meta { color: #555; margin: 0; }
.note { color: #555; font-size: 13px; }
.legend span { display: inline-block; margin-right: 16px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin-right: 4px; border: 1px solid #bbb; }
#map-scroll { max-height: 620px; overflow: auto; border: 1px solid #ddd; }
#chunk-map { display: block; image-rendering: pixelated; }
.slider { display: flex; gap: 12px; align-items: center; margin: 8px 0; }
.slider input { flex: 1; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
#completion .bar { fill: #2b83ba; }
#completion .incomplete { fill: #d7191c; opacity: 0.25; }
#completion .grid { stroke: #eee; }
#completion .axis { stroke: #999; }
#lower-bound { stroke: #d7191c; stroke-width: 2; stroke-dasharray: 6 4; }
#completion .bound-label { fill: #d7191c; font-weight: 600; font-size: 12px; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
#topology .link { stroke: #2b83ba; stroke-opacity: 0.55; stroke-linecap: round; }
#topology .link.idle { stroke: #bbb; stroke-dasharray: 3 3; }
#topology.dense .link { stroke-opacity: 0.2; }
#topology .node.owner { fill: #e08214; }
#topology .node.peer { fill: #2b83ba; stroke: #fff; }
#topology .node.other { fill: #999; }
table { border-collapse: collapse; margin-top: 8px; }
caption { text-align: left; color: #555; padding-bottom: 4px; }
th, td { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
`;

function swatch(colour: string, text: string): string {
  return `<span><i class="swatch" style="background:${colour}"></i>${escapeHtml(text)}</span>`;
}

export function renderReport(record: RunRecord, pageAssets: ReportAssets = loadReportAssets()): string {
  const peers = record.peers.length;
  const done = record.completedAtMs.filter((ms) => ms !== null).length;
  const bound =
    record.lowerBoundMs === null
      ? `<p id="no-lower-bound" class="note">No lower bound is shown: ${escapeHtml(record.lowerBoundNote)}</p>`
      : `<p class="note">Lower bound ${escapeHtml(formatMs(record.lowerBoundMs))}: ${escapeHtml(record.lowerBoundNote)}</p>`;
  const clock = record.origin === 'simulator' ? 'virtual time' : 'wall-clock time since the start';
  const data = JSON.stringify(record).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>swarm run report: ${escapeHtml(record.title)}</title>
<link rel="icon" href="data:,">
<style>${inline(pageAssets.uplotCss)}</style>
<style>${STYLE}</style>
</head>
<body>
<h1>swarm run report: ${escapeHtml(record.title)}</h1>
<p class="meta" id="summary" data-peers="${peers}" data-chunks="${record.chunkCount}">
${record.origin === 'simulator' ? 'Simulated run' : 'Real processes on this machine'}: the owner (${escapeHtml(record.owner)}),
${peers} peers, ${record.chunkCount} chunks, ${escapeHtml(formatBytes(record.fileBytes))};
${done} of ${peers} peers complete; ran ${escapeHtml(formatMs(record.durationMs))} (${clock}).</p>

<h2>Chunk map over time</h2>
<p class="legend">${swatch('#e08214', 'from the owner')}${swatch('#2b83ba', 'from a neighbour')}${swatch('#e6e6e6', 'missing')}
<span class="note">rows: ${peers} peers; columns: chunks 0 to ${record.chunkCount - 1}</span></p>
<div class="slider"><input type="range" id="time" min="0" max="${record.durationMs}" step="1" value="${record.durationMs}" aria-label="time in ms">
<output id="time-label"></output></div>
<div id="map-scroll"><canvas id="chunk-map" data-peers="${peers}" data-chunks="${record.chunkCount}"></canvas></div>

<h2>Completion time per peer</h2>
${completionSvg(record)}
${bound}

<h2>Upload and download rates</h2>
<div id="rates"></div>
<p class="note">All peers together and the owner. Bytes count when a chunk (or a sender's part of one) is
logged as received or sent, so the lines are averaged over buckets of several chunks. <span id="bucket-note"></span></p>

<h2>Topology and traffic per link</h2>
<p class="note">Owner in the middle, peers around it. A line is a connection; its width grows with the bytes it carried (hover for each direction); dashed lines carried no chunk.</p>
${topologySvg(record)}
${linkTable(record)}

<script id="run-data" type="application/json">${data}</script>
<script>${inline(pageAssets.uplotJs)}</script>
<script>${inline(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
