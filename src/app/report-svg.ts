/**
 * The two pictures of a run report drawn once, at report time, as SVG: each peer's completion time
 * against the lower bound, and the topology with the bytes on each link. Neither changes with the
 * page's time slider, so neither needs a script.
 */
import type { RunRecord } from './run-record.ts';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

const WIDTH = 900;

/** Round tick steps (1, 2, 5 × 10^n) so the axis reads easily. */
function ticks(max: number, count: number): number[] {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const out: number[] = [];
  for (let value = 0; value <= max; value += step) out.push(value);
  return out;
}

/** One bar per peer, in peer order; a dashed line at the lower bound when there is one. */
export function completionSvg(record: RunRecord): string {
  const height = 300;
  const left = 60;
  const top = 20;
  const bottom = record.peers.length <= 40 ? 60 : 30;
  const plotW = WIDTH - left - 10;
  const plotH = height - top - bottom;
  const done = record.completedAtMs.filter((ms): ms is number => ms !== null);
  const maxMs = Math.max(1, record.durationMs, record.lowerBoundMs ?? 0, ...done) * 1.05;
  const y = (ms: number): number => top + plotH - (ms / maxMs) * plotH;
  const slot = plotW / Math.max(1, record.peers.length);
  const parts: string[] = [];
  for (const value of ticks(maxMs, 5)) {
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${y(value)}" y2="${y(value)}" class="grid"/>`,
      `<text x="${left - 6}" y="${y(value) + 4}" text-anchor="end">${escapeHtml(formatMs(value))}</text>`,
    );
  }
  record.peers.forEach((id, i) => {
    const ms = record.completedAtMs[i] ?? null;
    const x = left + i * slot + Math.max(0, slot * 0.8 - 40) / 2;
    const w = Math.max(1, Math.min(40, slot * 0.8));
    if (ms === null) {
      parts.push(
        `<rect class="incomplete" x="${x}" y="${top}" width="${w}" height="${plotH}"><title>${escapeHtml(id)}: did not complete</title></rect>`,
      );
    } else {
      parts.push(
        `<rect class="bar" data-peer="${escapeHtml(id)}" x="${x}" y="${y(ms)}" width="${w}" height="${top + plotH - y(ms)}"><title>${escapeHtml(id)}: ${escapeHtml(formatMs(ms))}</title></rect>`,
      );
    }
    if (record.peers.length <= 40) {
      const lx = x + w / 2;
      const ly = top + plotH + 10;
      parts.push(
        `<text x="${lx}" y="${ly}" transform="rotate(45 ${lx} ${ly})" class="peer-label">${escapeHtml(id)}</text>`,
      );
    }
  });
  if (record.lowerBoundMs !== null) {
    const ly = y(record.lowerBoundMs);
    parts.push(
      `<line id="lower-bound" data-ms="${record.lowerBoundMs}" x1="${left}" x2="${left + plotW}" y1="${ly}" y2="${ly}"/>`,
      `<text x="${left + 6}" y="${ly - 6}" class="bound-label">lower bound ${escapeHtml(formatMs(record.lowerBoundMs))}</text>`,
    );
  }
  parts.push(
    `<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" class="axis"/>`,
  );
  return `<svg id="completion" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="completion time per peer">${parts.join('')}</svg>`;
}

interface Point {
  readonly x: number;
  readonly y: number;
}

/**
 * The owner in the middle, the peers on a circle in peer order, any other node seen (a client
 * that is not ours) on an outer circle. A link's width grows with the square root of its bytes,
 * so a light link stays visible beside a heavy one.
 */
