// One BpfMap per MapSpec. Errors here (bad sizes, arena exhausted) are load-time errors
// for the object, so they throw.

import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { ArrayMap } from './ArrayMap.js';
import { BloomFilterMap } from './BloomFilterMap.js';
import type { BpfMap } from './BpfMap.js';
import { HashMap } from './HashMap.js';
import { LpmTrieMap } from './LpmTrieMap.js';
import { PerfEventArrayMap } from './PerfEventArrayMap.js';
import { ProgArrayMap } from './ProgArrayMap.js';
import { QueueStackMap } from './QueueStackMap.js';
import { regionOf } from './regions.js';
import { RingBufMap } from './RingBufMap.js';
import { StackTraceMap } from './StackTraceMap.js';

export function createMap(vm: BpfVm, spec: MapSpec, handle: bigint, cpus: number): BpfMap {
  const map = newMap(vm, spec, handle, cpus);
  vm.defineRegion(regionOf(map));
  return map;
}

function newMap(vm: BpfVm, spec: MapSpec, handle: bigint, cpus: number): BpfMap {
  const n = Math.max(1, cpus | 0);
  switch (spec.type) {
    case 'hash':
      return new HashMap(vm, spec, handle, { slots: 1, lru: false });
    case 'percpu_hash':
      return new HashMap(vm, spec, handle, { slots: n, lru: false });
    case 'lru_hash':
      return new HashMap(vm, spec, handle, { slots: 1, lru: true });
    case 'lru_percpu_hash':
      return new HashMap(vm, spec, handle, { slots: n, lru: true });
    case 'array':
      return new ArrayMap(vm, spec, handle, 1);
    case 'percpu_array':
      return new ArrayMap(vm, spec, handle, n);
    case 'ringbuf':
      return new RingBufMap(vm, spec, handle);
    case 'perf_event_array':
      return new PerfEventArrayMap(spec, handle, n);
    case 'prog_array':
      return new ProgArrayMap(spec, handle);
    case 'queue':
    case 'stack':
      return new QueueStackMap(vm, spec, handle);
    case 'bloom_filter':
      return new BloomFilterMap(spec, handle);
    case 'lpm_trie':
      return new LpmTrieMap(vm, spec, handle);
    case 'stack_trace':
      return new StackTraceMap(vm, spec, handle);
    case 'unsupported':
      throw new Error(`map ${spec.name}: ${spec.unsupported?.reason ?? 'unsupported map type'}`);
    default:
      throw new Error(`map ${(spec as MapSpec).name}: unknown map type ${(spec as MapSpec).type}`);
  }
}

/** Called by the runtime before each program run: rewinds per-run state (ring buffer reservations). */
export function beginRun(maps: readonly BpfMap[]): void {
  for (let i = 0; i < maps.length; i++) maps[i].beginRun?.();
}
