// Fills struct pt_regs (kernel x86-64 layout, 168 bytes) from the current invocation's CPU
// context in native code. Reading the registers one by one through `this.context` from
// JS cost 9.3 µs per hit (measured); one call into this CModule costs a fraction of that.
// It must be called from inside an Interceptor callback (it reads the thread's current
// invocation) and writes straight into the VM arena, which the JS lock protects.
// The C is agent/cmodules/ptRegsFill.c.

import { checkLayout } from '../../cmodules/checkLayout.js';
import { PT_REGS_FILL_C } from '../../cmodules/generated/ptRegsFill_c.js';
import { PT_REGS_SIZE } from './ptRegs.js';

export interface PtRegsFill {
  /** Writes pt_regs at `dst` for the hit in progress; returns the CPU it runs on. */
  entry(dst: NativePointer): number;
  return(dst: NativePointer): number;
}

let cached: (PtRegsFill & { module: CModule }) | null = null;

export function ptRegsFill(): PtRegsFill {
  if (cached === null) {
    const module = new CModule(PT_REGS_FILL_C, { sched_getcpu: Module.getGlobalExportByName('sched_getcpu') });
    checkLayout(module, 'pt_regs_fill_layout', [['sizeof (struct pt_regs)', PT_REGS_SIZE]]);
    // Exclusive: the arena is only written under the JS lock. No per-call fault guard: the
    // code only reads the invocation's saved registers.
    const opts = { scheduling: 'exclusive', exceptions: 'propagate' } as const;
    const entry = new NativeFunction(module.pt_regs_fill_entry, 'int', ['pointer'], opts);
    const ret = new NativeFunction(module.pt_regs_fill_return, 'int', ['pointer'], opts);
    cached = { module, entry: (dst) => entry(dst) as number, return: (dst) => ret(dst) as number };
  }
  return cached;
}
