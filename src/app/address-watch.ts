/**
 * A peer's own addresses, watched: a host that changes its IP address (a laptop on a new network, a
 * renewed DHCP lease, the lab's `move`) gets a callback within one poll, so the peer can tell its
 * tracker at once instead of at its next scheduled announce. Node has no event for address changes,
 * so the interface list is polled; the poll is cheap and its timer never keeps the process alive.
 */
import { networkInterfaces } from 'node:os';

/** How often the interface list is read. */
export const ADDRESS_POLL_MS = 500;

/** Every address of this host's interfaces other than loopback, sorted (a stable key for a set). */
export function hostAddresses(): string[] {
  const found: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const entry of list ?? []) if (!entry.internal) found.push(entry.address);
  return found.sort();
}

/** Calls `onChange` with the new list whenever the host's addresses differ from the last poll. */
export function watchAddresses(onChange: (addresses: string[]) => void): () => void {
  let last = hostAddresses().join(' ');
  const timer = setInterval(() => {
    const now = hostAddresses();
    const key = now.join(' ');
    if (key === last) return;
    last = key;
    onChange(now);
  }, ADDRESS_POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
