/**
 * A node's block reads from its in-memory disk, paced by its uplink: a read is answered (a
 * `read-done` event at the current time) only while the uplink's queue is short and no other read of
 * the node is under way, so the uplink serves requests in arrival order.
 */
import type { Effect } from '../engine/engine.ts';
import type { EventQueue } from './event-queue.ts';
import type { SimEvent } from './sim-event.ts';
import type { SimNode } from './sim-node.ts';

/**
 * Block reads wait while the node has this much queued for its uplink. Keeping the queue short
 * makes the uplink serve requests in arrival order, so a new chunk reaches its first requester at
 * full speed instead of trickling to every neighbour at once.
 */
export const HIGH_WATER_BYTES = 32 * 1024;

export class BlockReads {
  constructor(
    private readonly queue: EventQueue<SimEvent>,
    /** Bytes the node has queued for its uplink. */
    private readonly queuedBytes: (node: string) => number,
    private readonly nowUs: () => number,
  ) {}

  /** The engine asked for a block: answered now if there is room, else when the uplink drains. */
  request(node: SimNode, effect: Effect & { kind: 'read-block' }): void {
    node.pendingReads.push(effect);
    this.pump(node);
  }

  /**
   * The node's uplink freed up. Only a node with reads waiting has anything to do then: reads that
   * come later are started at once, so the event for a node with none would be a no-op.
   */
  drained(node: SimNode): void {
    if (node.pendingReads.length > 0) this.queue.push(this.nowUs(), node.drainedEvent);
  }

  /** A read's event came: the node may answer the next one. */
  done(node: SimNode): void {
    node.readsInFlight--;
  }

  /** Answers waiting block reads, oldest first, while the node's uplink queue has room. */
  pump(node: SimNode): void {
    while (
      node.pendingReads.length > 0 &&
      node.readsInFlight === 0 &&
      this.queuedBytes(node.id) < HIGH_WATER_BYTES
    ) {
      const effect = node.pendingReads.shift() as Effect & { kind: 'read-block' };
      node.readsInFlight++;
      // Field by field, not a spread: one fixed shape for every read-done event.
      const { connection, index, begin, length } = effect;
      this.queue.push(this.nowUs(), {
        kind: 'read-done',
        node: node.id,
        generation: node.generation,
        connection,
        index,
        begin,
        length,
      });
    }
  }
}
