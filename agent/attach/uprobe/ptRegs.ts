// struct pt_regs, x86-64 kernel layout (168 bytes), so PT_REGS_PARM1..6, PT_REGS_RC,
// PT_REGS_IP, PT_REGS_SP and BPF_KPROBE read what they read in the kernel.

export const PT_REGS_SIZE = 168;

const OFF = {
  r15: 0, r14: 8, r13: 16, r12: 24, bp: 32, bx: 40, r11: 48, r10: 56, r9: 64, r8: 72,
  ax: 80, cx: 88, dx: 96, si: 104, di: 112, orig_ax: 120, ip: 128, cs: 136, flags: 144, sp: 152, ss: 160,
} as const;

/** User-mode segment selectors on x86-64 Linux; Frida's CPU context does not carry them. */
const USER_CS = 0x33;
const USER_SS = 0x2b;

function put(view: DataView, off: number, p: NativePointer): void {
  // Two 32-bit halves: cheaper than going through a string to build a BigInt.
  view.setUint32(off, p.toUInt32(), true);
  view.setUint32(off + 4, p.shr(32).toUInt32(), true);
}

/**
 * Writes pt_regs for a hit at `base` in `view`. `ip` and `ax` are passed separately
 * because entry and return probes want different values there (the function address /
 * the return address; the return value).
 */
export function writePtRegs(view: DataView, base: number, c: X64CpuContext, ip: NativePointer, ax: NativePointer): void {
  put(view, base + OFF.r15, c.r15);
  put(view, base + OFF.r14, c.r14);
  put(view, base + OFF.r13, c.r13);
  put(view, base + OFF.r12, c.r12);
  put(view, base + OFF.bp, c.rbp);
  put(view, base + OFF.bx, c.rbx);
  put(view, base + OFF.r11, c.r11);
  put(view, base + OFF.r10, c.r10);
  put(view, base + OFF.r9, c.r9);
  put(view, base + OFF.r8, c.r8);
  put(view, base + OFF.ax, ax);
  put(view, base + OFF.cx, c.rcx);
  put(view, base + OFF.dx, c.rdx);
  put(view, base + OFF.si, c.rsi);
  put(view, base + OFF.di, c.rdi);
  put(view, base + OFF.orig_ax, ax);
  put(view, base + OFF.ip, ip);
  view.setBigUint64(base + OFF.cs, BigInt(USER_CS), true);
  view.setBigUint64(base + OFF.flags, 0n, true);
  put(view, base + OFF.sp, c.rsp);
  view.setBigUint64(base + OFF.ss, BigInt(USER_SS), true);
}
