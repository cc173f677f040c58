// BPF_MAP_TYPE_LPM_TRIE, with the kernel's semantics (lpm_trie.c): a key is a u32 prefix
// length followed by key_size - 4 data bytes; an entry is a prefix (its first prefixlen
// bits); a lookup returns the value of the longest stored prefix that the lookup key's
// first prefixlen bits start with. Update and delete are exact on (prefixlen, prefix);
// a full map refuses a new prefix with -ENOSPC. Data compares in network (memory) order,
// most significant bit of the first byte first.
//
// The index is one JS Map per prefix length in use (prefix bits → slot), probed from the
// longest length down: at most data bits + 1 probes, usually a handful. Values sit in
// preallocated slots of the VM arena so lookups hand programs a pointer, as for hash maps;
// the index and keys stay here.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { BPF_EXIST, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, ENOSPC, type BpfMap } from './BpfMap.js';
import { round8, validFlags } from './layout.js';
import type { VmRegion } from '../../vm/ts/vm.js';
import { valuesRegion } from './regions.js';

export class LpmTrieMap implements BpfMap {
  private readonly dataSize: number;
  private readonly maxPrefix: number;
  private readonly stride: number;
  private readonly base: number;
  /** prefixlen → (prefix bits as a string → slot). */
  private readonly byLength = new Map<number, Map<string, number>>();
  /** Prefix lengths in use, longest first. */
  private lengths: number[] = [];
  /** The key each slot was last updated with (the kernel keeps the caller's bytes). */
  private readonly keys: (Uint8Array | null)[];
  private readonly free: number[] = [];

  constructor(
    private readonly vm: BpfVm,
    readonly spec: MapSpec,
    readonly handle: bigint,
  ) {
    if (spec.keySize < 5 || spec.valueSize <= 0 || spec.maxEntries <= 0) {
      throw new Error(`map ${spec.name}: an lpm_trie needs a key of a u32 prefix length and data, value_size and max_entries > 0`);
    }
    this.dataSize = spec.keySize - 4;
    this.maxPrefix = this.dataSize * 8;
    this.stride = round8(spec.valueSize);
    this.base = vm.allocRw(spec.maxEntries * this.stride, 8);
    this.keys = new Array<Uint8Array | null>(spec.maxEntries).fill(null);
    for (let i = spec.maxEntries - 1; i >= 0; i--) this.free.push(i);
  }

  get size(): number {
    return this.spec.maxEntries - this.free.length;
  }

  private static prefixLen(key: Uint8Array, off: number): number {
    return (key[off] | (key[off + 1] << 8) | (key[off + 2] << 16) | (key[off + 3] << 24)) >>> 0;
  }

  /** The first `bits` bits of the data at `off + 4`, as a string (whole bytes, then the masked last one). */
  private prefix(key: Uint8Array, off: number, bits: number): string {
    const whole = bits >>> 3;
    let s = '';
    for (let i = 0; i < whole; i++) s += String.fromCharCode(key[off + 4 + i]);
    const rest = bits & 7;
    if (rest) s += String.fromCharCode(key[off + 4 + whole] & (0xff << (8 - rest)) & 0xff);
    return s;
  }

  private slotAt(key: Uint8Array, off: number): number {
    const len = LpmTrieMap.prefixLen(key, off);
    if (len > this.maxPrefix) return -1;
    for (const l of this.lengths) {
      if (l > len) continue;
      const slot = this.byLength.get(l)!.get(this.prefix(key, off, l));
      if (slot !== undefined) return slot;
    }
    return -1;
  }

  valueRegion(): VmRegion {
    return valuesRegion(this, this.base, this.spec.maxEntries, this.stride);
  }

  lookupAddr(key: Uint8Array, _cpu: number): number {
    if (key.length < this.spec.keySize) return 0;
    const slot = this.slotAt(key, 0);
    return slot < 0 ? 0 : this.base + slot * this.stride;
  }

  lookupAddrAt(mem: Uint8Array, off: number, _cpu: number): number {
    const slot = this.slotAt(mem, off);
    return slot < 0 ? 0 : this.base + slot * this.stride;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number, _cpu: number | 'all'): number {
    if (!validFlags(flags) || key.length < this.spec.keySize || value.length < this.spec.valueSize) return -EINVAL;
    const len = LpmTrieMap.prefixLen(key, 0);
    if (len > this.maxPrefix) return -EINVAL;
    const p = this.prefix(key, 0, len);
    let index = this.byLength.get(len);
    let slot = index?.get(p);
    if (slot !== undefined) {
      if (flags === BPF_NOEXIST) return -EEXIST;
    } else {
      if (flags === BPF_EXIST) return -ENOENT;
      if (this.free.length === 0) return -ENOSPC;
      slot = this.free.pop()!;
      if (!index) {
        index = new Map();
        this.byLength.set(len, index);
        this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
      }
      index.set(p, slot);
    }
    this.keys[slot] = key.slice(0, this.spec.keySize);
    this.vm.memory().set(value.subarray(0, this.spec.valueSize), this.base + slot * this.stride);
    return 0;
  }

  delete(key: Uint8Array): number {
    if (key.length < this.spec.keySize) return -EINVAL;
    const len = LpmTrieMap.prefixLen(key, 0);
    if (len > this.maxPrefix) return -EINVAL;
    const index = this.byLength.get(len);
    const p = this.prefix(key, 0, len);
    const slot = index?.get(p);
    if (index === undefined || slot === undefined) return -ENOENT;
    index.delete(p);
    if (index.size === 0) {
      this.byLength.delete(len);
      this.lengths = this.lengths.filter((l) => l !== len);
    }
    this.keys[slot] = null;
    this.free.push(slot);
    return 0;
  }

  /** User-space lookup is the same longest-prefix match. */
  lookup(key: Uint8Array): Uint8Array | null {
    const a = this.lookupAddr(key, 0);
    return a === 0 ? null : this.vm.memory().slice(a, a + this.spec.valueSize);
  }

  /** Entries, longest prefixes first (then by prefix), with the keys they were stored with. */
  entries(): { key: Uint8Array; value: Uint8Array }[] {
    const mem = this.vm.memory();
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (const l of this.lengths) {
      const index = this.byLength.get(l)!;
      for (const p of [...index.keys()].sort()) {
        const slot = index.get(p)!;
        const a = this.base + slot * this.stride;
        out.push({ key: this.keys[slot]!.slice(), value: mem.slice(a, a + this.spec.valueSize) });
      }
    }
    return out;
  }
}
