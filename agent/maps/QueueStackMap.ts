// BPF_MAP_TYPE_QUEUE (FIFO) and BPF_MAP_TYPE_STACK (LIFO), after the kernel's
// queue_stack_maps.c: max_entries value slots in the VM arena used as a ring, with the
// head (next slot written) and tail (oldest element) kept here, out of the arena. A map
// has no keys: programs use bpf_map_push_elem / pop_elem / peek_elem, which copy values
// in and out, and never get a pointer into the ring. From user space, update is push and
// lookup is peek, as the bpf() syscall does with a NULL key.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { BPF_EXIST, EINVAL, ENOENT, E2BIG, type BpfMap } from './BpfMap.js';
import { round8 } from './layout.js';

export class QueueStackMap implements BpfMap {
  readonly lifo: boolean;
  private readonly stride: number;
  private readonly base: number;
  private readonly capacity: number;
  /** Next slot to write; the newest element is at head - 1. */
  private head = 0;
  /** Oldest element. */
  private tail = 0;
  private count = 0;

  constructor(
    private readonly vm: BpfVm,
    readonly spec: MapSpec,
    readonly handle: bigint,
  ) {
    if (spec.keySize !== 0 || spec.valueSize <= 0 || spec.maxEntries <= 0) {
      throw new Error(`map ${spec.name}: a ${spec.type} needs key_size 0, value_size and max_entries > 0`);
    }
    this.lifo = spec.type === 'stack';
    this.capacity = spec.maxEntries;
    this.stride = round8(spec.valueSize);
    this.base = vm.allocRw(this.capacity * this.stride, 8);
  }

  get size(): number {
    return this.count;
  }

  private slotAddr(i: number): number {
    return this.base + i * this.stride;
  }

  /** bpf_map_push_elem: BPF_EXIST on a full map drops the oldest element to make room. */
  push(value: Uint8Array, flags: number): number {
    if (flags !== 0 && flags !== BPF_EXIST) return -EINVAL;
    if (value.length < this.spec.valueSize) return -EINVAL;
    if (this.count === this.capacity) {
      if (flags !== BPF_EXIST) return -E2BIG;
      this.tail = (this.tail + 1) % this.capacity;
      this.count--;
    }
    this.vm.memory().set(value.subarray(0, this.spec.valueSize), this.slotAddr(this.head));
    this.head = (this.head + 1) % this.capacity;
    this.count++;
    return 0;
  }

  /** The slot pop or peek would take (front of the queue, top of the stack), or -1. */
  private nextSlot(): number {
    if (this.count === 0) return -1;
    return this.lifo ? (this.head + this.capacity - 1) % this.capacity : this.tail;
  }

  /** bpf_map_pop_elem / peek_elem into VM memory at `dst`: 0, or -ENOENT (and zeroes) when empty. */
  take(dst: number, remove: boolean): number {
    const mem = this.vm.memory();
    const slot = this.nextSlot();
    if (slot < 0) {
      mem.fill(0, dst, dst + this.spec.valueSize);
      return -ENOENT;
    }
    const a = this.slotAddr(slot);
    mem.copyWithin(dst, a, a + this.spec.valueSize);
    if (remove) {
      if (this.lifo) this.head = slot;
      else this.tail = (this.tail + 1) % this.capacity;
      this.count--;
    }
    return 0;
  }

  lookupAddr(_key: Uint8Array, _cpu: number): number {
    return 0;
  }

  update(_key: Uint8Array, value: Uint8Array, flags: number, _cpu: number | 'all'): number {
    return this.push(value, flags);
  }

  delete(_key: Uint8Array): number {
    return -EINVAL;
  }

  lookup(_key: Uint8Array): Uint8Array | null {
    const slot = this.nextSlot();
    if (slot < 0) return null;
    const a = this.slotAddr(slot);
    return this.vm.memory().slice(a, a + this.spec.valueSize);
  }

  /** Every element in the order pops would return them, keyed by that position (u32). */
  entries(): { key: Uint8Array; value: Uint8Array }[] {
    const mem = this.vm.memory();
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (let i = 0; i < this.count; i++) {
      const slot = this.lifo ? (this.head + this.capacity - 1 - i) % this.capacity : (this.tail + i) % this.capacity;
      const a = this.slotAddr(slot);
      out.push({ key: new Uint8Array(new Uint32Array([i]).buffer), value: mem.slice(a, a + this.spec.valueSize) });
    }
    return out;
  }
}
