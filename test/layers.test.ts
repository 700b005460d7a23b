/**
 * The layers enforce themselves: every relative import in src/ is read and checked against the map
 * in ARCHITECTURE.md. engine imports only itself; platform (node-backed helpers such as SHA-1) imports
 * only the engine; sim and transport import only the engine and platform (and packages); app imports
 * anything. A violation names the file, the line and the rule.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/** For each layer (a folder of src/), the layers it may import besides itself. */
const LAYER_RULES: Readonly<Record<string, readonly string[]>> = {
  engine: [],
  platform: ['engine'],
  sim: ['engine', 'platform'],
  transport: ['engine', 'platform'],
  app: ['engine', 'platform', 'sim', 'transport'],
};

const IMPORT = /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? files(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every import of one source text that breaks the rules, as "file:line imports target (rule)". */
function layerViolations(file: string, text: string, srcRoot: string): string[] {
  const layer = relative(srcRoot, file).split('/')[0] as string;
  const allowed = LAYER_RULES[layer];
  if (allowed === undefined) return [`${file}: ${layer} is not a known layer of src/`];
  const found: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const target = match[1] ?? match[2];
    if (target === undefined || !target.startsWith('.')) continue;
    const resolved = relative(srcRoot, resolve(dirname(file), target));
    const targetLayer = resolved.split('/')[0] as string;
    if (resolved.startsWith('..')) {
      found.push(`${file} imports ${target}, outside src/`);
    } else if (targetLayer !== layer && !allowed.includes(targetLayer)) {
      const line = text.slice(0, match.index).split('\n').length;
      found.push(`${file}:${line} imports ${target} (${layer} may import ${[layer, ...allowed].join(', ')})`);
    }
  }
  return found;
}

test('every import in src/ follows the layers', () => {
  const root = resolve('src');
  const violations = files(root).flatMap((file) => layerViolations(file, readFileSync(file, 'utf8'), root));
  assert.equal(violations, []);
});

test('a deliberate violation is caught: sim importing transport, engine importing sim', () => {
  const root = resolve('src');
  const sim = layerViolations(join(root, 'sim/x.ts'), "import { a } from '../transport/store.ts';", root);
  assert.is(sim.length, 1);
  assert.match(sim[0] as string, /sim may import sim, engine/);
  const engine = layerViolations(join(root, 'engine/x.ts'), "export { b } from '../sim/scenario.ts';", root);
  assert.is(engine.length, 1);
  const dynamic = layerViolations(join(root, 'transport/x.ts'), "await import('../app/cli.ts');", root);
  assert.is(dynamic.length, 1);
  assert.equal(layerViolations(join(root, 'app/x.ts'), "import { c } from '../sim/simulator.ts';", root), []);
});

test.run();
