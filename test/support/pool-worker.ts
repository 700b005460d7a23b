/**
 * A worker for test/worker-pool.test.ts: says its pid on start, answers n with 2n and its pid after
 * work that grows with n % 3 (so answers finish out of order), and exits with code 3 when sent -1.
 * Inert when loaded as a module (the test runner loads every file under test/).
 */
import { fileURLToPath } from 'node:url';
import { answerRequests } from '../../src/app/worker-pool.ts';

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`worker ${process.pid}\n`);
  answerRequests<number, { value: number; pid: number }>((n) => {
    if (n === -1) process.exit(3);
    let spin = 0;
    for (let i = 0; i < (n % 3) * 2_000_000; i++) spin = (spin + i) % 1_000_003;
    return { value: 2 * n + (spin < 0 ? 1 : 0), pid: process.pid };
  });
}
