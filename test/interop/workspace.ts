/**
 * The one setup of every interop test: the clients it needs must be installed, it gets a fresh
 * workspace and a registry of client processes, and both are cleaned up however it ends.
 */
import { Workspace } from '../support/processes.ts';
import { type Client, Clients, requireClient } from './clients.ts';

export async function withClients(
  needs: readonly Client[],
  run: (space: Workspace, clients: Clients) => Promise<void>,
): Promise<void> {
  for (const client of needs) requireClient(client);
  const space = new Workspace();
  const clients = new Clients();
  try {
    await run(space, clients);
  } finally {
    await clients.stopAll();
    await space.close();
  }
}
