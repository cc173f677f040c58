// bpf_get_stackid and bpf_get_stack for user stacks (BPF_F_USER_STACK), walked by
// userStack.ts from the hit's pt_regs (uprobes) or from the registers the syscall hook took
// at the `syscall` instruction (tracepoints: the first frame is the libc wrapper, as with
// the kernel's). There is no kernel stack in a user process: asking for one fails with
// -EFAULT, as the kernel's helpers do when they find no callchain.

import { BPF_F_FAST_STACK_CMP, BPF_F_REUSE_STACKID, BPF_F_SKIP_FIELD_MASK, BPF_F_USER_STACK, StackTraceMap } from '../maps/StackTraceMap.js';
import { EFAULT, EINVAL } from './errno.js';
import { sizeArg, type HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { MAX_STACK_DEPTH, regsFromPtRegs, walkUserStack } from './userStack.js';
import { helperId } from '../../protocol/helperTable.js';

const BPF_F_USER_BUILD_ID = 1n << 11n;
const PT_REGS_SIZE = 168;

export function stackHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;

  /** The user stack of the run in progress, `skip` frames dropped, at most `max` kept; null when there is none. */
  const userStack = (skip: number, max: number): bigint[] | null => {
    const run = env.run;
    let regs;
    if (run.ctxIsPtRegs && run.ctxLen >= PT_REGS_SIZE) regs = regsFromPtRegs(vm.read(run.ctxAddr, PT_REGS_SIZE));
    else if (run.userRegs !== null) regs = run.userRegs();
    else return null;
    const ips = walkUserStack(env.memory, regs, run.atFunctionEntry, Math.min(MAX_STACK_DEPTH, skip + max));
    return ips.length > skip ? ips.slice(skip) : null;
  };

  return [
    {
      id: helperId('get_stackid'), // get_stackid(ctx, map, flags) → stack id or a negative errno
      fn: (_ctx, m, flags) => {
        const map = env.mapByHandle(m);
        if (!(map instanceof StackTraceMap)) return -EINVAL;
        if (flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID)) return -EINVAL;
        if ((flags & BPF_F_USER_STACK) === 0n) return -EFAULT;
        const ips = userStack(Number(flags & BPF_F_SKIP_FIELD_MASK), map.depth);
        return ips === null ? -EFAULT : map.stackId(ips, flags);
      },
    },
    {
      id: helperId('get_stack'), // get_stack(ctx, buf, size, flags) → bytes written or a negative errno (buf cleared)
      fn: (_ctx, buf, size, flags) => {
        const n = sizeArg(size);
        if (n < 0) return -EINVAL;
        if (!vm.isAccessible(buf, n, true)) return -EFAULT;
        const d = Number(buf);
        const mem = vm.memory();
        const fail = (err: number): number => {
          mem.fill(0, d, d + n);
          return err;
        };
        if (flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) return fail(-EINVAL);
        if (flags & BPF_F_USER_BUILD_ID) return fail(-EINVAL); // build ids are not read here
        if (n % 8 !== 0) return fail(-EINVAL);
        if ((flags & BPF_F_USER_STACK) === 0n) return fail(-EFAULT);
        const ips = userStack(Number(flags & BPF_F_SKIP_FIELD_MASK), n / 8);
        if (ips === null) return fail(-EFAULT);
        const view = new DataView(mem.buffer, mem.byteOffset + d, n);
        ips.forEach((ip, i) => view.setBigUint64(i * 8, ip, true));
        mem.fill(0, d + ips.length * 8, d + n);
        return ips.length * 8;
      },
    },
  ];
}
