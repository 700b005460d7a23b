/**
 * Chunks under way: each block copied as it arrives from whoever sent it, the chunk's one buffer made
 * when its last block is in, with a record of who was asked for what (for endgame duplicates) and
 * who sent what (for the smart ban).
 *
 * Blocks wait in piece bodies (piece-bodies.ts), not in a chunk-sized buffer: a peer has several
 * chunks under way from its neighbours, each half there on average, so this holds half the bytes.
 * A block its decoder put together from several pushes is kept in the decoder's own body, uncopied.
 */
import { chunkLength, type Geometry } from './chunking.ts';
import type { Connection, ConnectionId } from './connection.ts';
import { BLOCK_LENGTH_BYTES, type BlockAddress } from './messages.ts';
import type { KnownContent } from './options.ts';
import { BLOCK_OFFSET, givePieceBody, PIECE_BODY_BYTES, takePieceBody } from './piece-bodies.ts';

/** Where each block of a chunk under way stands. */
export const BlockState = { missing: 0, requested: 1, received: 2 } as const;

export interface ChunkDownload {
  readonly index: number;
  readonly lengthBytes: number;
  /** The chunk's bytes, put together when its last block arrives (until then, empty). */
  buffer: Uint8Array;
  /**
   * The blocks received so far, by block, until the chunk is put together: each in a piece body (at
   * BLOCK_OFFSET), or, when the driver knew its bytes, the driver's view of them (shorter than a body).
   */
  readonly blocks: (Uint8Array | undefined)[];
  /** Of `blocks`, those kept as the driver's views (KnownContent). */
  knownBlocks: number;
  /** Per block, a `BlockState`. */
  readonly blockState: Uint8Array;
  blocksReceived: number;
  /** Blocks in state `missing` (kept with every change of `blockState`, so a full chunk is skipped at once). */
  blocksMissing: number;
  /** Peers that contributed a block, blamed together if the chunk fails verification. */
  readonly contributors: Set<ConnectionId>;
  /** Per block, whom it is asked of (several only in endgame, so usually no set is made). */
  readonly requestedFrom: AskedOf[];
  /** The connection that started it: the only sender of a chunk that once failed verification. */
  startedBy: ConnectionId;
  /** Who sent each block (a peer label), for the smart ban. */
  readonly blockSenders: (string | undefined)[];
  lastSource: string;
  lastSourceIsOwner: boolean;
  /** Connections whose first request for it is already in the activity log (logged once each). */
  readonly requestLoggedTo: Set<ConnectionId>;
  /** The sender it was taken over from, and when (see the scheduler): not asked again for a while. */
  takenOverFrom: ConnectionId | undefined;
  takenOverAtMs: number;
}

/** The buffer of a chunk not yet put together. */
const NOT_ALLOCATED = new Uint8Array(0);

export class ChunkAssembly {
  /** Chunks under way, in the order they were started (the scheduler finishes them in that order). */
  readonly downloads = new Map<number, ChunkDownload>();
  /** Chunks started so far (the invariant check looks at downloads again only when this moves). */
  starts = 0;

  constructor(
    private readonly geometry: Geometry,
    private readonly allocateChunk: ((lengthBytes: number) => Uint8Array) | undefined,
    private readonly known: KnownContent | undefined,
  ) {}

  start(index: number, conn: Connection): ChunkDownload {
    const lengthBytes = chunkLength(this.geometry, index);
    const download: ChunkDownload = {
      index,
      lengthBytes,
      buffer: NOT_ALLOCATED,
      blocks: [],
      knownBlocks: 0,
      blockState: new Uint8Array(Math.ceil(lengthBytes / BLOCK_LENGTH_BYTES)),
      blocksReceived: 0,
      blocksMissing: Math.ceil(lengthBytes / BLOCK_LENGTH_BYTES),
      contributors: new Set(),
      requestedFrom: [],
      startedBy: conn.id,
      blockSenders: [],
      lastSource: conn.label,
      lastSourceIsOwner: conn.isOwner,
      requestLoggedTo: new Set(),
      takenOverFrom: undefined,
      takenOverAtMs: 0,
    };
    this.downloads.set(index, download);
    this.starts++;
    return download;
  }

  /** Forgets every block received or asked for: the chunk starts again with `conn` as its sender. */
  reset(download: ChunkDownload, conn: Connection): void {
    download.blockState.fill(BlockState.missing);
    download.blocksMissing = download.blockState.length;
    download.blocksReceived = 0;
    download.contributors.clear();
    download.requestedFrom.length = 0;
    download.blockSenders.length = 0;
    releaseBlocks(download);
    download.startedBy = conn.id;
  }

  /** Records that block `block` of `download` is asked of `conn`. */
  markRequested(download: ChunkDownload, block: number, conn: Connection): void {
    setBlockState(download, block, BlockState.requested);
    const from = download.requestedFrom[block];
    if (from === undefined) download.requestedFrom[block] = conn.id;
    else if (typeof from === 'string') {
      if (from !== conn.id) download.requestedFrom[block] = new Set([from, conn.id]);
    } else from.add(conn.id);
  }

