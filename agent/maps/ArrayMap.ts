// BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY, and the global-data maps (.data/.bss/.rodata),
// which the kernel also implements as single-entry arrays. Every element exists from the
// start (zeroed), so there is nothing to insert or delete: only overwrite.
// .rodata lives in the VM's read-only arena so a program store to it faults, as the
// verifier would have refused it; the host can still set constants before the run.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { BPF_NOEXIST, E2BIG, EEXIST, EINVAL, type BpfMap } from './BpfMap.js';
import { decodeBase64 } from '../base64.js';
import { cpuSlot, round8, validFlags, writeSlots } from './layout.js';
import type { VmRegion } from '../../vm/ts/vm.js';
import { valuesRegion } from './regions.js';

export class ArrayMap implements BpfMap {
  readonly perCpu: boolean;
  readonly readOnly: boolean;
  private readonly valueSize: number;
  private readonly stride: number;
  private readonly slots: number;
  private readonly entryBytes: number;
  private readonly maxEntries: number;
  readonly base: number;

  constructor(
    private readonly vm: BpfVm,
    readonly spec: MapSpec,
    readonly handle: bigint,
    slots: number,
  ) {
    const globalData = spec.origin === 'data' || spec.origin === 'rodata' || spec.origin === 'bss';
    if (spec.valueSize <= 0 || spec.maxEntries <= 0 || (!globalData && spec.keySize !== 4)) {
      throw new Error(`map ${spec.name}: ${spec.type} needs a 4-byte key, value size and max_entries > 0`);
    }
    this.perCpu = spec.type === 'percpu_array';
    this.slots = this.perCpu ? slots : 1;
    this.valueSize = spec.valueSize;
    this.stride = round8(spec.valueSize);
    this.entryBytes = this.stride * this.slots;
    this.maxEntries = spec.maxEntries;
    this.readOnly = spec.readOnly || spec.origin === 'rodata';
    const total = this.entryBytes * this.maxEntries;
    const init = spec.initialData ? decodeBase64(spec.initialData) : null;
    if (this.readOnly) {
      const bytes = new Uint8Array(total);
      if (init) bytes.set(init.subarray(0, Math.min(init.length, this.valueSize)));
      this.base = vm.allocRo(bytes);
    } else {
      this.base = vm.allocRw(total, 8);
      if (init) vm.write(this.base, init.subarray(0, Math.min(init.length, this.valueSize)));
    }
  }

  private indexOf(key: Uint8Array): number {
    // Global-data maps are looked up with key 0 by libbpf; tolerate any key size there.
    if (key.length < 4) return key.length === 0 ? 0 : -1;
    return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
  }

  valueRegion(): VmRegion {
    return valuesRegion(this, this.base, this.maxEntries * this.slots, this.stride, this.readOnly);
  }

  lookupAddr(key: Uint8Array, cpu: number): number {
    const i = this.indexOf(key);
    if (i < 0 || i >= this.maxEntries) return 0;
    return this.base + i * this.entryBytes + cpuSlot(cpu, this.slots) * this.stride;
  }

  lookupAddrAt(mem: Uint8Array, off: number, cpu: number): number {
    if (this.spec.keySize < 4) return this.lookupAddr(mem.subarray(off, off + this.spec.keySize), cpu);
    const i = (mem[off] | (mem[off + 1] << 8) | (mem[off + 2] << 16) | (mem[off + 3] << 24)) >>> 0;
    if (i >= this.maxEntries) return 0;
    return this.base + i * this.entryBytes + cpuSlot(cpu, this.slots) * this.stride;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number, cpu: number | 'all'): number {
    if (!validFlags(flags) || value.length < this.valueSize) return -EINVAL;
    const i = this.indexOf(key);
    if (i < 0) return -EINVAL;
    // Kernel arraymap: out of range is -E2BIG (nothing can be inserted), NOEXIST is -EEXIST.
    if (i >= this.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    const addr = this.base + i * this.entryBytes;
    if (this.readOnly) {
      this.vm.writeRo(addr, value.subarray(0, this.valueSize));
      return 0;
    }
    writeSlots(this.vm.memory(), addr, this.stride, this.slots, this.valueSize, value, cpu === 'all' ? 'all' : cpuSlot(cpu, this.slots), false);
    return 0;
  }

  delete(_key: Uint8Array): number {
    return -EINVAL;
  }

  lookup(key: Uint8Array): Uint8Array | Uint8Array[] | null {
    const i = this.indexOf(key);
    return i < 0 || i >= this.maxEntries ? null : this.valueAt(i);
  }

  entries(): { key: Uint8Array; value: Uint8Array | Uint8Array[] }[] {
    const out: { key: Uint8Array; value: Uint8Array | Uint8Array[] }[] = [];
    for (let i = 0; i < this.maxEntries; i++) {
      out.push({ key: new Uint8Array([i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, i >>> 24]), value: this.valueAt(i) });
    }
    return out;
  }

  private valueAt(i: number): Uint8Array | Uint8Array[] {
    const mem = this.vm.memory();
    const a = this.base + i * this.entryBytes;
    if (!this.perCpu) return mem.slice(a, a + this.valueSize);
    const out: Uint8Array[] = [];
    for (let c = 0; c < this.slots; c++) out.push(mem.slice(a + c * this.stride, a + c * this.stride + this.valueSize));
    return out;
  }
}
