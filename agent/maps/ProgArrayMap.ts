// BPF_MAP_TYPE_PROG_ARRAY: the jump table for bpf_tail_call. The kernel stores program
// fds; here a slot holds a 32-bit program reference set by the runtime (setProgram, with
// the VM handle) or by the host (a 4-byte value, interpreted by the runtime's
// programHandleForTailCall). Programs cannot read it directly (lookupAddr is always 0).

import type { MapSpec } from '../../protocol/spec.js';
import { BPF_ANY, E2BIG, EINVAL, ENOENT, type BpfMap } from './BpfMap.js';

export class ProgArrayMap implements BpfMap {
  private readonly progs: Uint32Array;
  private readonly present: Uint8Array;

  constructor(
    readonly spec: MapSpec,
    readonly handle: bigint,
  ) {
    if (spec.maxEntries <= 0) throw new Error(`map ${spec.name}: prog_array needs max_entries > 0`);
    this.progs = new Uint32Array(spec.maxEntries);
    this.present = new Uint8Array(spec.maxEntries);
  }

  /** Runtime side: slot `index` jumps to VM program `vmHandle`. */
  setProgram(index: number, vmHandle: number): void {
    if (!(index >= 0 && index < this.progs.length)) throw new RangeError(`prog_array ${this.spec.name}: index ${index} out of range 0..${this.progs.length - 1}`);
    this.progs[index] = vmHandle;
    this.present[index] = 1;
  }

  /** The reference stored at `index`, or undefined for an empty or out-of-range slot. */
  getProgram(index: number): number | undefined {
    return index >= 0 && index < this.progs.length && this.present[index] ? this.progs[index] : undefined;
  }

  private indexOf(key: Uint8Array): number {
    return key.length < 4 ? -1 : (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
  }

  lookupAddr(_key: Uint8Array, _cpu: number): number {
    return 0;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number, _cpu: number | 'all'): number {
    // Kernel fd arrays accept only BPF_ANY.
    if (flags !== BPF_ANY || value.length < 4) return -EINVAL;
    const i = this.indexOf(key);
    if (i < 0) return -EINVAL;
    if (i >= this.progs.length) return -E2BIG;
    this.progs[i] = (value[0] | (value[1] << 8) | (value[2] << 16) | (value[3] << 24)) >>> 0;
    this.present[i] = 1;
    return 0;
  }

  delete(key: Uint8Array): number {
    const i = this.indexOf(key);
    if (i < 0) return -EINVAL;
    if (i >= this.progs.length) return -E2BIG;
    if (!this.present[i]) return -ENOENT;
    this.present[i] = 0;
    return 0;
  }

  lookup(key: Uint8Array): Uint8Array | null {
    const i = this.indexOf(key);
    const v = this.getProgram(i);
    return v === undefined ? null : u32(v);
  }

  entries(): { key: Uint8Array; value: Uint8Array }[] {
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (let i = 0; i < this.progs.length; i++) if (this.present[i]) out.push({ key: u32(i), value: u32(this.progs[i]) });
    return out;
  }
}

function u32(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
}
