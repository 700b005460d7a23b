/**
 * How simulated nodes find each other besides peer exchange: the owner's tracker, while it is up
 * (the topology wiring stands for its answers), and for a peer that knows one live peer, that peer,
 * drawn when it joins. With peer exchange on, nodes get IP addresses, since `ut_pex` carries only
 * those.
 */
import { deriveSeed, Random } from '../engine/random.ts';
import type { Scenario } from './scenario.ts';
import { FIRST_PORT, type SimNode } from './sim-node.ts';

/**
 * The host part of a node's addresses: its id, or with peer exchange on an IP of 10.0.0.0/8 by its
 * place in the scenario (the owner 0, the peers from 1), so traces stay readable and reproducible.
 */
export function nodeHost(scenario: Scenario, order: number, id: string): string {
  if (!scenario.policies.peerExchange) return id;
  const n = order + 1;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** The port the node listens on now: the first, or one more for every move. */
export function listenPortOf(node: SimNode): number {
  return FIRST_PORT + node.moves;
}

export class Discovery {
  /** Its own stream, drawn from only by peers that know one live peer: other runs are unchanged. */
  private readonly random: Random;

  constructor(
    private readonly scenario: Scenario,
    seed: number,
    private readonly owner: SimNode,
    private readonly peers: readonly SimNode[],
  ) {
    this.random = new Random(deriveSeed(seed, 'discovery'));
  }

  /** Whether the owner's tracker still answers: it tells joiners, moved and restarted nodes whom to dial. */
  trackerUp(): boolean {
    switch (this.scenario.tracker) {
      case 'stays':
        return true;
      case 'leaves-with-owner':
        return !this.owner.left;
      case 'absent':
        return false;
    }
  }

  /**
   * What a joining node is told: one live peer drawn at random (the owner only while no peer is
   * live), or the tracker's list while the tracker is up, else nobody.
   */
  joining(node: SimNode): void {
    if (node.plan?.knows === 'one-live-peer') {
      node.peers.length = 0;
      const known = this.oneLivePeer(node);
      if (known !== undefined) node.peers.push(known);
    } else if (!this.trackerUp()) {
      node.peers.length = 0;
    }
  }

  private oneLivePeer(node: SimNode): SimNode['peers'][number] | undefined {
    const live = this.peers.filter((peer) => peer !== node && peer.engine !== undefined);
    if (live.length > 0) return { address: this.random.pick(live).address, role: 'neighbour' };
    return this.owner.engine === undefined ? undefined : { address: this.owner.address, role: 'owner' };
  }
}
