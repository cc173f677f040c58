// Helpers about the running thread and the hit: ids, time, CPU, randomness, the hooked
// function and bpf_override_return. Values come from the HelperEnv / RunContext, which the
// runtime and attach code fill; nothing here touches Frida directly.

import { EFAULT, EINVAL } from './errno.js';
import { sizeArg, type HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { encodeUtf8 } from './vmStrings.js';
import { helperId } from '../../protocol/helperTable.js';

const U32 = 0xffffffffn;

export function taskHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;
  // xorshift32: bpf_get_prandom_u32 is not cryptographic in the kernel either.
  let seed = (Math.floor(Math.random() * 0xffffffff) ^ Date.now()) >>> 0 || 0x9e3779b9;
  let lastComm = '';
  let commBytes: Uint8Array = new Uint8Array(0);

  return [
    { id: helperId('ktime_get_ns'), fn: () => env.monotonicNs() }, // ktime_get_ns
    { id: helperId('ktime_get_boot_ns'), fn: () => env.boottimeNs() }, // ktime_get_boot_ns
    {
      id: helperId('get_prandom_u32'), // get_prandom_u32
      fn: () => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        seed >>>= 0;
        return seed;
      },
    },
    { id: helperId('get_smp_processor_id'), fn: () => env.run.cpu }, // get_smp_processor_id
    { id: helperId('get_current_pid_tgid'), fn: () => ((BigInt(env.pid()) & U32) << 32n) | (BigInt(env.run.tid) & U32) }, // get_current_pid_tgid
    { id: helperId('get_current_uid_gid'), fn: () => ((BigInt(env.gid()) & U32) << 32n) | (BigInt(env.uid()) & U32) }, // get_current_uid_gid
    {
      id: helperId('get_current_comm'), // get_current_comm(buf, size): NUL-terminated and padded, like strscpy_pad
      fn: (buf, size) => {
        const n = sizeArg(size);
        if (n <= 0) return -EINVAL;
        if (!vm.isAccessible(buf, n, true)) return -EFAULT;
        const comm = env.comm();
        if (comm !== lastComm) {
          lastComm = comm;
          commBytes = encodeUtf8(comm).subarray(0, 15); // TASK_COMM_LEN 16 with the NUL
        }
        const d = Number(buf);
        const mem = vm.memory();
        const len = Math.min(commBytes.length, n - 1);
        mem.set(commBytes.subarray(0, len), d);
        mem.fill(0, d + len, d + n);
        return 0;
      },
    },
    {
      id: helperId('override_return'), // override_return(ctx, rc): only where the attach point can replace the return value
      fn: (_ctx, rc) => {
        const o = env.run.override;
        if (o === null) return -EINVAL;
        o(rc);
        return 0;
      },
    },
    { id: helperId('get_func_ip'), fn: () => env.run.funcIp }, // get_func_ip
    { id: helperId('get_attach_cookie'), fn: () => env.run.cookie }, // get_attach_cookie
  ];
}
