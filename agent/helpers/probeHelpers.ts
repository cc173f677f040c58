// bpf_probe_read* family: copy from the traced process (or, for the "kernel" flavours,
// from VM memory — the only memory here a program did not get from user space: ctx, map
// values, its stack) into VM memory. Target reads go through TargetMemory, which never
// faults; an unreadable source zeroes the destination and returns -EFAULT, like the kernel.

import { EFAULT, EINVAL } from './errno.js';
import { sizeArg, type HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { stripNul, vmCString } from './vmStrings.js';
import { helperId } from '../../protocol/helperTable.js';

type ReadFn = (src: bigint, len: number) => Uint8Array | null;
type ReadStrFn = (src: bigint, max: number) => Uint8Array | null;

export function probeHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;

  const fromTarget: ReadFn = (src, len) => (src === 0n ? null : env.memory.read(src, len));
  const fromVm: ReadFn = (src, len) => (vm.isAccessible(src, len, false) ? vm.read(src, len) : null);
  // Legacy bpf_probe_read means "whichever address space": the target first, then the VM.
  const fromEither: ReadFn = (src, len) => fromTarget(src, len) ?? fromVm(src, len);
  const strTarget: ReadStrFn = (src, max) => {
    if (src === 0n) return null;
    const b = env.memory.readCString(src, max);
    return b === null ? null : stripNul(b);
  };
  const strVm: ReadStrFn = (src, max) => vmCString(vm, src, max);
  const strEither: ReadStrFn = (src, max) => strTarget(src, max) ?? strVm(src, max);

  const copy = (read: ReadFn) => (dst: bigint, size: bigint, src: bigint): number => {
    const n = sizeArg(size);
    if (n < 0) return -EINVAL;
    if (n === 0) return 0;
    if (!vm.isAccessible(dst, n, true)) return -EFAULT;
    const data = read(src, n);
    const d = Number(dst);
    if (data === null || data.length < n) {
      vm.memory().fill(0, d, d + n);
      return -EFAULT;
    }
    vm.memory().set(data.length === n ? data : data.subarray(0, n), d);
    return 0;
  };

  const copyStr = (read: ReadStrFn) => (dst: bigint, size: bigint, src: bigint): number => {
    const n = sizeArg(size);
    if (n < 0) return -EINVAL;
    if (n === 0) return 0;
    if (!vm.isAccessible(dst, n, true)) return -EFAULT;
    const s = read(src, n);
    const d = Number(dst);
    const mem = vm.memory();
    if (s === null) {
      mem.fill(0, d, d + n);
      return -EFAULT;
    }
    const len = Math.min(s.length, n - 1);
    mem.set(len === s.length ? s : s.subarray(0, len), d);
    mem[d + len] = 0;
    return len + 1;
  };

  return [
    { id: helperId('probe_read'), fn: copy(fromEither) }, // probe_read
    { id: helperId('probe_read_str'), fn: copyStr(strEither) }, // probe_read_str
    { id: helperId('probe_read_user'), fn: copy(fromTarget) }, // probe_read_user
    { id: helperId('probe_read_kernel'), fn: copy(fromVm) }, // probe_read_kernel
    { id: helperId('probe_read_user_str'), fn: copyStr(strTarget) }, // probe_read_user_str
    { id: helperId('probe_read_kernel_str'), fn: copyStr(strVm) }, // probe_read_kernel_str
  ];
}
