/**
 * SHA-1 backed by `node:crypto`, in the pure-function shape the engine takes (`Sha1`). The engine
 * imports no platform module, so every driver, test and benchmark hands it this one.
 */
import { createHash } from 'node:crypto';
import type { Sha1 } from '../engine/hash.ts';

export const sha1: Sha1 = (data) => new Uint8Array(createHash('sha1').update(data).digest());
