/**
 * The `swarm` command's entry. `--version` and `--help` are answered from here with nothing else
 * loaded, so they start about as fast as Node itself; any other command loads the rest.
 */
import { readFileSync } from 'node:fs';
import { MAIN_USAGE } from './args.ts';

const first = process.argv[2];
if (first === '--version' || first === '-V' || first === 'version') {
  // The same relative path from src/app (tsx) and from dist/app (the built command).
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  process.stdout.write(`swarm ${manifest.version}\n`);
} else if (first === '--help' || first === '-h' || first === 'help') {
  process.stdout.write(`${MAIN_USAGE}\n`);
} else {
  const { runSwarm } = await import('./swarm-command.ts');
  runSwarm();
}
