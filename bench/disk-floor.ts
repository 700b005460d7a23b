/**
 * The floor of the link benchmark: the work the mission asks of a peer for every byte, whatever
 * the wire does, done as cheaply as Node allows (synchronous calls, one process, no network). Each
 * 100 KiB chunk is SHA-1 hashed and written to its own file by temp file and rename; the combined
 * file is written and SHA-256 hashed. Its time, against bare TCP's, bounds the link ratio any
 * implementation of this mission can reach on this machine.
 *
 *   node --import tsx bench/disk-floor.ts <file> <dir>   prints {"event":"done","bytes":B,"ms":T}
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const CHUNK_BYTES = 100 * 1024;

function floor(file: string, dir: string): void {
  // Reading the source is not part of the floor: a peer receives it from the wire.
  const bytes = readFileSync(file);
  mkdirSync(dir, { recursive: true });
  const startedAt = performance.now();
  const combined = openSync(join(dir, 'combined'), 'wx');
  for (let begin = 0; begin < bytes.length; begin += CHUNK_BYTES) {
    const chunk = bytes.subarray(begin, Math.min(bytes.length, begin + CHUNK_BYTES));
    createHash('sha1').update(chunk).digest();
    const name = join(dir, `chunk_${begin / CHUNK_BYTES}`);
    const fd = openSync(`${name}.tmp`, 'wx');
    writeSync(fd, chunk, 0, chunk.length, 0);
    closeSync(fd);
    renameSync(`${name}.tmp`, name);
    writeSync(combined, chunk, 0, chunk.length, begin);
  }
  closeSync(combined);
  createHash('sha256').update(bytes).digest();
  const ms = performance.now() - startedAt;
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ event: 'done', bytes: bytes.length, ms })}\n`);
}

const [file, dir] = process.argv.slice(2);
if (file === undefined || dir === undefined) {
  process.stderr.write('usage: node --import tsx bench/disk-floor.ts <file> <dir>\n');
  process.exit(2);
}
floor(file, dir);
