/**
 * Watches the bytes engines put on the wire, to check what the engine cannot check about itself:
 * no block is asked twice on one connection, and every request is answered (piece or reject) or
 * cancelled. Decodes each direction of each link with the same decoder peers use.
 */
import type { Geometry } from '../engine/chunking.ts';
import { WireDecoder } from '../engine/codec.ts';

interface Side {
  readonly decoder: WireDecoder;
  /** Requests this side sent that are not yet answered or cancelled: block key -> sent at. */
  readonly outstanding: Map<string, number>;
}

interface Link {
  readonly client: Side;
  readonly server: Side;
}

export class WireWatch {
  private readonly links = new Map<number, Link>();

  constructor(private readonly geometry: Geometry) {}

  /** Bytes sent on link `linkId` by its client side (or server side); returns a broken invariant. */
  sent(linkId: number, fromClient: boolean, bytes: Uint8Array, nowMs: number): string | undefined {
    let link = this.links.get(linkId);
    if (link === undefined) {
      link = { client: this.side(), server: this.side() };
      this.links.set(linkId, link);
    }
    const from = fromClient ? link.client : link.server;
    const to = fromClient ? link.server : link.client;
    const result = from.decoder.push(bytes);
    // Nothing here keeps a block: a piece body the decoder put together goes back for reuse.
    from.decoder.release();
    if (!result.ok) return `invalid-wire-bytes: ${result.error.code}: ${result.error.message}`;
    for (const event of result.events) {
      if (event.type === 'request') {
        const key = `${event.index}:${event.begin}`;
        if (from.outstanding.has(key))
          return `request-duplicated: block ${key} asked twice on one connection`;
        from.outstanding.set(key, nowMs);
      } else if (event.type === 'cancel') {
        from.outstanding.delete(`${event.index}:${event.begin}`);
      } else if (event.type === 'piece' || event.type === 'reject') {
        to.outstanding.delete(`${event.index}:${event.begin}`);
      }
    }
    return undefined;
  }

  /** The link is gone: its requests died with it. */
  closed(linkId: number): void {
    this.links.delete(linkId);
  }

  /** A request outstanding longer than `maxAgeMs` on a live link was never answered. */
  unanswered(nowMs: number, maxAgeMs: number, alive: (linkId: number) => boolean): string | undefined {
    for (const [linkId, link] of this.links) {
      if (!alive(linkId)) {
        this.links.delete(linkId);
        continue;
      }
      for (const side of [link.client, link.server]) {
        for (const [key, sentAtMs] of side.outstanding) {
          if (nowMs - sentAtMs > maxAgeMs)
            return `request-unanswered: block ${key} asked ${nowMs - sentAtMs} ms ago`;
        }
      }
    }
    return undefined;
  }

  private side(): Side {
    return { decoder: new WireDecoder(this.geometry), outstanding: new Map() };
  }
}
