/**
 * Peak RSS of one peer process downloading a file from an owner (star, verified, combined): memory
 * should not grow with the file, so the two sizes should give close figures.
 */
import { join } from 'node:path';
import { makeRandomFile, makeTempDir, type NodeProcess, removeDir, requireFreeSpace, say } from './lib.ts';
import { download, startSeeder } from './link.ts';

export interface MemoryOptions {
  readonly smallBytes: number;
  readonly largeBytes: number;
  readonly timeoutMs: number;
}

async function peakRss(bytes: number, timeoutMs: number): Promise<number> {
  const dir = await makeTempDir('memory');
  let owner: NodeProcess | undefined;
  try {
    await requireFreeSpace(dir, 4 * bytes + 256 * 1024 * 1024);
    const file = join(dir, 'memory.bin');
    const sha256 = await makeRandomFile(file, bytes);
    owner = await startSeeder(file, dir, 180_000);
    const port = Number(owner.lines.find((line) => line.event === 'listening')?.port);
    const result = await download(port, join(dir, 'Peer1Dir'), '1', sha256, timeoutMs, {
      measureRss: { outputFile: join(dir, 'rss.txt') },
    });
    const rss = result.peer.peakRssBytes();
    if (rss === undefined) throw new Error('could not read the peer process peak RSS');
    say(
      `memory: ${(bytes / 1024 / 1024).toFixed(0)} MiB in ${((result.completeAtMs - result.listeningAtMs) / 1000).toFixed(1)} s, peak RSS ${(rss / 1024 / 1024).toFixed(1)} MiB`,
    );
    return rss;
  } finally {
    await owner?.stop();
    await removeDir(dir);
  }
}

export async function memoryBench(options: MemoryOptions): Promise<Record<string, number>> {
  const small = await peakRss(options.smallBytes, options.timeoutMs);
  const large = await peakRss(options.largeBytes, options.timeoutMs);
  return { memoryPeakRss100MiB: small, memoryPeakRss1GiB: large, memoryRatio: large / small };
}
