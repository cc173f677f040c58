// BPF_MAP_TYPE_RINGBUF. Records go to the host as events the moment they are committed,
// so nothing is ever "in the ring" waiting for a consumer: the map only needs room for the
// reservations a single run holds open. reserve() carves them from a per-map scratch
// region of max_entries bytes in the VM rw arena, each behind an 8-byte header like the
// kernel's record header (length + busy bit), so submit/discard find the size from the
// pointer alone. The region rewinds when no reservation is open (and at beginRun(), in
// case a faulted run leaked one — the verifier would have refused such a program).

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { RecordMap } from './RecordMap.js';
import { round8 } from './layout.js';
import type { VmRegion } from '../../vm/ts/vm.js';

export const BPF_RB_NO_WAKEUP = 1;
export const BPF_RB_FORCE_WAKEUP = 2;
export const BPF_RB_AVAIL_DATA = 0;
export const BPF_RB_RING_SIZE = 1;
export const BPF_RB_CONS_POS = 2;
export const BPF_RB_PROD_POS = 3;

const HDR = 8;
const BUSY = 0x80000000;

export class RingBufMap extends RecordMap {
  readonly capacity: number;
  readonly base: number;
  private pos = 0;
  private open = 0;
  /** Bytes produced (records + headers, 8-aligned): the kernel's producer/consumer positions. */
  private produced = 0;

  constructor(
    private readonly vm: BpfVm,
    spec: MapSpec,
    handle: bigint,
  ) {
    super(spec, handle);
    if (spec.maxEntries <= 0) throw new Error(`map ${spec.name}: ringbuf needs max_entries > 0`);
    this.capacity = spec.maxEntries;
    this.base = vm.allocRw(this.capacity, 8);
  }

  valueRegion(): VmRegion {
    return { name: this.spec.name, kind: 'ringbuf', handle: this.handle, base: this.base, size: this.capacity, stride: 1, valueSize: 0 };
  }

  beginRun(): void {
    this.pos = 0;
    this.open = 0;
  }

  /** VM address of `size` writable bytes, or 0 (and a drop) when they do not fit. */
  reserve(size: number): number {
    const need = HDR + round8(size);
    if (size <= 0 || this.pos + need > this.capacity) {
      this.drops++;
      return 0;
    }
    const hdr = this.base + this.pos;
    this.setU32(hdr, (size | BUSY) >>> 0);
    this.setU32(hdr + 4, this.pos);
    this.pos += need;
    this.open++;
    return hdr + HDR;
  }

  /** Whether `addr` could be a record this ring handed out. */
  owns(addr: number): boolean {
    return addr >= this.base + HDR && addr < this.base + this.capacity;
  }

  /**
   * Closes the reservation at `addr`; returns a copy of its bytes when submitting, null
   * when discarding or when `addr` is not an open reservation (double submit).
   */
  commit(addr: number, discard: boolean): Uint8Array | null {
    if (!this.owns(addr)) return null;
    const hdr = addr - HDR;
    const word = this.getU32(hdr);
    if ((word & BUSY) === 0 || this.getU32(hdr + 4) !== hdr - this.base) return null;
    const size = word & ~BUSY;
    if (addr + size > this.base + this.capacity) return null;
    this.setU32(hdr, size);
    this.produced += HDR + round8(size);
    const data = discard ? null : this.vm.memory().slice(addr, addr + size);
    if (--this.open === 0) this.pos = 0;
    return data;
  }

  /** bpf_ringbuf_output: whether a record of `size` bytes fits at all (counts it if so). */
  accept(size: number): boolean {
    if (size <= 0 || HDR + round8(size) > this.capacity) {
      this.drops++;
      return false;
    }
    this.produced += HDR + round8(size);
    return true;
  }

  query(flags: number): bigint {
    switch (flags) {
      case BPF_RB_AVAIL_DATA:
        return 0n; // the host consumed everything already
      case BPF_RB_RING_SIZE:
        return BigInt(this.capacity);
      case BPF_RB_CONS_POS:
      case BPF_RB_PROD_POS:
        return BigInt(this.produced);
      default:
        return 0n;
    }
  }

  private setU32(a: number, v: number): void {
    const m = this.vm.memory();
    m[a] = v & 0xff;
    m[a + 1] = (v >>> 8) & 0xff;
    m[a + 2] = (v >>> 16) & 0xff;
    m[a + 3] = v >>> 24;
  }

  private getU32(a: number): number {
    const m = this.vm.memory();
    return (m[a] | (m[a + 1] << 8) | (m[a + 2] << 16) | (m[a + 3] << 24)) >>> 0;
  }
}
