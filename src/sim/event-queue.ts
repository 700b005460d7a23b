/**
 * The simulator's one event queue: a binary min-heap ordered by virtual time, ties broken by the
 * sequence number in which events were scheduled, so equal-time events run in a fixed order.
 *
 * Times and sequence numbers live in typed arrays beside the events, not in a record per event: a
 * run schedules millions of events, and a wrapper object each was garbage the collector had to chase.
 *
 * Events for the very time of the last pop (a third of a run's: reads, writes, drained uplinks) skip
 * the heap: they wait in a first-in, first-out line, already in order, and each pop takes whichever
 * of the line's head and the heap's top comes first. The order is exactly the heap's alone.
 */

/** Slots the heap starts with; it doubles when full. */
const INITIAL_CAPACITY = 1024;

export class EventQueue<T> {
  private times = new Float64Array(INITIAL_CAPACITY);
  /** Doubles, not 32-bit integers: a long run may schedule more than 2^32 events. */
  private sequences = new Float64Array(INITIAL_CAPACITY);
  private readonly events: (T | undefined)[] = [];
  private length = 0;
  private nextSequence = 0;
  /** The time of the last pop: events pushed for it go into the line. */
  private lastTimeUs = Number.NEGATIVE_INFINITY;
  /**
   * The line: events (from `lineHead` to `lineTail`) and their sequence numbers, all at `lineTimeUs`.
   * Its arrays are reused, never shrunk: emptied and refilled thousands of times a second, a line that
   * gave its storage back would allocate it again each time.
   */
  private readonly lineEvents: (T | undefined)[] = [];
  private readonly lineSequences: number[] = [];
  private lineHead = 0;
  private lineTail = 0;
  private lineTimeUs = 0;

  get size(): number {
    return this.length + this.lineTail - this.lineHead;
  }

  push(timeUs: number, event: T): void {
    if (timeUs === this.lastTimeUs && (this.lineHead === this.lineTail || timeUs === this.lineTimeUs)) {
      this.lineTimeUs = timeUs;
      this.lineEvents[this.lineTail] = event;
      this.lineSequences[this.lineTail] = this.nextSequence++;
      this.lineTail++;
      return;
    }
    this.pushToHeap(timeUs, event);
  }

  private pushToHeap(timeUs: number, event: T): void {
    if (this.length === this.times.length) this.grow();
    const { times, sequences } = this;
    const sequence = this.nextSequence++;
    let at = this.length++;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const parentTime = times[parent] as number;
      // Sequence numbers are unique: an event not before its parent comes after it.
      if (timeUs > parentTime || (timeUs === parentTime && sequence > (sequences[parent] as number))) break;
      this.move(parent, at);
      at = parent;
    }
    this.place(at, timeUs, sequence, event);
  }

  /** The time of the earliest event, or undefined when none is left. */
  peekTimeUs(): number | undefined {
    if (this.lineHead === this.lineTail) return this.length === 0 ? undefined : this.times[0];
    return this.length === 0 ? this.lineTimeUs : Math.min(this.lineTimeUs, this.times[0] as number);
  }

  /** Removes and returns the earliest event (see `peekTimeUs` for its time). */
  pop(): T | undefined {
    if (this.lineHead < this.lineTail && !this.heapFirst()) return this.popLine();
    if (this.length === 0) return undefined;
    this.lastTimeUs = this.times[0] as number;
    return this.popHeap();
  }

  /** Whether the heap's top comes before the line's head. */
  private heapFirst(): boolean {
    if (this.length === 0) return false;
    const top = this.times[0] as number;
    return (
      top < this.lineTimeUs ||
      (top === this.lineTimeUs &&
        (this.sequences[0] as number) < (this.lineSequences[this.lineHead] as number))
    );
  }

  private popLine(): T {
    const event = this.lineEvents[this.lineHead] as T;
    this.lineEvents[this.lineHead] = undefined;
    this.lineHead++;
    this.lastTimeUs = this.lineTimeUs;
    if (this.lineHead === this.lineTail) {
      this.lineHead = 0;
      this.lineTail = 0;
    }
    return event;
  }

  private popHeap(): T | undefined {
    const { times, sequences, events } = this;
    const top = events[0];
    const last = --this.length;
    const lastTime = times[last] as number;
    const lastSequence = sequences[last] as number;
    const lastEvent = events[last];
    events[last] = undefined;
    if (last === 0) return top;
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= last) break;
      const right = left + 1;
      const child = right < last && this.before(right, left) ? right : left;
      const childTime = times[child] as number;
      if (childTime > lastTime || (childTime === lastTime && (sequences[child] as number) > lastSequence))
        break;
      this.move(child, at);
      at = child;
    }
    this.place(at, lastTime, lastSequence, lastEvent);
    return top;
  }

  /** Slot `from`'s event moves to slot `to` (a step of sifting). */
  private move(from: number, to: number): void {
    this.times[to] = this.times[from] as number;
    this.sequences[to] = this.sequences[from] as number;
    this.events[to] = this.events[from];
  }

  private place(at: number, timeUs: number, sequence: number, event: T | undefined): void {
    this.times[at] = timeUs;
    this.sequences[at] = sequence;
    this.events[at] = event;
  }

  private before(a: number, b: number): boolean {
    const timeA = this.times[a] as number;
    const timeB = this.times[b] as number;
    return (
      timeA < timeB || (timeA === timeB && (this.sequences[a] as number) < (this.sequences[b] as number))
    );
  }

  private grow(): void {
    const times = new Float64Array(this.times.length * 2);
    times.set(this.times);
    this.times = times;
    const sequences = new Float64Array(this.sequences.length * 2);
    sequences.set(this.sequences);
    this.sequences = sequences;
  }
}
