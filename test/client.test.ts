/**
 * swarm as a client people install and use: the built command from `npm pack`, `--version`,
 * and the one-liners `swarm seed FILE` and `swarm get TORRENT|MAGNET -o PATH`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256File } from '../src/app/processes.ts';
import { inWorkspace } from './support/processes.ts';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

test('npm pack gives a tarball that npm install -g turns into a working swarm', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'swarm-pack-'));
  try {
    const pack = spawnSync('npm', ['pack', '--pack-destination', scratch], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.is(pack.status, 0, pack.stderr);
    const tarball = join(scratch, `swarm-${VERSION}.tgz`);
    assert.ok(existsSync(tarball), pack.stdout);
    const prefix = join(scratch, 'prefix');
    const install = spawnSync(
      'npm',
      ['install', '-g', '--prefix', prefix, tarball, '--no-audit', '--no-fund'],
      {
        encoding: 'utf8',
        timeout: 180_000,
      },
    );
    assert.is(install.status, 0, install.stderr);
    const swarm = join(prefix, 'bin', 'swarm');
    const version = spawnSync(swarm, ['--version'], { encoding: 'utf8', cwd: scratch });
    assert.is(version.stdout, `swarm ${VERSION}\n`);
    const help = spawnSync(swarm, ['--help'], { encoding: 'utf8', cwd: scratch });
    assert.match(help.stdout, /seed FILE/);
    // Beyond --help: the installed command loads the whole program and refuses bad input cleanly.
    const bad = spawnSync(swarm, ['get', join(scratch, 'missing.torrent')], {
      encoding: 'utf8',
      cwd: scratch,
    });
    assert.is(bad.status, 2);
    assert.match(bad.stderr, /cannot read the torrent .*missing\.torrent: ENOENT/);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('swarm seed FILE, then swarm get TORRENT -o PATH --connect: a verified file, never overwritten', () =>
  inWorkspace(async (space) => {
    const file = space.file('movie.bin', 1_500_000);
    const seed = space.spawn(['seed', file, '--port', '0']);
    const listening = await seed.waitFor((line) => line.event === 'listening');
    assert.is(listening.torrent, `${file}.torrent`);
    assert.match(String(listening.magnet), /^magnet:\?xt=urn:btih:[0-9a-f]{40}/);
    const out = space.path('out.bin');
    const cli = ['--import', 'tsx', 'src/app/cli.ts'];
    const get = spawnSync(
      process.execPath,
      [...cli, 'get', `${file}.torrent`, '-o', out, '--connect', `127.0.0.1:${listening.port}`, '--quiet'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.is(get.status, 0, get.stderr);
    assert.is(await sha256File(out), await sha256File(file));
    assert.ok(existsSync(`${out}.parts`), 'the chunk files stay in the work folder');
    assert.not.ok(existsSync(join(`${out}.parts`, 'movie.bin')), 'the file itself is only at -o');
    const again = spawnSync(process.execPath, [...cli, 'get', `${file}.torrent`, '-o', out], {
      encoding: 'utf8',
    });
    assert.is(again.status, 2);
    assert.match(again.stderr, /exists already/);
    // The magnet link alone: the metadata (BEP 9) from the seeder, then the same verified file.
    const viaMagnet = space.path('via-magnet.bin');
    const magnet = spawnSync(
      process.execPath,
      [...cli, 'get', String(listening.magnet), '-o', viaMagnet, '--connect', `127.0.0.1:${listening.port}`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.is(magnet.status, 0, magnet.stderr);
    assert.match(magnet.stdout, /fetching metadata \(BEP 9\) from 1 peer/);
    assert.is(await sha256File(viaMagnet), await sha256File(file));
    assert.is(
      readFileSync(join(`${viaMagnet}.parts`, 'movie.bin.torrent')).toString('hex'),
      readFileSync(`${file}.torrent`).toString('hex'),
      "the rebuilt .torrent is the seeder's, byte for byte",
    );
  }));

test.run();
