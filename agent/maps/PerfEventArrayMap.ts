// BPF_MAP_TYPE_PERF_EVENT_ARRAY: in the kernel, one perf buffer per CPU that user space
// polls. Here records leave as host events at once (bpf_perf_event_output pushes them),
// so the map holds no data; it only validates the CPU index and counts drops.

import type { MapSpec } from '../../protocol/spec.js';
import { E2BIG, EINVAL, ENOTSUPP, type BpfMap } from './BpfMap.js';

export const BPF_F_INDEX_MASK = 0xffffffffn;
export const BPF_F_CURRENT_CPU = 0xffffffffn;

export class PerfEventArrayMap implements BpfMap {
  /** Records refused because the host-bound queue was full. */
  drops = 0;
  /** Slots (CPUs); libbpf sizes an unspecified max_entries to the CPU count, so do we. */
  readonly size: number;

  constructor(
    readonly spec: MapSpec,
    readonly handle: bigint,
    cpus: number,
  ) {
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

  lookupAddr(_key: Uint8Array, _cpu: number): number {
    return 0;
  }

  update(_key: Uint8Array, _value: Uint8Array, _flags: number, _cpu: number | 'all'): number {
    // No perf fds to install: the agent forwards records itself.
    return -ENOTSUPP;
  }

  delete(_key: Uint8Array): number {
    return -ENOTSUPP;
  }

  lookup(_key: Uint8Array): null {
    return null;
  }

  entries(): { key: Uint8Array; value: Uint8Array }[] {
    return [];
  }
}
