// Test memory a program may reach: the VM isolates programs, so a buffer the test hands a
// program (as a map's values would be) is allocated and defined as a region of its own.
import type { BpfVm } from '../../vm/ts/vm';

/** `size` zeroed writable bytes the programs loaded afterwards own. */
export function ownedRw(vm: BpfVm, size: number, name = 'test buffer'): number {
  const base = vm.allocRw(size, 8);
  vm.defineRegion({ name, kind: 'values', handle: 0n, base, size, stride: size, valueSize: size });
  return base;
}

/** `data` as read-only bytes (like .rodata) the programs loaded afterwards own. */
export function ownedRo(vm: BpfVm, data: Uint8Array, name = 'test rodata'): number {
  const base = vm.allocRo(data);
  const size = Math.max(1, data.length);
  vm.defineRegion({ name, kind: 'values', handle: 0n, base, size, stride: size, valueSize: size, readOnly: true });
  return base;
}
