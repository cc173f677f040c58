// BPF_MAP_TYPE_PERF_EVENT_ARRAY: in the kernel, one perf buffer per CPU that user space
// polls. Here records leave as host events at once (bpf_perf_event_output pushes them),
// so the map holds no data; it only validates the CPU index and counts drops.

import type { MapSpec } from '../../protocol/spec.js';
import { E2BIG, EINVAL } from './BpfMap.js';
import { RecordMap } from './RecordMap.js';

export const BPF_F_INDEX_MASK = 0xffffffffn;
export const BPF_F_CURRENT_CPU = 0xffffffffn;

export class PerfEventArrayMap extends RecordMap {
  /** Slots (CPUs); libbpf sizes an unspecified max_entries to the CPU count, so do we. */
  readonly size: number;

  constructor(spec: MapSpec, handle: bigint, cpus: number) {
    super(spec, handle);
    this.size = spec.maxEntries > 0 ? spec.maxEntries : cpus;
  }

  /** The CPU a perf_event_output `flags` selects, or a negative errno. */
  cpuFor(flags: bigint, runCpu: number): number {
    // Upper 32 bits (BPF_F_CTXLEN_MASK) ask to append skb/xdp context: not for uprobes.
    if (flags >> 32n !== 0n) return -EINVAL;
    const idx = flags & BPF_F_INDEX_MASK;
    if (idx === BPF_F_CURRENT_CPU) return runCpu;
    if (idx >= BigInt(this.size)) return -E2BIG;
    return Number(idx);
  }
}
