/**
 * The denominator of the link benchmark: a bare Node TCP stream over loopback, one process sending
 * and another receiving, no framing, no hashing, no disk.
 *
 *   node --import tsx bench/bare-tcp.ts sink <bytes>          prints {"event":"listening","port":P},
 *                                                             then {"event":"done","bytes":B,"ms":T}
 *   node --import tsx bench/bare-tcp.ts source <port> <bytes> sends <bytes> bytes, then exits
 *
 * Both sides give up after two minutes, so a stuck run cannot hang the harness.
 */
import { randomFillSync } from 'node:crypto';
import { connect, createServer } from 'node:net';

const LIMIT_MS = 120_000;
const WRITE_BYTES = 64 * 1024;

function print(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

function sink(totalBytes: number): void {
  const server = createServer({ noDelay: true }, (socket) => {
    server.close();
    const startedAt = performance.now();
    let received = 0;
    socket.on('data', (bytes: Buffer) => {
      received += bytes.length;
      if (received >= totalBytes) {
        print({ event: 'done', bytes: received, ms: performance.now() - startedAt });
        socket.destroy();
        process.exit(0);
      }
    });
    socket.on('error', () => process.exit(1));
    socket.on('close', () => {
      if (received < totalBytes) process.exit(1);
    });
  });
  server.listen({ host: '127.0.0.1', port: 0 }, () => {
    const address = server.address();
    print({ event: 'listening', port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
}

function source(port: number, totalBytes: number): void {
  const block = randomFillSync(Buffer.allocUnsafe(WRITE_BYTES));
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  let sent = 0;
  const pump = (): void => {
    while (sent < totalBytes) {
      const length = Math.min(WRITE_BYTES, totalBytes - sent);
      sent += length;
      // A fresh view each time: the socket may still hold the previous one.
      if (!socket.write(block.subarray(0, length))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  socket.once('connect', pump);
  socket.on('error', () => process.exit(1));
  socket.on('close', () => process.exit(0));
}

const [mode, first, second] = process.argv.slice(2);
setTimeout(() => process.exit(2), LIMIT_MS).unref();
if (mode === 'sink') sink(Number(first));
else if (mode === 'source') source(Number(first), Number(second));
else {
  process.stderr.write('usage: bare-tcp.ts sink <bytes> | source <port> <bytes>\n');
  process.exit(2);
}
