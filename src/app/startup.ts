/**
 * What the owner and peer processes share around their start and stop: addresses, the listening
 * port, the work folder (made, or cleaned up after a failed start), signals, and the torrent's info
 * dictionary for BEP 9.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { findDictionaryValueSpan } from '../engine/bencode.ts';
import type { SocketDriver } from '../transport/driver.ts';
import type { HostPort } from '../transport/tracker-client.ts';
import { UsageFailure } from './args.ts';
import { onStdoutClosed } from './command.ts';

export const formatAddress = (address: HostPort): string => `${address.host}:${address.port}`;

/** Resolves when the process is asked to stop (Ctrl-C, SIGTERM, its stdout closed), or `stop` is called. */
export function untilSignal(): { readonly signalled: Promise<string>; stop(reason: string): void } {
  let stop: (reason: string) => void = () => undefined;
  const signalled = new Promise<string>((resolve) => {
    const done = (reason: string): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(reason);
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    stop = done;
  });
  onStdoutClosed(() => stop('stdout closed'));
  return { signalled, stop: (reason) => stop(reason) };
}

async function listenOrExplain(driver: SocketDriver, host: string, port: number): Promise<number> {
  try {
    return await driver.listen();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new UsageFailure(`port ${port} on ${host} is already in use (choose another --port, or 0)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw new UsageFailure(`cannot listen on ${host}: ${code}`);
    if (code === 'EACCES') throw new UsageFailure(`no permission to listen on port ${port}`);
    throw error;
  }
}

/**
 * Makes sure `path` is a folder we can work in, creating it (and its parents) if needed. Returns
 * the topmost folder this call created, so that a start that fails removes exactly that and nothing
 * the user had.
 */
export async function prepareFolder(path: string, flag: string): Promise<string | undefined> {
  const existing = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    const why = error.code === 'ENOTDIR' ? 'a file is in the way' : (error.code ?? error.message);
    throw new UsageFailure(`cannot create ${flag} ${path}: ${why}`);
  });
  if (existing !== undefined) {
    if (!existing.isDirectory()) throw new UsageFailure(`${flag} ${path} is a file, not a folder`);
    return undefined;
  }
  try {
    return await mkdir(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a file is in the way' : (code ?? String(error));
    throw new UsageFailure(`cannot create ${flag} ${path}: ${why}`);
  }
}

/**
 * A process's start, undone if it fails part way: the work folder it made (nothing the user had),
 * the listener, the open store. Nothing half-made stays behind.
 */
export class Start {
  private constructor(private readonly made: string | undefined) {}

  /** Prepares the work folder (see `prepareFolder`). */
  static async inFolder(path: string, flag: string): Promise<Start> {
    return new Start(await prepareFolder(path, flag));
  }

  /** Runs `step`; if it throws, undoes the start and rethrows. */
  async step<T>(step: () => Promise<T>, open: Closable): Promise<T> {
    try {
      return await step();
    } catch (error) {
      await this.undo(open);
      throw error;
    }
  }

  /** Listens on the driver's port, with one clear line for a port in use; undoes the start on failure. */
  listen(driver: SocketDriver, host: string, port: number, open: Closable): Promise<number> {
    return this.step(() => listenOrExplain(driver, host, port), { ...open, driver });
  }

  private async undo(open: Closable): Promise<void> {
    await open.driver?.stop();
    await open.store.close();
    if (this.made !== undefined) await rm(this.made, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** What a failed start closes: the store, and the driver once there is one. */
export interface Closable {
  readonly store: { close(): Promise<void> };
  readonly driver?: SocketDriver;
}

/** The exact bytes of a torrent's info dictionary, for the engine to serve over BEP 9 (ut_metadata). */
export function infoDictionary(torrent: Uint8Array): { metadata?: Uint8Array } {
  const span = findDictionaryValueSpan(torrent, 'info');
  return span === undefined ? {} : { metadata: torrent.slice(span.start, span.end) };
}
