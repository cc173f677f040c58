// BPF_MAP_TYPE_STACK_TRACE, after the kernel's stackmap.c: bpf_get_stackid hashes a stack
// (a list of instruction addresses) into one of roundup_pow_of_two(max_entries) buckets and
// returns the bucket as the stack id. The same stack gets the same id; a different stack
// hashing to an occupied bucket gets -EEXIST unless BPF_F_REUSE_STACKID lets it take the
// bucket over. A value is value_size / 8 u64 addresses, zero-padded after the stack's end.
// Programs cannot read the map (the verifier allows only get_stackid on it); the host
// dumps it, and the runtime symbolises the addresses at that moment.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { EEXIST, EINVAL, ENOENT, type BpfMap } from './BpfMap.js';
import { hash32 } from './hash32.js';

export const BPF_F_SKIP_FIELD_MASK = 0xffn;
export const BPF_F_USER_STACK = 1n << 8n;
export const BPF_F_FAST_STACK_CMP = 1n << 9n;
export const BPF_F_REUSE_STACKID = 1n << 10n;

export class StackTraceMap implements BpfMap {
  /** Addresses one value holds (value_size / 8). */
  readonly depth: number;
  private readonly buckets: number;
  private readonly base: number;
  private readonly hashes: Uint32Array;
  /** Frames stored per bucket; 0 = empty. */
  private readonly lengths: Uint16Array;

  constructor(
    private readonly vm: BpfVm,
    readonly spec: MapSpec,
    readonly handle: bigint,
  ) {
    if (spec.keySize !== 4 || spec.valueSize < 8 || spec.valueSize % 8 !== 0 || spec.maxEntries <= 0) {
      throw new Error(`map ${spec.name}: a stack_trace needs a u32 key, value_size a multiple of 8 and max_entries > 0`);
    }
    this.depth = spec.valueSize / 8;
    this.buckets = 2 ** Math.ceil(Math.log2(spec.maxEntries));
    this.base = vm.allocRw(this.buckets * spec.valueSize, 8);
    this.hashes = new Uint32Array(this.buckets);
    this.lengths = new Uint16Array(this.buckets);
  }

  private valueAddr(id: number): number {
    return this.base + id * this.spec.valueSize;
  }

  /** The stack id for `ips` (at most `depth` of them are kept), or a negative errno. */
  stackId(ips: readonly bigint[], flags: bigint): number {
    const n = Math.min(ips.length, this.depth);
    if (n === 0) return -EINVAL;
    const bytes = new Uint8Array(n * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) view.setBigUint64(i * 8, BigInt.asUintN(64, ips[i]), true);
    const h = hash32(bytes, 0, bytes.length, 0);
    const id = h & (this.buckets - 1);
    const mem = this.vm.memory();
    const a = this.valueAddr(id);
    if (this.lengths[id] !== 0) {
      const same =
        this.hashes[id] === h &&
        ((flags & BPF_F_FAST_STACK_CMP) !== 0n || (this.lengths[id] === n && bytes.every((b, i) => mem[a + i] === b)));
      if (same) return id;
      if ((flags & BPF_F_REUSE_STACKID) === 0n) return -EEXIST;
    }
    mem.fill(0, a, a + this.spec.valueSize);
    mem.set(bytes, a);
    this.hashes[id] = h;
    this.lengths[id] = n;
    return id;
  }

  /** The addresses of stack `id`, or null when the bucket is empty. */
  stack(id: number): bigint[] | null {
    if (!(id >= 0 && id < this.buckets) || this.lengths[id] === 0) return null;
    const v = this.vm.read(this.valueAddr(id), this.lengths[id] * 8);
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const out: bigint[] = [];
    for (let i = 0; i < this.lengths[id]; i++) out.push(view.getBigUint64(i * 8, true));
    return out;
  }

  private indexOf(key: Uint8Array): number {
    return key.length < 4 ? -1 : (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
  }

  lookupAddr(_key: Uint8Array, _cpu: number): number {
    return 0;
  }

  /** User space may not write stacks (the kernel refuses updates to a stack map too). */
  update(_key: Uint8Array, _value: Uint8Array, _flags: number, _cpu: number | 'all'): number {
    return -EINVAL;
  }

  delete(key: Uint8Array): number {
    const id = this.indexOf(key);
    if (!(id >= 0 && id < this.buckets) || this.lengths[id] === 0) return -ENOENT;
    this.lengths[id] = 0;
    return 0;
  }

  lookup(key: Uint8Array): Uint8Array | null {
    const id = this.indexOf(key);
    if (!(id >= 0 && id < this.buckets) || this.lengths[id] === 0) return null;
    return this.vm.read(this.valueAddr(id), this.spec.valueSize);
  }

  entries(): { key: Uint8Array; value: Uint8Array }[] {
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (let id = 0; id < this.buckets; id++) {
      if (this.lengths[id] === 0) continue;
      out.push({ key: new Uint8Array(new Uint32Array([id]).buffer), value: this.vm.read(this.valueAddr(id), this.spec.valueSize) });
    }
    return out;
  }
}