  /** A request to `conn` is withdrawn: the block is missing again unless someone else was asked too. */
  release(conn: Connection, request: BlockAddress): void {
    const download = this.downloads.get(request.index);
    if (download === undefined) return;
    const block = request.begin / BLOCK_LENGTH_BYTES;
    const from = download.requestedFrom[block];
    if (from === conn.id) download.requestedFrom[block] = undefined;
    else if (typeof from === 'object') from.delete(conn.id);
    if (download.blockState[block] === BlockState.requested && askedCount(download, block) === 0)
      setBlockState(download, block, BlockState.missing);
  }

  /** Whom block `begin` of `download` was asked of, forgotten now that it has arrived. */
  takeAsked(download: ChunkDownload, begin: number): AskedOf {
    const block = begin / BLOCK_LENGTH_BYTES;
    const asked = download.requestedFrom[block];
    download.requestedFrom[block] = undefined;
    return asked;
  }

  /**
   * Keeps a block `conn` sent for its chunk (after `takeAsked`). False when the block was already in:
   * then the requests of others asked for it too stand.
   */
  store(download: ChunkDownload, conn: Connection, begin: number, block: Uint8Array): boolean {
    const blockIndex = begin / BLOCK_LENGTH_BYTES;
    if (download.blockState[blockIndex] === BlockState.received) return false;
    download.blocks[blockIndex] = this.keep(download, conn, begin, block);
    setBlockState(download, blockIndex, BlockState.received);
    download.blocksReceived++;
    if (this.isComplete(download)) this.assemble(download);
    download.blockSenders[blockIndex] = conn.label;
    download.contributors.add(conn.id);
    download.lastSource = conn.label;
    download.lastSourceIsOwner = conn.isOwner;
    return true;
  }

  /** What holds a received block until its chunk is put together: the driver's view, the decoder's body, or a copy. */
  private keep(download: ChunkDownload, conn: Connection, begin: number, block: Uint8Array): Uint8Array {
    const view = this.known?.block(download.index, begin, block);
    if (view !== undefined) {
      download.knownBlocks++;
      return view;
    }
    let saved = conn.decoder.adopt(block);
    if (saved === null) {
      saved = takePieceBody();
      saved.set(block, BLOCK_OFFSET);
    }
    return saved;
  }

  /** The last block is in: the chunk's buffer is made from its blocks, which go back for reuse. */
  private assemble(download: ChunkDownload): void {
    const { lengthBytes, blocks } = download;
    if (this.known !== undefined && download.knownBlocks === blocks.length) {
      download.buffer = this.known.chunk(download.index);
      releaseBlocks(download);
      return;
    }
    const buffer = this.allocateChunk?.(lengthBytes) ?? new Uint8Array(lengthBytes);
    for (let block = 0; block < blocks.length; block++) {
      const begin = block * BLOCK_LENGTH_BYTES;
      const end = BLOCK_OFFSET + Math.min(BLOCK_LENGTH_BYTES, lengthBytes - begin);
      const saved = blocks[block] as Uint8Array;
      if (isPieceBody(saved)) buffer.set(saved.subarray(BLOCK_OFFSET, end), begin);
      else buffer.set(saved, begin);
    }
    releaseBlocks(download);
    download.buffer = buffer;
  }

  isComplete(download: ChunkDownload): boolean {
    return download.blocksReceived === download.blockState.length;
  }

  /** Blocks not yet received, over every chunk under way. */
  missingBlocks(): number {
    let missing = 0;
    for (const download of this.downloads.values())
      missing += download.blockState.length - download.blocksReceived;
    return missing;
  }
}

/** Whom a block is asked of: nobody, one connection, or (in endgame) several. */
export type AskedOf = ConnectionId | Set<ConnectionId> | undefined;

/** How many connections block `block` of `download` is asked of. */
export function askedCount(download: ChunkDownload, block: number): number {
  const from = download.requestedFrom[block];
  return from === undefined ? 0 : typeof from === 'string' ? 1 : from.size;
}

/** Whether block `block` of `download` is asked of connection `id`. */
export function isAskedOf(download: ChunkDownload, block: number, id: ConnectionId): boolean {
  const from = download.requestedFrom[block];
  return from === id || (typeof from === 'object' && from.has(id));
}

/** The download's piece bodies go back for reuse (the driver's views are simply dropped). */
function releaseBlocks(download: ChunkDownload): void {
  for (const saved of download.blocks) if (saved !== undefined && isPieceBody(saved)) givePieceBody(saved);
  download.blocks.length = 0;
  download.knownBlocks = 0;
}

/** A kept block is a whole piece body, or a driver's view of at most one block (always shorter). */
function isPieceBody(saved: Uint8Array): boolean {
  return saved.length === PIECE_BODY_BYTES;
}

/** Sets a block's state, keeping the count of missing blocks. */
function setBlockState(download: ChunkDownload, block: number, state: number): void {
  if (download.blockState[block] === BlockState.missing) download.blocksMissing--;
  if (state === BlockState.missing) download.blocksMissing++;
  download.blockState[block] = state;
}
