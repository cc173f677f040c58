// struct pt_regs, x86-64 kernel layout, so PT_REGS_PARM1..6, PT_REGS_RC, PT_REGS_IP,
// PT_REGS_SP and BPF_KPROBE read what they read in the kernel:
// r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss, 8 bytes
// each. ptRegsFill.ts writes it natively.

export const PT_REGS_SIZE = 168;
