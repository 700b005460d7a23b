/**
 * Whole chunks read for serving, kept in memory under a byte limit (least recently used dropped
 * first), so a chunk's blocks cost one file read between them instead of one read each. Requests
 * for a chunk that is being read join that read. The limit holds whatever the file size and however
 * many peers ask: a chunk is counted from the moment its read starts.
 */

interface Entry {
  readonly bytes: Promise<Uint8Array>;
  readonly lengthBytes: number;
}

export class ChunkReadCache {
  private readonly entries = new Map<number, Entry>();
  private heldBytes = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly load: (index: number) => Promise<Uint8Array>,
  ) {}

  /** Chunk `index` (`lengthBytes` long), from memory or read once for everyone who asks now. */
  get(index: number, lengthBytes: number): Promise<Uint8Array> {
    const cached = this.entries.get(index);
    if (cached !== undefined) {
      this.entries.delete(index);
      this.entries.set(index, cached);
      return cached.bytes;
    }
    const bytes = this.load(index);
    // A chunk larger than the whole budget is read for this request only.
    if (lengthBytes > this.limitBytes) return bytes;
    const entry = this.add(index, bytes, lengthBytes);
    // A failed read is not remembered: the next request tries again.
    bytes.catch(() => {
      if (this.entries.get(index) === entry) this.forget(index, entry);
    });
    return bytes;
  }

  /**
   * Chunk `index` was just stored from `bytes`, which nobody changes any more: a neighbour often
   * asks for it next (a ring always does), so it is kept as if it had been read.
   */
  put(index: number, bytes: Uint8Array): void {
    this.invalidate(index);
    if (bytes.length <= this.limitBytes) this.add(index, Promise.resolve(bytes), bytes.length);
  }

  private add(index: number, bytes: Promise<Uint8Array>, lengthBytes: number): Entry {
    const entry: Entry = { bytes, lengthBytes };
    this.entries.set(index, entry);
    this.heldBytes += lengthBytes;
    for (const [oldest, old] of this.entries) {
      if (this.heldBytes <= this.limitBytes) break;
      this.forget(oldest, old);
    }
    return entry;
  }

  /** The chunk's file was replaced or removed: its cached bytes go. */
  invalidate(index: number): void {
    const entry = this.entries.get(index);
    if (entry !== undefined) this.forget(index, entry);
  }

  clear(): void {
    this.entries.clear();
    this.heldBytes = 0;
  }

  /** Bytes the cache holds or is reading now (for tests). */
  get sizeBytes(): number {
    return this.heldBytes;
  }

  private forget(index: number, entry: Entry): void {
    this.entries.delete(index);
    this.heldBytes -= entry.lengthBytes;
  }
}
