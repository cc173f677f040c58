// BPF_MAP_TYPE_BLOOM_FILTER, after the kernel's bloom_filter.c: a bit array sized from
// max_entries and the number of hash functions (map_extra, 0 = 5), with the kernel's
// formula (bits = roundup_pow_of_two(max_entries * nr_hashes / ln 2), at least 32). Values
// are pushed with bpf_map_push_elem and tested with bpf_map_peek_elem (0: maybe present,
// -ENOENT: certainly absent). No false negatives; false positives at the rate the size gives.
// The bits are bookkeeping, not values, so they live here rather than in the VM arena:
// nothing of a bloom filter is ever handed to a program.

import { BPF_F_ZERO_SEED, type MapSpec } from '../../protocol/spec.js';
import { BPF_ANY, EINVAL, ENOENT, ENOTSUPP, type BpfMap } from './BpfMap.js';
import { hash32 } from './hash32.js';

const DEFAULT_HASHES = 5;
const MAX_BITS = 2 ** 31;

export class BloomFilterMap implements BpfMap {
  readonly hashes: number;
  readonly bits: number;
  private readonly words: Uint32Array;
  private readonly seed: number;
  /** Values pushed (the kernel does not count them; the exit dump shows it). */
  pushes = 0;

  constructor(
    readonly spec: MapSpec,
    readonly handle: bigint,
  ) {
    if (spec.keySize !== 0 || spec.valueSize <= 0 || spec.maxEntries <= 0) {
      throw new Error(`map ${spec.name}: a bloom_filter needs key_size 0, value_size and max_entries > 0`);
    }
    this.hashes = (spec.mapExtra ?? 0) & 0xf || DEFAULT_HASHES;
    const want = Math.ceil((spec.maxEntries * this.hashes) / Math.LN2);
    this.bits = Math.min(MAX_BITS, Math.max(32, 2 ** Math.ceil(Math.log2(want))));
    this.words = new Uint32Array(this.bits / 32);
    this.seed = spec.flags & BPF_F_ZERO_SEED ? 0 : (Math.random() * 0x100000000) >>> 0;
  }

  private bit(value: Uint8Array, off: number, i: number): number {
    return hash32(value, off, this.spec.valueSize, this.seed + i) & (this.bits - 1);
  }

  /** bpf_map_push_elem: only BPF_ANY, as in the kernel. */
  pushAt(mem: Uint8Array, off: number, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    for (let i = 0; i < this.hashes; i++) {
      const b = this.bit(mem, off, i);
      this.words[b >>> 5] |= 1 << (b & 31);
    }
    this.pushes++;
    return 0;
  }

  /** bpf_map_peek_elem: 0 when the value may have been pushed, -ENOENT when it was not. */
  testAt(mem: Uint8Array, off: number): number {
    for (let i = 0; i < this.hashes; i++) {
      const b = this.bit(mem, off, i);
      if ((this.words[b >>> 5] & (1 << (b & 31))) === 0) return -ENOENT;
    }
    return 0;
  }

  lookupAddr(_key: Uint8Array, _cpu: number): number {
    return 0;
  }

  /** From user space an update is a push (bpf() with a NULL key). */
  update(_key: Uint8Array, value: Uint8Array, flags: number, _cpu: number | 'all'): number {
    if (value.length < this.spec.valueSize) return -EINVAL;
    return this.pushAt(value, 0, flags);
  }

  delete(_key: Uint8Array): number {
    return -ENOTSUPP;
  }

  /** User-space lookup is a membership test too: the value itself when it may be present. */
  lookup(key: Uint8Array): Uint8Array | null {
    if (key.length < this.spec.valueSize) return null;
    return this.testAt(key, 0) === 0 ? key.slice(0, this.spec.valueSize) : null;
  }

  /** A bloom filter cannot be listed (the kernel has no get_next_key for it either). */
  entries(): { key: Uint8Array; value: Uint8Array }[] {
    return [];
  }
}
