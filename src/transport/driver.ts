/**
 * The real-socket driver: runs one engine over `node:net`, a chunk store on disk, and real timers.
 * One TCP port carries both BitTorrent (first byte 19) and, on the owner, HTTP for the tracker.
 */
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { ActivityEvent } from '../engine/activity.ts';
import type { Effect, Engine, PeerAddress } from '../engine/engine.ts';
import { HANDSHAKE_LENGTH_BYTES } from '../engine/messages.ts';

/** What the driver needs from the disk. */
export interface BlockStorage {
  readBlock(index: number, begin: number, length: number): Promise<Uint8Array>;
  /** `verified`: the bytes already matched the chunk's SHA-1 (the engine's chunks always have). */
  writeChunk(index: number, bytes: Uint8Array, fromOwner: boolean, verified: boolean): Promise<void>;
}

export interface DriverOptions {
  readonly engine: Engine;
  readonly storage: BlockStorage;
  readonly host: string;
  readonly port: number;
  /** The owner's tracker: HTTP requests arriving on the BitTorrent port. */
  readonly httpHandler?: (request: IncomingMessage, response: ServerResponse) => void;
  readonly onActivity?: (event: ActivityEvent, elapsedMs: number) => void;
  readonly onComplete?: () => void;
  readonly onStorageError?: (index: number, error: Error) => void;
  /** An outgoing connection could not be made (the engine redials with backoff). */
  readonly onDialFailed?: (address: string, reason: string) => void;
  /** An outgoing connection was made. */
  readonly onDialed?: (address: string) => void;
}

/** Reads for a connection wait while this many bytes are queued on its socket (backpressure). */
const HIGH_WATER_BYTES = 1024 * 1024;
/**
 * Sockets not yet proven to be peers: silent ones, BitTorrent ones whose 68-byte handshake is not all
 * in, and HTTP ones (short tracker requests). At the limit the oldest is destroyed to make room.
 */
const MAX_PENDING_SOCKETS = 64;
/** A pending socket silent this long is destroyed (the engine also times out slow handshakes). */
const IDENTIFY_TIMEOUT_MS = 10_000;
/** An HTTP connection idle this long is destroyed (a partial request would otherwise stay forever). */
const HTTP_IDLE_TIMEOUT_MS = 10_000;
/** After a graceful close, how long the remote has to finish before the socket is destroyed. */
const CLOSE_LINGER_MS = 2_000;

interface SocketState {
  readonly socket: Socket;
  congested: boolean;
  readonly heldReads: Effect[];
}

export class SocketDriver {
  private readonly engine: Engine;
  private readonly sockets = new Map<string, SocketState>();
  private readonly startedAt = performance.now();
  private server: Server | undefined;
  private http: HttpServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs: number | undefined;
  private nextInbound = 1;
  /** Sockets not yet proven to be peers, oldest first (a Set keeps insertion order). */
  private readonly pending = new Set<Socket>();
  private stopped = false;
  private corked = new Set<Socket>();

  constructor(private readonly options: DriverOptions) {
    this.engine = options.engine;
  }

  /** Monotonic milliseconds since the driver started: the engine's clock. */
  now(): number {
    return Math.floor(performance.now() - this.startedAt);
  }

