// Recency order for LRU hash maps: a doubly linked list threaded through typed arrays
// (index = value slot), so touching an entry on the lookup path allocates nothing.
// The kernel's LRU is approximate (per-CPU lists, reference bits); exact LRU is a
// stricter form of the same contract: the entry evicted is one not used recently.

export class LruList {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly head: number; // sentinel: next = most recent, prev = least recent

  constructor(capacity: number) {
    this.prev = new Int32Array(capacity + 1).fill(-1);
    this.next = new Int32Array(capacity + 1).fill(-1);
    this.head = capacity;
    this.prev[this.head] = this.head;
    this.next[this.head] = this.head;
  }

  /** Marks `slot` most recently used (it must be in the list). */
  touch(slot: number): void {
    const h = this.head;
    if (this.next[h] === slot) return;
    this.unlink(slot);
    this.linkFront(slot);
  }

  add(slot: number): void {
    this.linkFront(slot);
  }

  remove(slot: number): void {
    this.unlink(slot);
  }

  /** Least recently used slot, or -1 when empty. */
  oldest(): number {
    const p = this.prev[this.head];
    return p === this.head ? -1 : p;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot];
    const n = this.next[slot];
    this.next[p] = n;
    this.prev[n] = p;
  }

  private linkFront(slot: number): void {
    const h = this.head;
    const first = this.next[h];
    this.next[slot] = first;
    this.prev[slot] = h;
    this.prev[first] = slot;
    this.next[h] = slot;
  }
}
