/**
 * Time in the engine: one sweep every `tickMs` while anything waits on time (connections, write
 * retries, redials), and the per-connection deadlines the sweep checks. Time is always an argument;
 * the driver calls `handleTimeout` when `pollTimeout` says.
 */
import type { Connection } from './connection.ts';
import type { CloseReason } from './errors.ts';
import type { EngineLimits } from './limits.ts';

export class Sweep {
  private nextAtMs: number | undefined;

  constructor(private readonly tickMs: number) {}

  /** When the sweep runs next, or undefined when nothing waits on time. */
  get next(): number | undefined {
    return this.nextAtMs;
  }

  /** Arms the sweep one tick from now if something waits on time (an armed sweep keeps its time). */
  schedule(nowMs: number, waiting: boolean): void {
    if (!waiting) {
      this.nextAtMs = undefined;
      return;
    }
    if (this.nextAtMs === undefined) this.nextAtMs = nowMs + this.tickMs;
  }

  /** The sweep ran (or the engine stopped): nothing is armed until the next `schedule`. */
  disarm(): void {
    this.nextAtMs = undefined;
  }
}

/** A connection not yet open (connecting or handshaking) for `handshakeTimeoutMs` is given up. */
export function handshakeExpired(conn: Connection, nowMs: number, limits: EngineLimits): boolean {
  return nowMs - conn.openedAtMs >= limits.handshakeTimeoutMs;
}

/** An open connection that sent nothing for `idleTimeoutMs` is closed. */
export function idleExpired(conn: Connection, nowMs: number, limits: EngineLimits): boolean {
  return nowMs - conn.lastReceivedAtMs >= limits.idleTimeoutMs;
}

/** We sent nothing for `keepAliveIntervalMs`: a keep-alive tells the remote we are still here. */
export function keepAliveDue(conn: Connection, nowMs: number, limits: EngineLimits): boolean {
  return nowMs - conn.lastSentAtMs >= limits.keepAliveIntervalMs;
}

/** Why a connection's own timers close it now (a handshake or an idle spell too long), if they do. */
export function timerCloseReason(
  conn: Connection,
  nowMs: number,
  limits: EngineLimits,
): CloseReason | undefined {
  if (conn.state !== 'open')
    return handshakeExpired(conn, nowMs, limits) ? { code: 'handshake-timeout' } : undefined;
  return idleExpired(conn, nowMs, limits) ? { code: 'idle-timeout' } : undefined;
}