export function topologySvg(record: RunRecord): string {
  const size = 620;
  const centre = size / 2;
  const places = new Map<string, Point>([[record.owner, { x: centre, y: centre }]]);
  const onCircle = (ids: readonly string[], radius: number): void => {
    ids.forEach((id, i) => {
      const angle = (2 * Math.PI * i) / ids.length - Math.PI / 2;
      places.set(id, { x: centre + radius * Math.cos(angle), y: centre + radius * Math.sin(angle) });
    });
  };
  onCircle(record.peers, size * 0.38);
  const known = new Set([record.owner, ...record.peers]);
  const others = [
    ...new Set(record.links.flatMap((link) => [link.from, link.to]).filter((id) => !known.has(id))),
  ];
  onCircle(others, size * 0.47);
  // Both directions of a pair on one line; its title tells each direction.
  const pairs = new Map<string, { a: string; b: string; ab: number; ba: number }>();
  for (const link of record.links) {
    const [a, b] = link.from < link.to ? [link.from, link.to] : [link.to, link.from];
    const key = `${a}\n${b}`;
    const pair = pairs.get(key) ?? { a, b, ab: 0, ba: 0 };
    if (link.from === a) pair.ab += link.bytes;
    else pair.ba += link.bytes;
    pairs.set(key, pair);
  }
  const maxBytes = Math.max(1, ...[...pairs.values()].map((pair) => pair.ab + pair.ba));
  // Dozens of peers make hundreds of links: thin, faint lines keep the picture a texture
  // in which the heavy links still show, instead of a solid disc.
  const dense = record.peers.length > 20;
  const lines: string[] = [];
  for (const pair of pairs.values()) {
    const p = places.get(pair.a);
    const q = places.get(pair.b);
    if (p === undefined || q === undefined || pair.a === pair.b) continue;
    const total = pair.ab + pair.ba;
    const width = (dense ? 0.3 : 0.5) + (dense ? 1.5 : 6) * Math.sqrt(total / maxBytes);
    const title = `${pair.a} → ${pair.b}: ${formatBytes(pair.ab)}; ${pair.b} → ${pair.a}: ${formatBytes(pair.ba)}`;
    lines.push(
      `<line class="link${total === 0 ? ' idle' : ''}" x1="${p.x.toFixed(1)}" y1="${p.y.toFixed(1)}" x2="${q.x.toFixed(1)}" y2="${q.y.toFixed(1)}" stroke-width="${width.toFixed(2)}"><title>${escapeHtml(title)}</title></line>`,
    );
  }
  const labelled = record.peers.length <= 40;
  const radius = record.peers.length <= 40 ? 9 : record.peers.length <= 150 ? 4 : 2.5;
  const nodes: string[] = [];
  for (const [id, place] of places) {
    const kind = id === record.owner ? 'owner' : known.has(id) ? 'peer' : 'other';
    const r = kind === 'owner' ? 14 : radius;
    nodes.push(
      `<circle class="node ${kind}" data-node="${escapeHtml(id)}" cx="${place.x.toFixed(1)}" cy="${place.y.toFixed(1)}" r="${r}"><title>${escapeHtml(id)}</title></circle>`,
    );
    if (labelled || kind !== 'peer') {
      const dy = kind === 'owner' ? 28 : -r - 4;
      nodes.push(
        `<text x="${place.x.toFixed(1)}" y="${(place.y + dy).toFixed(1)}" text-anchor="middle">${escapeHtml(id)}</text>`,
      );
    }
  }
  return `<svg id="topology"${dense ? ' class="dense"' : ''} viewBox="0 0 ${size} ${size}" width="${size}" height="${size}" role="img" aria-label="topology">${lines.join('')}${nodes.join('')}</svg>`;
}

/** The heaviest links as a table: who sent how many bytes to whom. */
export function linkTable(record: RunRecord, rows = 15): string {
  const heaviest = [...record.links]
    .filter((link) => link.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes || a.from.localeCompare(b.from))
    .slice(0, rows);
  const body = heaviest
    .map(
      (link) =>
        `<tr><td>${escapeHtml(link.from)}</td><td>${escapeHtml(link.to)}</td><td class="num">${link.bytes}</td><td class="num">${escapeHtml(formatBytes(link.bytes))}</td></tr>`,
    )
    .join('');
  const carrying = record.links.filter((link) => link.bytes > 0).length;
  return `<table id="links"><caption>The ${heaviest.length} heaviest of ${carrying} links that carried chunks</caption><thead><tr><th>from</th><th>to</th><th>bytes</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
}
