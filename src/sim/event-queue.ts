/**
 * The simulator's one event queue: a binary min-heap ordered by virtual time, ties broken by the
 * sequence number in which events were scheduled, so equal-time events run in a fixed order.
 */

export interface Scheduled<T> {
  readonly timeUs: number;
  readonly sequence: number;
  readonly event: T;
}

export class EventQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private nextSequence = 0;

  get size(): number {
    return this.heap.length;
  }

  push(timeUs: number, event: T): void {
    const item = { timeUs, sequence: this.nextSequence++, event };
    const heap = this.heap;
    heap.push(item);
    let at = heap.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!before(item, heap[parent] as Scheduled<T>)) break;
      heap[at] = heap[parent] as Scheduled<T>;
      at = parent;
    }
    heap[at] = item;
  }

  pop(): Scheduled<T> | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let at = 0;
    const length = heap.length;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= length) break;
      const right = left + 1;
      const child =
        right < length && before(heap[right] as Scheduled<T>, heap[left] as Scheduled<T>) ? right : left;
      if (!before(heap[child] as Scheduled<T>, last)) break;
      heap[at] = heap[child] as Scheduled<T>;
      at = child;
    }
    heap[at] = last;
    return top;
  }
}

function before<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.sequence < b.sequence);
}
