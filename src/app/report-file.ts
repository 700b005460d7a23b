/**
 * Where `--report` writes: checked before the run, so a bad path costs one line and exit 2 rather
 * than a finished run with nowhere to go. The user named the path, so an existing file there is
 * replaced; a folder, or a path whose folder does not exist, is refused.
 */
import { statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageFailure } from './args.ts';

/** Throws `UsageFailure` unless an HTML file can be written at `path`. */
export function checkReportPath(path: string): void {
  if (path === '') throw new UsageFailure('--report needs a file name');
  const full = resolve(path);
  const info = statSync(full, { throwIfNoEntry: false });
  if (info?.isDirectory() === true) throw new UsageFailure(`--report ${path} is a directory`);
  const folder = statSync(dirname(full), { throwIfNoEntry: false });
  if (folder?.isDirectory() !== true)
    throw new UsageFailure(`--report ${path}: folder ${dirname(full)} does not exist`);
}

export function writeReport(path: string, html: string): void {
  writeFileSync(path, html);
}
