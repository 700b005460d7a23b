/**
 * The demo's folder: `npm start` may replace only what an earlier `npm start` made there. It lists
 * what it makes in `.swarm-demo.json`; on the next run it removes exactly those entries, refuses to
 * touch anything else that stands in its way, and never removes the user's `--file`.
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { UsageFailure } from './args.ts';
import { prepareFolder } from './startup.ts';

export const DEMO_MANIFEST = '.swarm-demo.json';
const MAX_MANIFEST_BYTES = 64 * 1024;
const MAX_MANIFEST_ENTRIES = 1_000;

/** A name the demo could have made: one plain entry of its folder, no path. */
function isPlainName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 255 &&
    name !== '.' &&
    name !== '..' &&
    name !== DEMO_MANIFEST &&
    !/[/\\\0]/.test(name)
  );
}

/** What an earlier run made here (the manifest is a file on disk: checked like remote input). */
async function previouslyMade(dir: string): Promise<string[]> {
  const path = join(dir, DEMO_MANIFEST);
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > MAX_MANIFEST_BYTES) throw new Error('not a manifest');
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageFailure(`${path} is not one the demo wrote; remove it or choose another --dir`);
  }
  let made: unknown;
  try {
    made = (JSON.parse(text) as { made?: unknown }).made;
  } catch {
    made = undefined;
  }
  if (!Array.isArray(made) || made.length > MAX_MANIFEST_ENTRIES || !made.every(isPlainName)) {
    throw new UsageFailure(`${path} is not one the demo wrote; remove it or choose another --dir`);
  }
  return made;
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

function contains(folder: string, path: string): boolean {
  const inside = relative(folder, path);
  return inside === '' || (!inside.startsWith('..') && !inside.startsWith('/'));
}

/**
 * Makes `dir` ready for a run that will make `names` in it: creates the folder if needed, removes
 * what the last run made, and refuses (exit 2, nothing touched) when an entry it needs is the
 * user's, or when the user's `keep` paths lie inside what it would remove.
 */
export async function claimDemoFolder(
  dir: string,
  names: readonly string[],
  keep: readonly string[],
): Promise<void> {
  await prepareFolder(dir, '--dir');
  const earlier = new Set(await previouslyMade(dir));
  const kept = keep.map((path) => resolve(path));
  for (const name of names) {
    const path = join(dir, name);
    if (!earlier.has(name) && (await exists(path))) {
      throw new UsageFailure(`${path} exists and was not made by the demo; move it or choose another --dir`);
    }
    const guarded = kept.find((keepPath) => contains(resolve(path), keepPath));
    if (guarded !== undefined) {
      throw new UsageFailure(
        `--file ${guarded} is inside ${path}, which the demo replaces; choose another --dir`,
      );
    }
  }
  const removable = [...earlier].filter(
    (name) => !kept.some((keepPath) => contains(resolve(dir, name), keepPath)),
  );
  // The manifest first: a run cut short here still knows what it may remove next time.
  await writeFile(
    join(dir, DEMO_MANIFEST),
    `${JSON.stringify({ made: [...new Set([...removable, ...names])] })}\n`,
  );
  for (const name of removable) await rm(join(dir, name), { recursive: true, force: true });
  await writeFile(join(dir, DEMO_MANIFEST), `${JSON.stringify({ made: names })}\n`);
}
