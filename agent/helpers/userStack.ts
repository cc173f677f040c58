// The user stack of a hit, walked through frame pointers with reads that cannot fault
// (TargetMemory), as the kernel's perf_callchain_user does: the first frame is the hit's
// instruction pointer, then each saved frame (rbp → [saved rbp, return address]) up the
// stack. Code built without frame pointers (-fomit-frame-pointer, the default at -O2 for
// most distribution libraries) ends the walk early or skips frames, exactly as it does for
// the kernel's bpf_get_stack; there is no .eh_frame unwinding here.
// At a function's first instruction the frame is not set up yet: rbp is still the caller's,
// and the caller's return address is at [rsp]. Like recent kernels (uprobes at a function
// entry), that address is added as the second frame so the immediate caller is not lost.

import type { TargetMemory } from './HelperEnv.js';

/** The kernel's PERF_MAX_STACK_DEPTH (sysctl kernel.perf_event_max_stack's default). */
export const MAX_STACK_DEPTH = 127;
/** A frame pointer further than this above rsp is not believed to be one (a generous stack size). */
const MAX_STACK_SPAN = 1n << 28n;

export interface UserRegs {
  ip: bigint;
  sp: bigint;
  bp: bigint;
}

/** pt_regs (x86-64) offsets of the registers the walk needs (agent/attach/uprobe/ptRegs.ts). */
export const PT_REGS_BP = 4 * 8;
export const PT_REGS_IP = 16 * 8;
export const PT_REGS_SP = 19 * 8;

function u64(b: Uint8Array, off: number): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(off, true);
}

export function regsFromPtRegs(ptRegs: Uint8Array): UserRegs {
  return { ip: u64(ptRegs, PT_REGS_IP), sp: u64(ptRegs, PT_REGS_SP), bp: u64(ptRegs, PT_REGS_BP) };
}

/** Up to `max` return addresses, innermost first. */
export function walkUserStack(mem: TargetMemory, regs: UserRegs, atFunctionEntry: boolean, max: number): bigint[] {
  const out: bigint[] = [];
  if (max <= 0 || regs.ip === 0n) return out;
  out.push(regs.ip);
  if (atFunctionEntry && out.length < max) {
    const ret = mem.read(regs.sp, 8);
    if (ret !== null && u64(ret, 0) !== 0n) out.push(u64(ret, 0));
  }
  let bp = regs.bp;
  while (out.length < max) {
    // A frame pointer lives above the stack pointer, 8-aligned, and each one above the last.
    if (bp < regs.sp || bp - regs.sp > MAX_STACK_SPAN || (bp & 7n) !== 0n) break;
    const frame = mem.read(bp, 16);
    if (frame === null) break;
    const next = u64(frame, 0);
    const ret = u64(frame, 8);
    if (ret === 0n) break;
    out.push(ret);
    if (next <= bp) break;
    bp = next;
  }
  return out;
}
