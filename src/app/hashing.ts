/** SHA-1 on node:crypto: the pure function the engine and the store take for piece hashes. */
import { createHash } from 'node:crypto';
import type { Sha1 } from '../engine/hash.ts';

export const sha1: Sha1 = (data) => new Uint8Array(createHash('sha1').update(data).digest());
