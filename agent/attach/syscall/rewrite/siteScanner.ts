// Finds the syscall sites of loaded code that can be rewritten: the 7-byte
// `mov $NR,%eax; syscall` pair (b8 imm32 0f 05), which a 5-byte jmp to a per-site
// trampoline can replace with the number known per site; and a `syscall` right after one
// relocatable instruction of 5-12 bytes (no branch, nothing rip-relative), which the
// trampoline runs first, with the number read from rax at run time. One instruction
// only: with two, a thread between them when the jmp lands would run half an instruction. A linear sweep with capstone
// (the way objdump reads .text; on a decode failure it resyncs one byte on) finds the
// instruction boundaries, and every direct branch target on the way: a pair whose
// `syscall` (or any byte after the mov's first) is a branch target is left alone, since
// the jmp would cut that path in half. Indirect branches into a pair's second instruction
// are not seen; in glibc such a target would be a case label made of a bare `syscall`.
// The sweep is C: libc is ~400k instructions.

const SOURCE = `
#define __IBMC__ 1
#include <gum/gumstalker.h>
#undef __IBMC__

/*
 * Whether the instruction at p (len bytes) can run unchanged from a trampoline: no
 * branch of any kind, no rip-relative operand.
 */
static int
relocatable (csh hd, cs_insn * di, const guint8 * p, int len)
{
  const uint8_t * q = p;
  size_t left = len;
  uint64_t addr = (uint64_t) p;
  int i;
  if (!cs_disasm_iter (hd, &q, &left, &addr, di) || di->size != len)
    return 0;
  for (i = 0; i < di->detail->groups_count; i++)
  {
    guint8 g = di->detail->groups[i];
    if (g == CS_GRP_JUMP || g == CS_GRP_CALL || g == CS_GRP_RET || g == CS_GRP_INT || g == CS_GRP_IRET || g == CS_GRP_BRANCH_RELATIVE)
      return 0;
  }
  for (i = 0; i < di->detail->x86.op_count; i++)
  {
    cs_x86_op * op = &di->detail->x86.operands[i];
    if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP)
      return 0;
  }
  return 1;
}

/*
 * out: sites[] (start of the rewritten bytes), kinds[] (0: mov $NR,%eax; syscall, else the
 * length of the one relocatable instruction before a syscall whose number comes in rax);
 * stats[0] syscall instructions, [1] candidates, [2] candidates cut by a branch target.
 */
int
scan_sites (const guint8 * base, guint64 size, guint8 * targets, guint64 * sites, guint8 * kinds, int capacity, gint64 * stats)
{
  csh hd;
  cs_insn * di;
  csh h;
  cs_insn * insn;
  const uint8_t * p = base;
  size_t left = size;
  uint64_t addr = (uint64_t) base;
  const guint8 * prev = NULL;
  int prev_mov = 0;
  int prev_len = 0;
  int n = 0;
  int i, kept;
  guint64 off;

  if (cs_open (CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
    return -1;
  if (cs_open (CS_ARCH_X86, CS_MODE_64, &hd) != CS_ERR_OK)
    return -1;
  cs_option (hd, CS_OPT_DETAIL, CS_OPT_ON);
  insn = cs_malloc (h);
  di = cs_malloc (hd);
  stats[0] = stats[1] = stats[2] = 0;
  while (left > 0)
  {
    const guint8 * at = p;
    const guint8 * b;
    gint64 target = -1;

    if (!cs_disasm_iter (h, &p, &left, &addr, insn))
    {
      p = at + 1;
      left--;
      addr = (uint64_t) p;
      prev_mov = 0;
      prev = NULL;
      continue;
    }
    b = at;
    /* Skip legacy prefixes (bnd, notrack, operand size) to reach a relative branch opcode. */
    while (b < p && (*b == 0xf2 || *b == 0xf3 || *b == 0x3e || *b == 0x2e || *b == 0x66))
      b++;
    if (b + 2 == p && ((*b >= 0x70 && *b <= 0x7f) || (*b >= 0xe0 && *b <= 0xe3) || *b == 0xeb))
      target = (gint64) (p - base) + (gint8) b[1];
    else if (b + 5 == p && (*b == 0xe8 || *b == 0xe9))
      target = (gint64) (p - base) + *(const gint32 *) (b + 1);
    else if (b + 6 == p && b[0] == 0x0f && b[1] >= 0x80 && b[1] <= 0x8f)
      target = (gint64) (p - base) + *(const gint32 *) (b + 2);
    if (target >= 0 && (guint64) target < size)
      targets[target >> 3] |= 1 << (target & 7);
    if (p - at == 2 && at[0] == 0x0f && at[1] == 0x05)
    {
      stats[0]++;
      if (prev_mov)
      {
        stats[1]++;
        if (n < capacity)
        {
          kinds[n] = 0;
          sites[n++] = (guint64) prev;
        }
      }
      else if (prev != NULL && prev_len >= 5 && prev_len <= 12 && prev + prev_len == at && relocatable (hd, di, prev, prev_len))
      {
        stats[1]++;
        if (n < capacity)
        {
          kinds[n] = prev_len;
          sites[n++] = (guint64) prev;
        }
      }
    }
    prev_mov = (p - at == 5 && at[0] == 0xb8);
    prev_len = p - at;
    prev = at;
  }
  cs_free (insn, 1);
  cs_free (di, 1);
  cs_close (&h);
  cs_close (&hd);

  kept = 0;
  for (i = 0; i < n; i++)
  {
    guint64 s = sites[i] - (guint64) base;
    guint64 len = (kinds[i] == 0 ? 5 : kinds[i]) + 2;
    int cut = 0;
    for (off = s + 1; off < s + len; off++)
      if (targets[off >> 3] & (1 << (off & 7)))
        cut = 1;
    if (cut)
      stats[2]++;
    else
    {
      kinds[kept] = kinds[i];
      sites[kept++] = sites[i];
    }
  }
  return kept;
}
`;

