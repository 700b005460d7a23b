/**
 * Open read handles of chunk files, least recently used closed first, so `readBlock` reads just the
 * requested bytes without opening a file per block. A handle in use is closed only when its last
 * read finishes.
 */
import type { FileHandle } from 'node:fs/promises';

export interface HandleEntry {
  readonly handle: Promise<FileHandle>;
  users: number;
  evicted: boolean;
}

export class ReadHandleCache {
  private readonly handles = new Map<number, HandleEntry>();
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly capacity: number,
    private readonly open: (index: number) => Promise<FileHandle>,
  ) {}

  /** The chunk's handle, opened if need be, marked in use until `release`. */
  acquire(index: number): HandleEntry {
    let entry = this.handles.get(index);
    if (entry !== undefined) {
      this.handles.delete(index);
      this.handles.set(index, entry);
    } else {
      const handle = this.open(index);
      const created: HandleEntry = { handle, users: 0, evicted: false };
      handle.catch(() => {
        if (this.handles.get(index) === created) this.handles.delete(index);
        created.evicted = true;
      });
      entry = created;
      this.handles.set(index, entry);
      for (const [oldest, old] of this.handles) {
        if (this.handles.size <= this.capacity) break;
        this.handles.delete(oldest);
        this.retire(old);
      }
    }
    entry.users++;
    return entry;
  }

  release(entry: HandleEntry): void {
    entry.users--;
    if (entry.evicted && entry.users === 0) this.closeEntry(entry);
  }

  /** Forgets the chunk's handle (its file was replaced); it closes once no read uses it. */
  invalidate(index: number): void {
    const entry = this.handles.get(index);
    if (entry === undefined) return;
    this.handles.delete(index);
    this.retire(entry);
  }

  /** Forgets every handle; each closes once no read uses it. */
  dropAll(): void {
    for (const entry of this.handles.values()) this.retire(entry);
    this.handles.clear();
  }

  /** Resolves when every handle closing now has closed. */
  async settled(): Promise<void> {
    await Promise.all([...this.closing]);
  }

  private retire(entry: HandleEntry): void {
    if (entry.evicted) return;
    entry.evicted = true;
    if (entry.users === 0) this.closeEntry(entry);
  }

  private closeEntry(entry: HandleEntry): void {
    const closing = entry.handle.then(
      (handle) => handle.close(),
      () => undefined,
    );
    const tracked = closing.catch(() => undefined).finally(() => this.closing.delete(tracked));
    this.closing.add(tracked);
  }
}
