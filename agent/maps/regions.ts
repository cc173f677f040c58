// The region contract between the maps and the VM's isolation (vm/src/verifier.c): each
// map tells the VM which memory a program may reach through it, and a program is loaded
// with the regions of its own object's maps only, so that it can touch nothing else.

import type { VmRegion } from '../../vm/ts/vm.js';
import type { BpfMap } from './BpfMap.js';

/** The region of `map`: its values, its ring, or (no program-visible memory) just its handle. */
export function regionOf(map: BpfMap): VmRegion {
  return map.valueRegion?.() ?? { name: map.spec.name, kind: 'handle', handle: map.handle, base: 0, size: 0, stride: 1, valueSize: 0 };
}

/** A region of `count` elements of `valueSize` bytes, `stride` apart, from `base`. */
export function valuesRegion(map: BpfMap, base: number, count: number, stride: number, readOnly = false): VmRegion {
  return { name: map.spec.name, kind: 'values', handle: map.handle, base, size: count * stride, stride, valueSize: map.spec.valueSize, readOnly };
}

/** The regions a program of an object with these maps owns. */
export function objectRegions(maps: readonly BpfMap[]): VmRegion[] {
  return maps.map(regionOf);
}
