// USDT argument specs (x86-64 GNU as syntax, as sys/sdt.h writes them into its notes) →
// the argument records of libbpf's usdt.bpf.h (struct __bpf_usdt_arg_spec), which its
// bpf_usdt_arg() reads at run time:
//   -4@$5         a constant                      → BPF_USDT_ARG_CONST, val_off = 5
//   8@%rsi        a register (any width alias)    → BPF_USDT_ARG_REG, reg_off = offsetof(pt_regs, si)
//   -4@-20(%rbp)  memory at register + offset     → BPF_USDT_ARG_REG_DEREF
//   -4@cnt(%rip)  a global, rip-relative          → REG_DEREF from pt_regs' ip (the site's address
//                 at the hit) plus the global's distance from the site: libbpf refuses these;
//                 gcc emits them for static and global variables.
// The size (1, 2, 4, 8; negative = signed) gives the sign extension (arg_bitshift).
// SIB operands (`8@8(%rax,%rbx,4)`) have no record type in this usdt.bpf.h: refused.

export const BPF_USDT_ARG_CONST = 0;
export const BPF_USDT_ARG_REG = 1;
export const BPF_USDT_ARG_REG_DEREF = 2;
/** usdt.bpf.h's BPF_USDT_MAX_ARG_CNT. */
export const MAX_ARGS = 12;

export interface UsdtArgSpec {
  valOff: bigint;
  argType: number;
  regOff: number;
  signed: boolean;
  bitshift: number;
}

/** struct pt_regs (x86-64) offsets: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs flags sp ss. */
const PT_REGS: Record<string, number> = {
  r15: 0, r14: 8, r13: 16, r12: 24, bp: 32, bx: 40, r11: 48, r10: 56, r9: 64, r8: 72,
  ax: 80, cx: 88, dx: 96, si: 104, di: 112, ip: 128, sp: 152,
};

/** Every spelling of a register (rax, eax, ax, al; r8, r8d, r8w, r8b; ...) → its pt_regs slot. */
const REGISTERS: Record<string, number> = (() => {
  const out: Record<string, number> = {};
  for (const x of ['ax', 'bx', 'cx', 'dx']) {
    const off = PT_REGS[x];
    out[`r${x}`] = out[`e${x}`] = out[x] = out[`${x[0]}l`] = off;
  }
  for (const x of ['si', 'di', 'bp', 'sp']) {
    const off = PT_REGS[x];
    out[`r${x}`] = out[`e${x}`] = out[x] = out[`${x}l`] = off;
  }
  for (let i = 8; i <= 15; i++) {
    const off = PT_REGS[`r${i}`];
    for (const s of ['', 'd', 'w', 'b']) out[`r${i}${s}`] = off;
  }
  out.rip = out.eip = PT_REGS.ip;
  return out;
})();

const NUM = '-?(?:0x[0-9a-fA-F]+|\\d+)';

function num(s: string): bigint {
  const neg = s.startsWith('-');
  const v = BigInt(neg ? s.slice(1) : s);
  return neg ? -v : v;
}

function register(name: string, arg: string): number {
  const off = REGISTERS[name];
  if (off === undefined) throw new Error(`argument "${arg}": register %${name} is not one usdt.bpf.h can read`);
  return off;
}

/**
 * Parses one site's argument string. `siteVaddr` and `symbol` resolve rip-relative globals
 * (the note names them by symbol).
 */
export function parseUsdtArgs(args: string, siteVaddr: number, symbol: (name: string) => number | undefined): UsdtArgSpec[] {
  const parts = args.trim() === '' ? [] : args.trim().split(/\s+/);
  if (parts.length > MAX_ARGS) throw new Error(`${parts.length} arguments; usdt.bpf.h reads at most ${MAX_ARGS}`);
  return parts.map((arg) => {
    const m = /^(-?\d+)@(.+)$/.exec(arg);
    if (!m) throw new Error(`argument "${arg}" is not SIZE@LOCATION`);
    const size = Number(m[1]);
    if (![1, 2, 4, 8].includes(Math.abs(size))) throw new Error(`argument "${arg}": size ${size} is not 1, 2, 4 or 8 bytes`);
    const common = { signed: size < 0, bitshift: 64 - Math.abs(size) * 8 };
    const loc = m[2];
    let r: RegExpExecArray | null;
    if ((r = new RegExp(`^\\$(${NUM})$`).exec(loc))) return { ...common, argType: BPF_USDT_ARG_CONST, valOff: num(r[1]), regOff: 0 };
    if ((r = /^%([a-z0-9]+)$/.exec(loc))) return { ...common, argType: BPF_USDT_ARG_REG, valOff: 0n, regOff: register(r[1], arg) };
    if ((r = new RegExp(`^(${NUM})?\\(%([a-z0-9]+)\\)$`).exec(loc))) {
      return { ...common, argType: BPF_USDT_ARG_REG_DEREF, valOff: r[1] ? num(r[1]) : 0n, regOff: register(r[2], arg) };
    }
    if ((r = new RegExp(`^([A-Za-z_.$][\\w.$@]*)(?:([+-])(${NUM.slice(2)}))?\\(%rip\\)$`).exec(loc))) {
      const at = symbol(r[1]);
      if (at === undefined) throw new Error(`argument "${arg}": symbol ${r[1]} is not in the binary's symbol tables`);
      const extra = r[3] ? (r[2] === '-' ? -num(r[3]) : num(r[3])) : 0n;
      // At the hit pt_regs' ip is the site itself, so the global is ip + (global - site).
      return { ...common, argType: BPF_USDT_ARG_REG_DEREF, valOff: BigInt(at) + extra - BigInt(siteVaddr), regOff: PT_REGS.ip };
    }
    if (/\(%[a-z0-9]+,%[a-z0-9]+(,\d)?\)$/.test(loc)) throw new Error(`argument "${arg}": base+index*scale operands are not supported by usdt.bpf.h's argument records`);
    throw new Error(`argument "${arg}": location "${loc}" is not understood`);
  });
}
