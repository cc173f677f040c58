// BPF_MAP_TYPE_HASH and its variants (percpu_hash, lru_hash, lru_percpu_hash) in one
// implementation: they differ only in how many value slots an entry has and in what
// happens when the map is full. Storage is preallocated from max_entries like the
// kernel's default (non-BPF_F_NO_PREALLOC) hash maps, so a program's lookup and update
// never allocate VM memory and value pointers stay valid until the entry is deleted.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, type BpfMap } from './BpfMap.js';
import { keyCoder, type KeyCoder, type MapKey } from './keyCoder.js';
import { cpuSlot, round8, validFlags, writeSlots } from './layout.js';
import { LruList } from './LruList.js';
import type { VmRegion } from '../../vm/ts/vm.js';
import { valuesRegion } from './regions.js';

export interface HashOptions {
  /** Value slots per entry: the CPU count for per-CPU maps, 1 otherwise. */
  slots: number;
  /** Evict the least recently used entry instead of failing with -E2BIG when full. */
  lru: boolean;
}

export class HashMap implements BpfMap {
  readonly perCpu: boolean;
  private readonly keySize: number;
  private readonly valueSize: number;
  private readonly stride: number;
  private readonly slots: number;
  private readonly entryBytes: number;
  private readonly base: number;
  private readonly index = new Map<MapKey, number>();
  private readonly keyOf: KeyCoder;
  /** Key bytes per slot, for entries() and for removing evicted entries from the index. */
  private readonly keyStore: Uint8Array;
  private readonly slotKey: MapKey[];
  private readonly free: Int32Array;
  private freeTop: number;
  private readonly lru: LruList | null;

  constructor(
    private readonly vm: BpfVm,
    readonly spec: MapSpec,
    readonly handle: bigint,
    opts: HashOptions,
  ) {
    if (spec.keySize <= 0 || spec.valueSize <= 0 || spec.maxEntries <= 0) {
      throw new Error(`map ${spec.name}: ${spec.type} needs key size, value size and max_entries > 0`);
    }
    this.keySize = spec.keySize;
    this.valueSize = spec.valueSize;
    this.stride = round8(spec.valueSize);
    this.slots = opts.slots;
    this.perCpu = spec.type === 'percpu_hash' || spec.type === 'lru_percpu_hash';
    this.entryBytes = this.stride * this.slots;
    const n = spec.maxEntries;
    this.base = vm.allocRw(n * this.entryBytes, 8);
    this.keyOf = keyCoder(spec.keySize);
    this.keyStore = new Uint8Array(n * spec.keySize);
    this.slotKey = new Array<MapKey>(n);
    this.free = new Int32Array(n);
    // Hand out low slots first so a small map's values stay together.
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.freeTop = n;
    this.lru = opts.lru ? new LruList(n) : null;
  }

  get size(): number {
    return this.index.size;
  }

  valueRegion(): VmRegion {
    return valuesRegion(this, this.base, this.spec.maxEntries * this.slots, this.stride);
  }

  lookupAddr(key: Uint8Array, cpu: number): number {
    const slot = this.index.get(this.keyOf(key, 0));
    if (slot === undefined) return 0;
    if (this.lru !== null) this.lru.touch(slot);
    return this.base + slot * this.entryBytes + cpuSlot(cpu, this.slots) * this.stride;
  }

  lookupAddrAt(mem: Uint8Array, off: number, cpu: number): number {
    const slot = this.index.get(this.keyOf(mem, off));
    if (slot === undefined) return 0;
    if (this.lru !== null) this.lru.touch(slot);
    return this.base + slot * this.entryBytes + cpuSlot(cpu, this.slots) * this.stride;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number, cpu: number | 'all'): number {
    if (!validFlags(flags) || key.length < this.keySize || value.length < this.valueSize) return -EINVAL;
    const k = this.keyOf(key, 0);
    let slot = this.index.get(k);
    const mem = this.vm.memory();
    const c = cpu === 'all' ? 'all' : cpuSlot(cpu, this.slots);
    if (slot !== undefined) {
      if (flags === BPF_NOEXIST) return -EEXIST;
      writeSlots(mem, this.base + slot * this.entryBytes, this.stride, this.slots, this.valueSize, value, c, false);
      if (this.lru !== null) this.lru.touch(slot);
      return 0;
    }
    if (flags === BPF_EXIST) return -ENOENT;
    if (this.freeTop > 0) slot = this.free[--this.freeTop];
    else if (this.lru !== null) {
      slot = this.lru.oldest();
      this.index.delete(this.slotKey[slot]);
      this.lru.remove(slot);
    } else return -E2BIG;
    this.index.set(k, slot);
    this.slotKey[slot] = k;
    this.keyStore.set(key.length === this.keySize ? key : key.subarray(0, this.keySize), slot * this.keySize);
    writeSlots(mem, this.base + slot * this.entryBytes, this.stride, this.slots, this.valueSize, value, c, true);
    if (this.lru !== null) this.lru.add(slot);
    return 0;
  }

  delete(key: Uint8Array): number {
    if (key.length < this.keySize) return -EINVAL;
    const k = this.keyOf(key, 0);
    const slot = this.index.get(k);
    if (slot === undefined) return -ENOENT;
    this.index.delete(k);
    if (this.lru !== null) this.lru.remove(slot);
    this.free[this.freeTop++] = slot;
    return 0;
  }

  lookup(key: Uint8Array): Uint8Array | Uint8Array[] | null {
    if (key.length < this.keySize) return null;
    const slot = this.index.get(this.keyOf(key, 0));
    return slot === undefined ? null : this.valueAt(slot);
  }

  entries(): { key: Uint8Array; value: Uint8Array | Uint8Array[] }[] {
    const out: { key: Uint8Array; value: Uint8Array | Uint8Array[] }[] = [];
    // JS Map iteration is insertion order: stable between dumps.
    for (const slot of this.index.values()) {
      out.push({ key: this.keyStore.slice(slot * this.keySize, (slot + 1) * this.keySize), value: this.valueAt(slot) });
    }
    return out;
  }

  private valueAt(slot: number): Uint8Array | Uint8Array[] {
    const mem = this.vm.memory();
    const a = this.base + slot * this.entryBytes;
    if (!this.perCpu) return mem.slice(a, a + this.valueSize);
    const out: Uint8Array[] = [];
    for (let c = 0; c < this.slots; c++) out.push(mem.slice(a + c * this.stride, a + c * this.stride + this.valueSize));
    return out;
  }
}