export interface ScanResult {
  /**
   * Where each rewritable site starts, and its number: the `mov $NR,%eax` of a pair, or
   * (nr -1, `copy` bytes) the one relocatable instruction before a `syscall` that takes
   * its number from rax (glibc's generic syscall(), for one).
   */
  sites: { at: NativePointer; nr: number; copy: number }[];
  /** Every `syscall` instruction found, pattern or not. */
  syscalls: number;
  /** Pattern pairs found before the branch-target check. */
  pairs: number;
  /** Pairs whose `syscall` is a branch target (left alone). */
  cut: number;
}

let scanner: { fn: NativeFunction<number, [NativePointer, number | UInt64, NativePointer, NativePointer, NativePointer, number, NativePointer]>; cm: CModule } | null = null;

/** Scans one executable range [base, base + size). */
export function scanRange(base: NativePointer, size: number): ScanResult {
  scanner ??= (() => {
    const cm = new CModule(SOURCE);
    return { cm, fn: new NativeFunction(cm.scan_sites, 'int', ['pointer', 'uint64', 'pointer', 'pointer', 'pointer', 'int', 'pointer']) };
  })();
  const targets = Memory.alloc((size >> 3) + 1);
  const capacity = 4096;
  const sites = Memory.alloc(8 * capacity);
  const stats = Memory.alloc(24);
  const kinds = Memory.alloc(capacity);
  const n = scanner.fn(base, size, targets, sites, kinds, capacity, stats);
  if (n < 0) throw new Error('capstone is not available to CModule');
  const out: ScanResult['sites'] = [];
  for (let i = 0; i < n; i++) {
    const at = sites.add(8 * i).readPointer();
    const copy = kinds.add(i).readU8();
    out.push(copy === 0 ? { at, nr: at.add(1).readU32(), copy: 0 } : { at, nr: -1, copy });
  }
  return { sites: out, syscalls: stats.readS64().toNumber(), pairs: stats.add(8).readS64().toNumber(), cut: stats.add(16).readS64().toNumber() };
}
