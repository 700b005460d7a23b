/**
 * Deterministic work shared among worker processes (`experiment --jobs`, `fuzz --jobs`): each worker
 * is sent the next request as soon as it answers the last, and the answers come back in request
 * order, so the result does not depend on which worker ran what or how fast.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Most worker processes a command's `--jobs` may ask for. */
export const MAX_JOBS = 64;

/**
 * The path of the worker module `name` beside the calling module (`import.meta.url`), with the
 * caller's own extension: `.ts` when run from source, `.js` from the compiled build.
 */
export function siblingModule(callerUrl: string, name: string): string {
  const caller = fileURLToPath(callerUrl);
  return fileURLToPath(new URL(`./${name}${extname(caller)}`, callerUrl));
}

/** One request as a worker receives it, and its answer as the worker sends it back. */
interface Envelope<T> {
  readonly id: number;
  readonly body: T;
}

/**
 * Runs `requests` in `jobs` worker processes started from `workerPath` (a module that calls
 * `answerRequests`). If a worker fails or exits before its work is done, the others are stopped and,
 * once every worker has exited, the promise rejects.
 */
export async function runInWorkers<Request, Answer>(
  workerPath: string,
  requests: readonly Request[],
  jobs: number,
): Promise<Answer[]> {
  const answers: Answer[] = new Array(requests.length);
  const count = Math.max(1, Math.min(jobs, requests.length));
  const workers = Array.from({ length: count }, () => fork(workerPath, { serialization: 'advanced' }));
  const exited = workers.map(
    (worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())),
  );
  let next = 0;
  const work = (worker: ChildProcess): Promise<void> =>
    new Promise((resolve, reject) => {
      let done = false;
      const sendNext = (): void => {
        if (next >= requests.length) {
          done = true;
          worker.disconnect();
          resolve();
          return;
        }
        const id = next++;
        worker.send({ id, body: requests[id] as Request } satisfies Envelope<Request>);
      };
      worker.on('message', (reply: Envelope<Answer>) => {
        answers[reply.id] = reply.body;
        sendNext();
      });
      worker.on('error', reject);
      worker.on('exit', (code, signal) => {
        if (!done)
          reject(new Error(`a worker exited (${signal ?? `code ${code}`}) before its work was done`));
      });
      sendNext();
    });
  try {
    await Promise.all(workers.map(work));
  } catch (error) {
    for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill();
    await Promise.all(exited);
    throw error;
  }
  await Promise.all(exited);
  return answers;
}

/** The worker's side: answers each request with `handle`, one at a time, until the parent disconnects. */
export function answerRequests<Request, Answer>(handle: (request: Request) => Answer): void {
  process.on('message', (message: Envelope<Request>) => {
    process.send?.({ id: message.id, body: handle(message.body) } satisfies Envelope<Answer>);
  });
}
