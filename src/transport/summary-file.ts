/**
 * The `summary.txt` format: one fact per line (info hash, chunk count, held ids, from-owner ids),
 * written for people to read and read back by the store on start, where a malformed or foreign
 * summary counts for nothing.
 */
import type * as nodeFs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIndices } from '../engine/bitfield.ts';
import { MAXIMUM_CHUNK_COUNT } from '../engine/chunking.ts';
import { readFully } from './file-io.ts';

export const SUMMARY_FILE_NAME = 'summary.txt';
/** A summary larger than this is not ours (1M chunks written as alternating ids stay well below). */
export const MAXIMUM_SUMMARY_BYTES = 32 * 1024 * 1024;

export interface SummaryFacts {
  readonly label: string;
  readonly infoHashHex: string;
  readonly chunks: number;
  readonly held: readonly number[];
  readonly fromOwner: readonly number[];
}

/** One fact per line; ids as compact ascending ranges (`0-4,7,9`), `none` when empty. */
export function formatSummary(facts: SummaryFacts): string {
  return [
    `# swarm summary for ${facts.label}: chunk IDs held (from-owner marks those the owner sent)`,
    `info-hash ${facts.infoHashHex.toLowerCase()}`,
    `chunks ${facts.chunks}`,
    `held ${formatIndices(facts.held)}`,
    `from-owner ${formatIndices(facts.fromOwner)}`,
    '',
  ].join('\n');
}

export interface ParsedSummary {
  readonly infoHashHex: string | undefined;
  readonly chunks: number | undefined;
  readonly held: number[];
  readonly fromOwner: number[];
}

/**
 * Reads a summary. Anything malformed (unknown or repeated lines, ids out of order or beyond
 * bounds, from-owner ids that are not held) gives undefined; it never throws.
 */
export function parseSummary(text: string): { held: number[]; fromOwner: number[] } | undefined {
  const parsed = parseSummaryDetailed(text);
  return parsed === undefined ? undefined : { held: parsed.held, fromOwner: parsed.fromOwner };
}

/** Reads a summary with its info hash and chunk count, for the store to check they are its own. */
export function parseSummaryDetailed(text: string): ParsedSummary | undefined {
  try {
    if (typeof text !== 'string' || text.length > MAXIMUM_SUMMARY_BYTES) return undefined;
    const seen = new Set<string>();
    let infoHashHex: string | undefined;
    let chunks: number | undefined;
    let held: number[] | undefined;
    let fromOwner: number[] | undefined;
    for (const raw of text.split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.trim() === '' || line.startsWith('#')) continue;
      const space = line.indexOf(' ');
      if (space <= 0) return undefined;
      const key = line.slice(0, space);
      const value = line.slice(space + 1).trim();
      if (seen.has(key)) return undefined;
      seen.add(key);
      switch (key) {
        case 'info-hash':
          if (!/^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/.test(value)) return undefined;
          infoHashHex = value.toLowerCase();
          break;
        case 'chunks':
          if (!/^(0|[1-9][0-9]{0,6})$/.test(value)) return undefined;
          chunks = Number(value);
          if (chunks > MAXIMUM_CHUNK_COUNT) return undefined;
          break;
        case 'held':
          held = parseIndexList(value);
          if (held === undefined) return undefined;
          break;
        case 'from-owner':
          fromOwner = parseIndexList(value);
          if (fromOwner === undefined) return undefined;
          break;
        default:
          return undefined;
      }
    }
    if (held === undefined) return undefined;
    fromOwner ??= [];
    const limit = chunks ?? MAXIMUM_CHUNK_COUNT;
    if ((held.at(-1) ?? -1) >= limit || (fromOwner.at(-1) ?? -1) >= limit) return undefined;
    const heldSet = new Set(held);
    if (!fromOwner.every((index) => heldSet.has(index))) return undefined;
    return { infoHashHex, chunks, held, fromOwner };
  } catch {
    return undefined;
  }
}

/** `none`, or ascending, non-overlapping ids and ranges `a-b`, each below MAXIMUM_CHUNK_COUNT. */
function parseIndexList(value: string): number[] | undefined {
  if (value === 'none') return [];
  const out: number[] = [];
  let previous = -1;
  for (const part of value.split(',')) {
    const match = /^(0|[1-9][0-9]{0,6})(?:-(0|[1-9][0-9]{0,6}))?$/.exec(part);
    if (match === null) return undefined;
    const start = Number(match[1]);
    const end = match[2] === undefined ? start : Number(match[2]);
    if (start <= previous || end < start || end >= MAXIMUM_CHUNK_COUNT) return undefined;
    for (let index = start; index <= end; index++) out.push(index);
    previous = end;
  }
  return out;
}

/** The summary in `dir`, when there is one of this torrent (`infoHashHex`, `chunks`); else undefined. */
export async function readSummaryFile(
  fs: Pick<typeof nodeFs, 'open'>,
  dir: string,
  infoHashHex: string,
  chunks: number,
): Promise<ParsedSummary | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await fs.open(join(dir, SUMMARY_FILE_NAME), 'r');
    const size = (await handle.stat()).size;
    if (size > MAXIMUM_SUMMARY_BYTES) return undefined;
    const text = Buffer.alloc(size);
    await readFully(handle, text, 0, SUMMARY_FILE_NAME);
    const parsed = parseSummaryDetailed(text.toString('utf8'));
    if (parsed === undefined) return undefined;
    // A summary from another torrent (or a different cut of it) says nothing about ours.
    if (parsed.infoHashHex !== infoHashHex.toLowerCase()) return undefined;
    if (parsed.chunks !== chunks) return undefined;
    return parsed;
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
