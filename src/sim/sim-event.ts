/** Everything that can happen on the simulator's event queue: network deliveries and the simulator's own events. */
import type { NetworkEvent } from './network.ts';

export type SimEvent =
  | NetworkEvent
  | { readonly kind: 'join'; readonly node: string }
  | { readonly kind: 'timer'; readonly node: string; readonly generation: number }
  | { readonly kind: 'drained'; readonly node: string }
  | {
      readonly kind: 'read-done';
      readonly node: string;
      readonly generation: number;
      readonly connection: string;
      readonly index: number;
      readonly begin: number;
      readonly length: number;
    }
  | { readonly kind: 'fault'; readonly index: number }
  | { readonly kind: 'fault-over'; readonly index: number }
  | { readonly kind: 'restart'; readonly node: string; readonly move: boolean }
  | { readonly kind: 'heal' }
  | {
      readonly kind: 'write-done';
      readonly node: string;
      readonly generation: number;
      readonly index: number;
      readonly bytes: Uint8Array;
    };
