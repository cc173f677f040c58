// BPF_MAP_TYPE_HASH on the native engine: the index lives in the VM library (vm/src/hashmap.c,
// bpfvm_register_hash_map), so a program's lookup, update and delete are resolved inside the
// VM and never call into JS; such programs can run on the native path. The host's reads
// and writes go through bpfvm_hash_op/bpfvm_hash_entries, under the VM's run lock. Values are
// preallocated in the arena, max_entries slots, like the JS HashMap and the kernel.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { EINVAL, type BpfMap } from './BpfMap.js';
import { round8, validFlags } from './layout.js';
import type { VmRegion } from '../../vm/ts/vm.js';
import { valuesRegion } from './regions.js';

/** The library's hash-map entry points (see nativeCore.ts). */
export interface NativeHashApi {
  register(handle: bigint, keySize: number, valueSize: number, max: number, values: number): number;
  /** op 1 lookup (value VM address or 0), 2 update, 3 delete; 0 or a negative errno. */
  op(handle: bigint, op: 1 | 2 | 3, key: NativePointer, value: NativePointer, flags: number): number;
  entries(handle: bigint, keysOut: NativePointer, slotsOut: NativePointer, max: number): number;
}

export class NativeHashMap implements BpfMap {
  private readonly stride: number;
  private readonly base: number;
  private readonly key: NativePointer;
  private readonly value: NativePointer;

  constructor(
    private readonly vm: BpfVm,
    readonly spec: MapSpec,
    readonly handle: bigint,
    private readonly api: NativeHashApi,
  ) {
    if (spec.keySize <= 0 || spec.valueSize <= 0 || spec.maxEntries <= 0) {
      throw new Error(`map ${spec.name}: hash needs key size, value size and max_entries > 0`);
    }
    this.stride = round8(spec.valueSize);
    this.base = vm.allocRw(spec.maxEntries * this.stride, 8);
    const rc = api.register(handle, spec.keySize, spec.valueSize, spec.maxEntries, this.base);
    if (rc < 0) throw new Error(`map ${spec.name}: the VM cannot hold another hash map (${rc})`);
    this.key = Memory.alloc(spec.keySize);
    this.value = Memory.alloc(spec.valueSize);
  }

  private setKey(key: Uint8Array): void {
    this.key.writeByteArray(key.subarray(0, this.spec.keySize) as unknown as ArrayBuffer);
  }

  valueRegion(): VmRegion {
    return valuesRegion(this, this.base, this.spec.maxEntries, this.stride);
  }

  lookupAddr(key: Uint8Array, _cpu: number): number {
    if (key.length < this.spec.keySize) return 0;
    this.setKey(key);
    return this.api.op(this.handle, 1, this.key, NULL, 0);
  }

  update(key: Uint8Array, value: Uint8Array, flags: number, _cpu: number | 'all'): number {
    if (!validFlags(flags) || key.length < this.spec.keySize || value.length < this.spec.valueSize) return -EINVAL;
    this.setKey(key);
    this.value.writeByteArray(value.subarray(0, this.spec.valueSize) as unknown as ArrayBuffer);
    return this.api.op(this.handle, 2, this.key, this.value, flags);
  }

  delete(key: Uint8Array): number {
    if (key.length < this.spec.keySize) return -EINVAL;
    this.setKey(key);
    return this.api.op(this.handle, 3, this.key, NULL, 0);
  }

  lookup(key: Uint8Array): Uint8Array | null {
    const addr = this.lookupAddr(key, 0);
    return addr === 0 ? null : this.vm.memory().slice(addr, addr + this.spec.valueSize);
  }

  entries(): { key: Uint8Array; value: Uint8Array }[] {
    const max = this.spec.maxEntries;
    const keys = Memory.alloc(max * this.spec.keySize);
    const slots = Memory.alloc(4 * max);
    const n = this.api.entries(this.handle, keys, slots, max);
    const keyBytes = new Uint8Array(keys.readByteArray(n * this.spec.keySize) ?? new ArrayBuffer(0));
    const mem = this.vm.memory();
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (let i = 0; i < n; i++) {
      const a = this.base + slots.add(4 * i).readU32() * this.stride;
      out.push({ key: keyBytes.slice(i * this.spec.keySize, (i + 1) * this.spec.keySize), value: mem.slice(a, a + this.spec.valueSize) });
    }
    return out;
  }
}