  /** Listens on host:port (0 for any free port) and resolves with the port. */
  listen(): Promise<number> {
    const server = createTcpServer({ noDelay: true }, (socket) => this.onSocket(socket));
    this.server = server;
    if (this.options.httpHandler !== undefined) {
      this.http = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, this.options.httpHandler);
      this.http.keepAliveTimeout = 1_000;
      // Its headers and request timeouts are only checked on a server that listens, and this one never
      // does (sockets are handed to it): an idle timeout bounds a stalled request instead.
      this.http.timeout = HTTP_IDLE_TIMEOUT_MS;
    }
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.host, port: this.options.port }, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : this.options.port);
      });
    });
  }

  addPeers(peers: readonly PeerAddress[]): void {
    if (this.stopped) return;
    this.engine.handlePeers(this.now(), peers);
    this.flush();
  }

  /** Closes every connection and the listener. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.engine.shutdown(this.now());
    this.flush();
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const state of this.sockets.values()) state.socket.destroy();
    this.sockets.clear();
    // Without this, server.close() waits for silent sockets to time out.
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
    this.http?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }

  private onSocket(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    // A flood of silent or half-open sockets must not lock real peers out (refusing new sockets did,
    // until the flood timed out): the oldest pending one goes, and a real peer speaks at once.
    if (this.pending.size >= MAX_PENDING_SOCKETS) {
      const oldest = this.pending.values().next().value as Socket;
      this.pending.delete(oldest);
      oldest.destroy();
    }
    this.pending.add(socket);
    socket.setTimeout(IDENTIFY_TIMEOUT_MS, () => socket.destroy());
    const settle = (): void => {
      if (this.pending.delete(socket)) socket.setTimeout(0);
    };
    socket.once('close', settle);
    socket.once('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      if (first[0] === 19 || this.http === undefined) {
        // Pending until a whole handshake is in; the engine's handshake timeout also applies.
        let received = 0;
        const count = (bytes: Buffer): void => {
          received += bytes.length;
          if (received < HANDSHAKE_LENGTH_BYTES) return;
          socket.off('data', count);
          settle();
        };
        socket.on('data', count);
        count(first);
        const id = `in:${this.nextInbound++}`;
        const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
        this.attach(id, socket);
        this.engine.handleAccepted(this.now(), id, remote);
        if (this.sockets.has(id)) this.engine.handleData(this.now(), id, first);
        this.flush();
        return;
      }
      // HTTP stays pending for its short life: the tracker has no connection limit of its own.
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      this.http.emit('connection', socket);
      socket.resume();
    });
  }

  private attach(
    id: string,
    socket: Socket,
    state: SocketState = { socket, congested: false, heldReads: [] },
  ): void {
    this.sockets.set(id, state);
    socket.setNoDelay(true);
    socket.on('data', (bytes: Buffer) => {
      if (!this.sockets.has(id)) return;
      this.engine.handleData(this.now(), id, bytes);
      this.flush();
    });
    socket.on('drain', () => {
      state.congested = false;
      const held = state.heldReads.splice(0);
      for (const effect of held) this.apply(effect);
      this.flush();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.sockets.get(id) !== state) return;
      this.sockets.delete(id);
      this.engine.handleClosed(this.now(), id, 'connection closed');
      this.flush();
    });
  }

  private dial(id: string, address: string): void {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at);
    const port = Number(address.slice(at + 1));
    const socket = connect({ host, port, noDelay: true });
    const state: SocketState = { socket, congested: false, heldReads: [] };
    this.sockets.set(id, state);
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      if (this.sockets.get(id) !== state) {
        socket.destroy();
        return;
      }
      this.attach(id, socket, state);
      this.options.onDialed?.(address);
      this.engine.handleConnected(this.now(), id);
      this.flush();
    });
    let failure = 'connection failed';
    socket.once('error', (error: NodeJS.ErrnoException) => {
      failure = error.code ?? error.message;
      socket.destroy();
    });
    socket.once('close', () => {
      // After 'connect', attach's own handler reports the close.
      if (connected || this.sockets.get(id) !== state) return;
      this.options.onDialFailed?.(address, failure);
      this.sockets.delete(id);
      this.engine.handleClosed(this.now(), id, 'connection failed');
      this.flush();
    });
  }

  /** Carries out the engine's effects, then re-arms the timer. */
  private flush(): void {
    for (;;) {
      const effects = this.engine.pollEffects();
      if (effects.length === 0) break;
      for (const effect of effects) this.apply(effect);
    }
    for (const socket of this.corked) socket.uncork();
    this.corked.clear();
    this.armTimer();
  }

  private apply(effect: Effect): void {
    switch (effect.kind) {
      case 'connect':
        this.dial(effect.connection, effect.address);
        return;
      case 'send': {
        const state = this.sockets.get(effect.connection);
        if (state === undefined || state.socket.destroyed) return;
        if (!this.corked.has(state.socket)) {
          state.socket.cork();
          this.corked.add(state.socket);
        }
        state.socket.write(effect.bytes);
        if (state.socket.writableLength > HIGH_WATER_BYTES) state.congested = true;
        return;
      }
      case 'close': {
        const state = this.sockets.get(effect.connection);
        this.sockets.delete(effect.connection);
        if (state === undefined) return;
        if (this.corked.delete(state.socket)) state.socket.uncork();
        state.socket.end();
        setTimeout(() => state.socket.destroy(), CLOSE_LINGER_MS).unref();
        return;
      }
      case 'read-block': {
        const state = this.sockets.get(effect.connection);
        if (state === undefined) return;
        if (state.congested) {
          state.heldReads.push(effect);
          return;
        }
        this.options.storage.readBlock(effect.index, effect.begin, effect.length).then(
          (bytes) => this.afterRead(effect, bytes),
          () => this.afterRead(effect, undefined),
        );
        return;
      }
      case 'write-chunk':
        this.options.storage.writeChunk(effect.index, effect.bytes, effect.fromOwner, true).then(
          () => this.afterWrite(effect.index, undefined),
          (error: Error) => {
            this.options.onStorageError?.(effect.index, error);
            this.afterWrite(effect.index, error.message);
          },
        );
        return;
      case 'activity':
        this.options.onActivity?.(effect.event, this.now());
        return;
      case 'complete':
        this.options.onComplete?.();
        return;
    }
  }

  private afterRead(effect: Effect & { kind: 'read-block' }, bytes: Uint8Array | undefined): void {
    if (this.stopped) return;
    this.engine.handleBlockRead(this.now(), effect.connection, effect.index, effect.begin, bytes);
    this.flush();
  }

  private afterWrite(index: number, error: string | undefined): void {
    if (this.stopped) return;
    this.engine.handleChunkWritten(this.now(), index, error);
    this.flush();
  }

  private armTimer(): void {
    if (this.stopped) return;
    const wake = this.engine.pollTimeout();
    if (wake === this.timerAtMs) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = wake;
    if (wake === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAtMs = undefined;
        if (this.stopped) return;
        this.engine.handleTimeout(this.now());
        this.flush();
      },
      Math.max(0, wake - this.now()),
    );
  }
}
