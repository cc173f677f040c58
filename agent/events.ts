// Agent → host events, batched: one send() per batch keeps a busy hook from paying a
// message per hit. A batch leaves when it is full or after a short delay.

import type { AgentBatch, AgentEvent } from '../protocol/messages.js';

const FLUSH_DELAY_MS = 50;
const MAX_QUEUED = 100_000;

export class EventQueue {
  private events: AgentEvent[] = [];
  private dropped = 0;
  /** Records dropped over the agent's life, for the stats line. */
  droppedTotal = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private batchSize = 256,
    /** Events held before they leave in a batch; more are dropped (and counted). Tests shrink it. */
    private capacity = MAX_QUEUED,
  ) {}

  setCapacity(n: number): void {
    this.capacity = Math.max(1, n);
  }

  setBatchSize(n: number): void {
    this.batchSize = Math.max(1, n);
  }

  /** False when the queue is full and the event was dropped (ring buffers report it as -ENOSPC). */
  push(event: AgentEvent): boolean {
    if (this.events.length >= this.capacity) {
      this.dropped++;
      this.droppedTotal++;
      return false;
    }
    this.events.push(event);
    if (this.events.length >= this.batchSize) this.flush();
    else if (this.timer === null) this.timer = setTimeout(() => this.flush(), FLUSH_DELAY_MS);
    return true;
  }

  /** Sends at once; used for latency-sensitive events (first hit) and at detach. */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.events.length === 0 && this.dropped === 0) return;
    const batch: AgentBatch = { kind: 'bpftime-ts/events', events: this.events, dropped: this.dropped };
    this.events = [];
    this.dropped = 0;
    send(batch);
  }
}
