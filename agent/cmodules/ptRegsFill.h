/*
 * fill(r, cpu, ip, ax) writes struct pt_regs (kernel x86-64 layout, PT_REGS_WORDS words:
 * r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss) from a
 * saved CPU context, so PT_REGS_PARM1..6, PT_REGS_RC, PT_REGS_IP and PT_REGS_SP read what
 * they read in the kernel. Needs gum/guminterceptor.h.
 */
#define PT_REGS_WORDS 21

static void
fill (guint64 * r, const GumCpuContext * c, guint64 ip, guint64 ax)
{
  r[0] = c->r15; r[1] = c->r14; r[2] = c->r13; r[3] = c->r12; r[4] = c->rbp; r[5] = c->rbx;
  r[6] = c->r11; r[7] = c->r10; r[8] = c->r9; r[9] = c->r8; r[10] = ax; r[11] = c->rcx;
  r[12] = c->rdx; r[13] = c->rsi; r[14] = c->rdi; r[15] = ax; r[16] = ip;
  r[17] = 0x33; r[18] = 0; r[19] = c->rsp; r[20] = 0x2b;
}
