// bpf_map_push_elem, bpf_map_pop_elem and bpf_map_peek_elem: the helpers of the maps
// without keys (queue, stack, bloom filter). Values are copied in and out of the program's
// memory; none of these maps hands out a pointer. As the verifier would, other map types
// are refused (-EINVAL), and so is pop on a bloom filter (the kernel's -EOPNOTSUPP).

import { BloomFilterMap } from '../maps/BloomFilterMap.js';
import { QueueStackMap } from '../maps/QueueStackMap.js';
import { EFAULT, EINVAL, EOPNOTSUPP } from './errno.js';
import type { HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { helperId } from '../../protocol/helperTable.js';

export function queueHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;
  const take = (remove: boolean) => (m: bigint, value: bigint): number => {
    const map = env.mapByHandle(m);
    if (map instanceof QueueStackMap) {
      if (!vm.isAccessible(value, map.spec.valueSize, true)) return -EFAULT;
      return map.take(Number(value), remove);
    }
    if (map instanceof BloomFilterMap) {
      if (remove) return -EOPNOTSUPP;
      if (!vm.isAccessible(value, map.spec.valueSize, false)) return -EFAULT;
      return map.testAt(vm.memory(), Number(value));
    }
    return -EINVAL;
  };
  return [
    {
      id: helperId('map_push_elem'), // map_push_elem(map, value, flags)
      fn: (m, value, flags) => {
        const map = env.mapByHandle(m);
        if (!(map instanceof QueueStackMap) && !(map instanceof BloomFilterMap)) return -EINVAL;
        if (flags > 0xffffffffn) return -EINVAL;
        if (!vm.isAccessible(value, map.spec.valueSize, false)) return -EFAULT;
        const a = Number(value);
        if (map instanceof BloomFilterMap) return map.pushAt(vm.memory(), a, Number(flags));
        return map.push(vm.memory().subarray(a, a + map.spec.valueSize), Number(flags));
      },
    },
    { id: helperId('map_pop_elem'), fn: take(true) }, // map_pop_elem(map, value)
    { id: helperId('map_peek_elem'), fn: take(false) }, // map_peek_elem(map, value)
  ];
}

