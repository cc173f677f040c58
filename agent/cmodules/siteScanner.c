/*
 * The sweep that finds rewritable syscall sites (siteScanner.ts explains which). INSN_*
 * and PREFIX_MAX are #defined by siteScanner.ts.
 */
#define __IBMC__ 1
#include <gum/gumstalker.h>
#undef __IBMC__

/*
 * How the instruction at p (len bytes) can run from a trampoline: INSN_PLAIN unchanged,
 * INSN_RIP_RELATIVE with its rip-relative displacement (at *disp_off) re-aimed, INSN_JCC
 * a conditional jump (7x rel8 or 0f 8x rel32, no prefix) re-encoded as rel32; -1 not at all (any other branch, call,
 * return, interrupt, or a syscall).
 */
static int
classify (csh hd, cs_insn * di, const guint8 * p, int len, int * disp_off)
{
  const uint8_t * q = p;
  size_t left = len;
  uint64_t addr = (uint64_t) p;
  int i;
  if (!cs_disasm_iter (hd, &q, &left, &addr, di) || di->size != len)
    return -1;
  if ((len == 2 && p[0] >= 0x70 && p[0] <= 0x7f) || (len == 6 && p[0] == 0x0f && p[1] >= 0x80 && p[1] <= 0x8f))
    return INSN_JCC;
  for (i = 0; i < di->detail->groups_count; i++)
  {
    guint8 g = di->detail->groups[i];
    if (g == CS_GRP_JUMP || g == CS_GRP_CALL || g == CS_GRP_RET || g == CS_GRP_INT || g == CS_GRP_IRET || g == CS_GRP_BRANCH_RELATIVE)
      return -1;
  }
  for (i = 0; i < di->detail->x86.op_count; i++)
  {
    cs_x86_op * op = &di->detail->x86.operands[i];
    if (op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP)
    {
      if (di->detail->x86.encoding.disp_size != 4)
        return -1;
      *disp_off = di->detail->x86.encoding.disp_offset;
      return INSN_RIP_RELATIVE;
    }
  }
  return INSN_PLAIN;
}

/*
 * out: sites[] (start of the rewritten bytes), kinds[] (0: mov $NR,%eax; syscall, else the
 * byte length of the relocated run before a syscall whose number comes in rax), runs[]
 * (PREFIX_MAX x {len, kind, disp_off} per site, len 0 after the last); stats[0] syscall
 * instructions, [1] candidates, [2] candidates cut by a branch target.
 */
int
scan_sites (const guint8 * base, guint64 size, guint8 * targets, guint64 * sites, guint8 * kinds, guint8 * runs, int capacity, gint64 * stats)
{
  csh hd;
  cs_insn * di;
  csh h;
  cs_insn * insn;
  const uint8_t * p = base;
  size_t left = size;
  uint64_t addr = (uint64_t) base;
  /* The last PREFIX_MAX instructions, contiguous (a decode failure empties it); [0] is the latest. */
  const guint8 * hist[PREFIX_MAX];
  int hlen[PREFIX_MAX];
  int nhist = 0;
  int n = 0;
  int i, j, kept;
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
      nhist = 0;
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
      if (nhist > 0 && hlen[0] == 5 && hist[0][0] == 0xb8)
      {
        stats[1]++;
        if (n < capacity)
        {
          kinds[n] = 0;
          sites[n++] = (guint64) hist[0];
        }
      }
      else if (n < capacity)
      {
        /* The shortest run back from the syscall whose first instruction is 5+ bytes. */
        guint8 * run = runs + n * PREFIX_MAX * 3;
        int total = 0;
        for (j = 0; j < nhist; j++)
        {
          int disp = 0;
          int k = classify (hd, di, hist[j], hlen[j], &disp);
          if (k < 0)
            break;
          run[j * 3] = hlen[j];
          run[j * 3 + 1] = k;
          run[j * 3 + 2] = disp;
          total += hlen[j];
          if (hlen[j] >= 5)
            break;
        }
        if (j < nhist && hlen[j] >= 5 && total <= 64)
        {
          int m = j + 1;
          guint8 tmp[PREFIX_MAX * 3];
          /* Stored oldest first, the order they run in. */
          for (i = 0; i < m * 3; i++)
            tmp[i] = run[(m - 1 - i / 3) * 3 + i % 3];
          for (i = 0; i < m * 3; i++)
            run[i] = tmp[i];
          if (m < PREFIX_MAX)
            run[m * 3] = 0;
          stats[1]++;
          kinds[n] = total;
          sites[n++] = (guint64) hist[j];
        }
      }
    }
    for (j = (nhist < PREFIX_MAX ? nhist : PREFIX_MAX - 1); j > 0; j--)
    {
      hist[j] = hist[j - 1];
      hlen[j] = hlen[j - 1];
    }
    hist[0] = at;
    hlen[0] = p - at;
    if (nhist < PREFIX_MAX)
      nhist++;
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
      for (j = 0; j < PREFIX_MAX * 3; j++)
        runs[kept * PREFIX_MAX * 3 + j] = runs[i * PREFIX_MAX * 3 + j]; /* kept <= i: forward copy is safe */
      sites[kept++] = sites[i];
    }
  }
  return kept;
}
