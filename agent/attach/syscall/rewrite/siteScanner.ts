// Finds the syscall sites of loaded code that can be rewritten: the 7-byte
// `mov $NR,%eax; syscall` pair (b8 imm32 0f 05), which a 5-byte jmp to a per-site
// trampoline can replace with the number known per site. A linear sweep with capstone
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

/* out: stats[0] syscall instructions, [1] pattern pairs, [2] pairs cut by a branch target. */
int
scan_sites (const guint8 * base, guint64 size, guint8 * targets, guint64 * sites, int capacity, gint64 * stats)
{
  csh h;
  cs_insn * insn;
  const uint8_t * p = base;
  size_t left = size;
  uint64_t addr = (uint64_t) base;
  const guint8 * prev = NULL;
  int prev_mov = 0;
  int n = 0;
  int i, kept;
  guint64 off;

  if (cs_open (CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
    return -1;
  insn = cs_malloc (h);
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
          sites[n++] = (guint64) prev;
      }
    }
    prev_mov = (p - at == 5 && at[0] == 0xb8);
    prev = at;
  }
  cs_free (insn, 1);
  cs_close (&h);

  kept = 0;
  for (i = 0; i < n; i++)
  {
    guint64 s = sites[i] - (guint64) base;
    int cut = 0;
    for (off = s + 1; off < s + 7; off++)
      if (targets[off >> 3] & (1 << (off & 7)))
        cut = 1;
    if (cut)
      stats[2]++;
    else
      sites[kept++] = sites[i];
  }
  return kept;
}
`;

export interface ScanResult {
  /** Addresses of the `mov $NR,%eax` of each rewritable pair, and NR. */
  sites: { at: NativePointer; nr: number }[];
  /** Every `syscall` instruction found, pattern or not. */
  syscalls: number;
  /** Pattern pairs found before the branch-target check. */
  pairs: number;
  /** Pairs whose `syscall` is a branch target (left alone). */
  cut: number;
}

let scanner: { fn: NativeFunction<number, [NativePointer, number | UInt64, NativePointer, NativePointer, number, NativePointer]>; cm: CModule } | null = null;

/** Scans one executable range [base, base + size). */
export function scanRange(base: NativePointer, size: number): ScanResult {
  scanner ??= (() => {
    const cm = new CModule(SOURCE);
    return { cm, fn: new NativeFunction(cm.scan_sites, 'int', ['pointer', 'uint64', 'pointer', 'pointer', 'int', 'pointer']) };
  })();
  const targets = Memory.alloc((size >> 3) + 1);
  const capacity = 4096;
  const sites = Memory.alloc(8 * capacity);
  const stats = Memory.alloc(24);
  const n = scanner.fn(base, size, targets, sites, capacity, stats);
  if (n < 0) throw new Error('capstone is not available to CModule');
  const out: ScanResult['sites'] = [];
  for (let i = 0; i < n; i++) {
    const at = sites.add(8 * i).readPointer();
    out.push({ at, nr: at.add(1).readU32() });
  }
  return { sites: out, syscalls: stats.readS64().toNumber(), pairs: stats.add(8).readS64().toNumber(), cut: stats.add(16).readS64().toNumber() };
}
