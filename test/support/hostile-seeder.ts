/**
 * The hostile-seeder fixture: an owner process, one misbehaving in-process seeder that claims every
 * chunk (a liar, a staller), and one honest in-process peer that has been told of nobody yet. Each
 * test wires the peer up and makes its own checks.
 */
import { readFileSync } from 'node:fs';
import { Bitfield } from '../../src/engine/bitfield.ts';
import { chunkLength, type Geometry } from '../../src/engine/chunking.ts';
import type { EngineLimits } from '../../src/engine/engine.ts';
import type { Metainfo } from '../../src/engine/metainfo.ts';
import type { BlockStorage } from '../../src/transport/driver.ts';
import { InProcessNode, MemoryDisk, ownerMetainfo } from './inproc.ts';
import { Workspace } from './processes.ts';

export interface HostileSeederOptions {
  readonly fileName: string;
  readonly sizeBytes: number;
  readonly fileSeed: number;
  /** Extra `swarm owner` arguments. */
  readonly ownerArgs: readonly string[];
  readonly seeder: { readonly name: string; readonly seed: number };
  /** The seeder's storage, given the file's chunks. */
  readonly seederStorage: (chunks: Buffer[]) => BlockStorage;
  readonly peer: { readonly name: string; readonly seed: number; readonly limits?: Partial<EngineLimits> };
}

export interface HostileSeeder {
  readonly space: Workspace;
  readonly file: string;
  /** The file's bytes. */
  readonly original: Buffer;
  readonly ownerAddress: string;
  readonly metainfo: Metainfo;
  readonly geometry: Geometry;
  readonly seeder: InProcessNode;
  readonly seederAddress: string;
  readonly peer: InProcessNode;
  /** The honest peer's chunks. */
  readonly disk: MemoryDisk;
  /** Stops both in-process nodes and the owner, and removes the folder. */
  close(): Promise<void>;
}

/** The file cut into its chunks (views into `file`). */
function splitChunks(file: Buffer, geometry: Geometry): Buffer[] {
  return Array.from({ length: geometry.pieceCount }, (_, index) => {
    const start = index * geometry.pieceLengthBytes;
    return file.subarray(start, start + chunkLength(geometry, index));
  });
}

export async function startHostileSeeder(options: HostileSeederOptions): Promise<HostileSeeder> {
  const space = new Workspace();
  const nodes: InProcessNode[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.driver.stop()));
    await space.close();
  };
  try {
    const file = space.file(options.fileName, options.sizeBytes, options.fileSeed);
    const { port } = await space.owner(file, options.ownerArgs);
    const metainfo = await ownerMetainfo(port);
    const { geometry } = metainfo;
    const original = readFileSync(file);
    const seeder = new InProcessNode({
      metainfo,
      name: options.seeder.name,
      seed: options.seeder.seed,
      have: Bitfield.full(geometry.pieceCount),
      storage: options.seederStorage(splitChunks(original, geometry)),
    });
    nodes.push(seeder);
    const seederAddress = `127.0.0.1:${await seeder.driver.listen()}`;
    const disk = new MemoryDisk();
    const peer = new InProcessNode({
      metainfo,
      name: options.peer.name,
      seed: options.peer.seed,
      storage: disk,
      topology: 'mesh',
      phases: 'overlapped',
      ...(options.peer.limits === undefined ? {} : { limits: options.peer.limits }),
    });
    nodes.push(peer);
    await peer.driver.listen();
    const ownerAddress = `127.0.0.1:${port}`;
    return {
      space,
      file,
      original,
      ownerAddress,
      metainfo,
      geometry,
      seeder,
      seederAddress,
      peer,
      disk,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
