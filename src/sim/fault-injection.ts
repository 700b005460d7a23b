/**
 * Carries out the fault plan (`faults.ts`) on a running simulation: resets, crashes and restarts
 * (on a new port for a move), the owner leaving, partitions, slow uplinks, lying peers and full
 * disks; then the heal that ends the faulty phase.
 */

import { listenPortOf } from './discovery.ts';
import type { EventQueue } from './event-queue.ts';
import { faultEndMs } from './faults.ts';
import type { Network } from './network.ts';
import type { Fault } from './scenario.ts';
import type { SimEvent } from './sim-event.ts';
import type { SimNode } from './sim-node.ts';

/** How long the owner waits before it checks again whether it may leave yet. */
const OWNER_LEAVE_RETRY_US = 100_000;

/** What fault injection needs from the simulator that runs it. */
export interface FaultHost {
  readonly nodes: ReadonlyMap<string, SimNode>;
  readonly network: Network;
  readonly queue: EventQueue<SimEvent>;
  readonly ownerId: string;
  nowUs(): number;
  nowMs(): number;
  /** Starts the node's engine from its disk. */
  startEngine(node: SimNode): void;
  /** Carries out the node's pending effects. */
  drain(node: SimNode): void;
  /** Forgets that the node has effects pending (it just crashed). */
  forget(node: SimNode): void;
  /** True once every chunk is on a live, honest peer: the owner may leave. */
  everyChunkOnALivePeer(): boolean;
  /** Whether the owner's tracker still tells moved and restarted nodes whom to dial. */
  trackerUp(): boolean;
}

export class FaultInjector {
  constructor(private readonly host: FaultHost) {}

  /** Starts fault `index`, and queues its end (or the restart) when it has one. */
  start(fault: Fault, index: number): void {
    const { host } = this;
    const end = faultEndMs(fault);
    switch (fault.kind) {
      case 'reset':
        host.network.resetNode(fault.node, 'connection reset', false);
        return;
      case 'crash':
      case 'move': {
        const node = this.node(fault.node);
        if (node.crashed) return;
        this.crash(node);
        if (end !== undefined) {
          host.queue.push(end * 1000, { kind: 'restart', node: node.id, move: fault.kind === 'move' });
        }
        return;
      }
      case 'owner-leave':
        this.ownerLeave(index);
        return;
      case 'partition':
        this.forEachCut(fault.nodes, (a, b) => host.network.partition(a, b));
        break;
      case 'slow':
        host.network.setUploadCapacity(fault.node, fault.uploadBytesPerSecond);
        break;
      case 'corrupt':
        this.node(fault.node).corrupt = true;
        return;
      case 'disk-full': {
        const disk = this.node(fault.node).disk;
        disk.fullUntilMs = Math.max(disk.fullUntilMs, end ?? Number.POSITIVE_INFINITY);
        return;
      }
    }
    if (end !== undefined) host.queue.push(end * 1000, { kind: 'fault-over', index });
  }

  /** Ends a fault that lasts: a partition heals, a slow uplink recovers. */
  end(fault: Fault): void {
    if (fault.kind === 'partition') {
      this.forEachCut(fault.nodes, (a, b) => this.host.network.heal(a, b));
    } else if (fault.kind === 'slow') {
      const node = this.node(fault.node);
      this.host.network.setUploadCapacity(node.id, node.normalUploadBytesPerSecond);
    }
  }

  /** The faulty phase is over: partitions heal, capacities and disks recover, the crashed restart. */
  heal(): void {
    const { host } = this;
    host.network.healAll();
    for (const node of host.nodes.values()) {
      host.network.setUploadCapacity(node.id, node.normalUploadBytesPerSecond);
      if (node.disk.fullUntilMs > host.nowMs()) node.disk.fullUntilMs = 0;
      if (node.crashed && !node.left) this.restart(node, false);
    }
  }

  /** Starts the node again from its disk; after a move, on a new port the others are told of. */
  restart(node: SimNode, move: boolean): void {
    node.crashed = false;
    if (move) this.move(node);
    if (!node.joined) return;
    this.host.startEngine(node);
    if (!this.host.trackerUp()) return;
    // Neighbours that finished dial nobody, so the restarted node reaches out (a tracker's peer list).
    const inbound = node.dialledBy.map((id) => ({
      address: this.node(id).address,
      role: 'neighbour' as const,
    }));
    if (inbound.length > 0 && node.engine !== undefined) {
      node.engine.handlePeers(this.host.nowMs(), inbound);
      this.host.drain(node);
    }
  }

  /** The owner leaves only once the swarm holds every chunk; until then it checks again later. */
  private ownerLeave(index: number): void {
    const owner = this.node(this.host.ownerId);
    if (owner.left) return;
    if (!this.host.everyChunkOnALivePeer()) {
      this.host.queue.push(this.host.nowUs() + OWNER_LEAVE_RETRY_US, { kind: 'fault', index });
      return;
    }
    owner.left = true;
    this.crash(owner);
  }

  /** Memory is lost, the disk is kept; its connections are reset under the others' feet. */
  private crash(node: SimNode): void {
    const stats = node.engine?.getStats();
    node.totals.bytesUp += stats?.bytesUp ?? 0;
    node.totals.bytesDown += stats?.bytesDown ?? 0;
    node.engine = undefined;
    node.crashed = true;
    node.generation++;
    node.timerAtMs = undefined;
    node.pendingReads.length = 0;
    node.readsInFlight = 0;
    node.blockNext.clear();
    this.host.forget(node);
    this.host.network.unlisten(node.address);
    this.host.network.resetNode(node.id, 'connection reset', true);
  }

  /** A new port; while the tracker is up, every node that knows the old address learns the new one. */
  private move(node: SimNode): void {
    const old = node.address;
    node.moves++;
    node.address = `${node.host}:${listenPortOf(node)}`;
    if (!this.host.trackerUp()) return;
    for (const other of this.host.nodes.values()) {
      const entry = other.peers.find((peer) => peer.address === old);
      if (entry === undefined) continue;
      entry.address = node.address;
      if (other.engine === undefined) continue;
      other.engine.handlePeers(this.host.nowMs(), [{ address: node.address, role: entry.role }]);
      this.host.drain(other);
    }
  }

  /** Every pair with one side in `group` and the other outside it, in a fixed order. */
  private forEachCut(group: readonly string[], cut: (a: string, b: string) => void): void {
    const inside = new Set(group);
    for (const a of inside) for (const b of this.host.nodes.keys()) if (!inside.has(b)) cut(a, b);
  }

  private node(id: string): SimNode {
    return this.host.nodes.get(id) as SimNode;
  }
}
