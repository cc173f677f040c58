// bpf_map_lookup_elem / update / delete and bpf_tail_call: program-side access to maps.
// Keys and values are views onto VM memory (no copies on the per-hit path).

import type { BpfMap } from '../maps/BpfMap.js';
import { ArrayMap } from '../maps/ArrayMap.js';
import { BloomFilterMap } from '../maps/BloomFilterMap.js';
import { E2BIG, EFAULT, EINVAL, ENOENT, EPERM } from './errno.js';
import type { HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { helperId } from '../../protocol/helperTable.js';

/**
 * Map types a program may not read or write through the generic map helpers (the verifier
 * refuses it): record maps, jump tables, keyless maps (push/pop/peek) and stack maps
 * (bpf_get_stackid only).
 */
const NOT_FOR_PROGRAMS = new Set(['ringbuf', 'perf_event_array', 'prog_array', 'queue', 'stack', 'bloom_filter', 'stack_trace']);

export function mapHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;
  // Bounds as numbers: comparing BigInts costs more than the rest of a lookup.
  const { roLo, rwHi } = vm.bounds;
  const readable = (addr: bigint, len: number): number => {
    const a = Number(addr);
    return a >= roLo && a + len <= rwHi ? a : -1;
  };

  const view = (addr: bigint, len: number): Uint8Array | null => {
    const a = readable(addr, len);
    return a < 0 ? null : vm.memory().subarray(a, a + len);
  };
  const programMap = (h: bigint): BpfMap | undefined => {
    const m = env.mapByHandle(h);
    return m === undefined || NOT_FOR_PROGRAMS.has(m.spec.type) ? undefined : m;
  };

  // bpftime's programs use the generic helpers on bloom filters (the kernel's verifier
  // refuses that): lookup tests the value the key pointer points at (NULL when absent, the
  // pointer itself when maybe present), update adds it; so those programs run as written.
  const bloom = (m: bigint): BloomFilterMap | undefined => {
    const map = env.mapByHandle(m);
    return map instanceof BloomFilterMap ? map : undefined;
  };

  return [
    {
      id: helperId('map_lookup_elem'), // map_lookup_elem(map, key) → value pointer or NULL
      fn: (m, k) => {
        const b = bloom(m);
        if (b !== undefined) {
          const a = readable(k, b.spec.valueSize);
          return a < 0 || b.testAt(vm.memory(), a) !== 0 ? 0 : k;
        }
        const map = programMap(m);
        if (map === undefined) return 0;
        const a = readable(k, map.spec.keySize);
        if (a < 0) return 0;
        if (map.lookupAddrAt !== undefined) return map.lookupAddrAt(vm.memory(), a, env.run.cpu);
        return map.lookupAddr(vm.memory().subarray(a, a + map.spec.keySize), env.run.cpu);
      },
    },
    {
      id: helperId('map_update_elem'), // map_update_elem(map, key, value, flags)
      fn: (m, k, v, flags) => {
        const b = bloom(m);
        if (b !== undefined) {
          const a = k !== 0n ? readable(k, b.spec.valueSize) : readable(v, b.spec.valueSize);
          return a < 0 ? -EFAULT : b.pushAt(vm.memory(), a, Number(flags & 0xffffffffn));
        }
        const map = programMap(m);
        if (map === undefined || flags > 0xffffffffn) return -EINVAL;
        if (map instanceof ArrayMap && map.readOnly) return -EPERM;
        const key = view(k, map.spec.keySize);
        const value = view(v, map.spec.valueSize);
        if (key === null || value === null) return -EFAULT;
        return map.update(key, value, Number(flags), env.run.cpu);
      },
    },
    {
      id: helperId('map_delete_elem'), // map_delete_elem(map, key)
      fn: (m, k) => {
        const map = programMap(m);
        if (map === undefined) return -EINVAL;
        const key = view(k, map.spec.keySize);
        return key === null ? -EFAULT : map.delete(key);
      },
    },
    {
      id: helperId('tail_call'), // tail_call(ctx, prog_array, index): on success the VM jumps after we return
      fn: (_ctx, m, idx) => {
        const map = env.mapByHandle(m);
        if (map === undefined || map.spec.type !== 'prog_array') return -EINVAL;
        if (idx >= BigInt(map.spec.maxEntries)) return -E2BIG;
        const h = env.programHandleForTailCall(map, Number(idx));
        if (h === undefined) return -ENOENT;
        env.vm.requestTailCall(h);
        return 0;
      },
    },
  ];
}
