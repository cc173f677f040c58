/* Program loading: decoding and validation of raw instructions into the interpreter's
 * dinsn form (internal opcodes, absolute jump targets), then the verifier (verifier.c). */
#include "bpfvm_internal.h"

/* The regions and context of the next bpfvm_load (bpfvm_set_load_env). */
static bpfvm_region_t g_env_regions[BPFVM_MAX_REGIONS];
static uint32_t g_env_nregions, g_env_ctx_size, g_env_ctx_flags;

#define FAIL(msg) return bpfvm_load_error(pc, msg, 0, 0, 0, 0)
#define FAILN(msg, v, hex, tail) return bpfvm_load_error(pc, msg, 1, (uint64_t)(v), hex, tail)

/* ---------------------------------------------------------------- decoding */
enum { CLS_LD = 0, CLS_LDX = 1, CLS_ST = 2, CLS_STX = 3, CLS_ALU = 4, CLS_JMP = 5, CLS_JMP32 = 6, CLS_ALU64 = 7 };

static const uint8_t alu_base[16] = {
    /* 0x0 add */ OP_ADD64_IMM, OP_SUB64_IMM, OP_MUL64_IMM, OP_DIV64_IMM, OP_OR64_IMM, OP_AND64_IMM,
    OP_LSH64_IMM, OP_RSH64_IMM, /* 0x8 neg */ 0, OP_MOD64_IMM, OP_XOR64_IMM, OP_MOV64_IMM, OP_ARSH64_IMM,
    /* 0xd end */ 0, 0, 0};
static const uint8_t jmp_base[16] = {
    /* 0x0 ja */ 0, OP_JEQ_IMM, OP_JGT_IMM, OP_JGE_IMM, OP_JSET_IMM, OP_JNE_IMM, OP_JSGT_IMM, OP_JSGE_IMM,
    /* 0x8 call */ 0, /* 0x9 exit */ 0, OP_JLT_IMM, OP_JLE_IMM, OP_JSLT_IMM, OP_JSLE_IMM, 0, 0};

static int check_dst_write(uint32_t pc, uint32_t dst) {
  if (dst > 10) return bpfvm_load_error(pc, "invalid destination register r", 1, dst, 0, 0);
  if (dst == 10) return bpfvm_load_error(pc, "write to read-only register r10", 0, 0, 0, 0);
  return 0;
}

EXPORT(bpfvm_load) int32_t bpfvm_load(const uint64_t *raw, uint32_t n) {
  uint32_t pc = 0;
  if (g_nprogs >= BPFVM_MAX_PROGS) FAIL("too many programs loaded");
  if (n == 0) FAIL("empty program");
  if (n > BPFVM_MAX_INSNS) FAILN("program too large (limit ", BPFVM_MAX_INSNS, 0, " instructions)");
  dinsn *code = bpfvm_sys_alloc(n * (uint32_t)sizeof(dinsn));
  bpfvm_region_t *regions = g_env_nregions ? bpfvm_sys_alloc(g_env_nregions * (uint32_t)sizeof(bpfvm_region_t)) : 0;
#ifdef __wasm__
  /* Everything allocated after this point is temporary (decoding, the verifier's states):
   * the bump allocator is rewound to here at the end. */
  uintptr_t temp_mark = bpfvm_alloc_mark();
#endif
  uint8_t *is_second = bpfvm_sys_alloc(n);
  if (!code || !is_second || (g_env_nregions && !regions)) FAIL("out of memory");
  int32_t rc = -1;
#define BAD(...) do { rc = bpfvm_load_error(pc, __VA_ARGS__); goto out; } while (0)
  /* pass 1: decode and validate fields */
  for (pc = 0; pc < n; pc++) {
    uint64_t w = raw[pc];
    uint8_t opc = (uint8_t)w;
    uint32_t dst = (uint32_t)(w >> 8) & 15, src = (uint32_t)(w >> 12) & 15;
    int32_t off = (int16_t)(uint16_t)(w >> 16);
    int32_t imm = (int32_t)(uint32_t)(w >> 32);
    uint32_t cls = opc & 7, code4 = opc >> 4, x = (opc >> 3) & 1;
    dinsn *d = &code[pc];
    d->dst = (uint8_t)(dst * 8); /* register byte offsets: no scaling in the interpreter */
    d->src = (uint8_t)(src * 8);
    d->off = off;
    d->imm = imm;
    if (is_second[pc]) { d->op = OP_INVALID; continue; }
    switch (cls) {
    case CLS_ALU:
    case CLS_ALU64: {
      int is64 = cls == CLS_ALU64;
      if (check_dst_write(pc, dst)) goto out;
      if (code4 == 0x8) { /* neg */
        if (x) BAD("neg with register source is not a valid opcode ", 1, opc, 1, 0);
        if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
        if (off) BAD("nonzero reserved offset field", 0, 0, 0, 0);
        if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
        d->op = is64 ? OP_NEG64 : OP_NEG32;
        break;
      }
      if (code4 == 0xd) { /* byte swaps */
        if (is64 && x) BAD("unknown opcode ", 1, opc, 1, 0);
        if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
        if (off) BAD("nonzero reserved offset field", 0, 0, 0, 0);
        if (imm != 16 && imm != 32 && imm != 64) BAD("invalid byte swap width ", 1, (uint32_t)imm, 0, 0);
        if (is64 || x) d->op = imm == 16 ? OP_BSWAP16 : imm == 32 ? OP_BSWAP32 : OP_BSWAP64;
        else d->op = imm == 16 ? OP_ZEXT16 : imm == 32 ? OP_ZEXT32 : OP_NOP;
        break;
      }
      if (code4 > 0xc) BAD("unknown opcode ", 1, opc, 1, 0);
      uint8_t base = alu_base[code4];
      if (x) {
        if (src > 10) BAD("invalid source register r", 1, src, 0, 0);
        if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
      } else if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
      if (off) {
        if ((code4 == 0x3 || code4 == 0x9) && off == 1) base = code4 == 0x3 ? OP_SDIV64_IMM : OP_SMOD64_IMM;
        else if (code4 == 0xb && x && (off == 8 || off == 16 || (off == 32 && is64))) {
          d->op = off == 8 ? (is64 ? OP_MOVSX8_64 : OP_MOVSX8_32)
                           : off == 16 ? (is64 ? OP_MOVSX16_64 : OP_MOVSX16_32) : OP_MOVSX32_64;
          break;
        } else BAD("nonzero reserved offset field", 0, 0, 0, 0);
      }
      d->op = (uint8_t)(base + (x ? 1 : 0) + (is64 ? 0 : 2));
      if (!is64) d->imm = (int64_t)(uint32_t)imm;
      break;
    }
    case CLS_JMP:
    case CLS_JMP32: {
      int is32 = cls == CLS_JMP32;
      if (code4 == 0x0) { /* ja */
        if (x) BAD("unknown opcode ", 1, opc, 1, 0);
        if (dst) BAD("nonzero reserved dst field", 0, 0, 0, 0);
        if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
        if (is32) {
          if (off) BAD("nonzero reserved offset field", 0, 0, 0, 0);
          d->off = imm; /* relative; fixed up below */
        } else if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
        d->op = OP_JA;
        break;
      }
      if (code4 == 0x8) { /* call */
        if (is32) BAD("unknown opcode ", 1, opc, 1, 0);
        if (off) BAD("nonzero reserved offset field", 0, 0, 0, 0);
        if (x) { /* callx: helper id in register dst */
          if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
          if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
          if (dst > 10) BAD("invalid register r", 1, dst, 0, 0);
          d->op = OP_CALLX;
          break;
        }
        if (dst) BAD("nonzero reserved dst field", 0, 0, 0, 0);
        if (src == 0) {
          if (imm == BPFVM_HELPER_LOOP) { d->op = OP_BPF_LOOP; break; }
        if ((uint32_t)imm >= BPFVM_MAX_HELPERS || !g_helper_ok[(uint32_t)imm])
            BAD("unknown helper id ", 1, (uint64_t)(int64_t)imm, 0, " (not registered)");
          d->op = OP_CALL;
          d->imm = (uint32_t)imm;
        } else if (src == 1) {
          d->op = OP_CALL_LOCAL;
          d->off = imm;
        } else if (src == 2) BAD("call by BTF id is not supported", 0, 0, 0, 0);
        else BAD("nonzero reserved src field", 0, 0, 0, 0);
        break;
      }
      if (code4 == 0x9) { /* exit */
        if (is32 || x) BAD("unknown opcode ", 1, opc, 1, 0);
        if (dst) BAD("nonzero reserved dst field", 0, 0, 0, 0);
        if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
        if (off) BAD("nonzero reserved offset field", 0, 0, 0, 0);
        if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
        d->op = OP_EXIT;
        break;
      }
      if (code4 > 0xd) BAD("unknown opcode ", 1, opc, 1, 0);
      if (dst > 10) BAD("invalid register r", 1, dst, 0, 0);
      if (x) {
        if (src > 10) BAD("invalid source register r", 1, src, 0, 0);
        if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
      } else if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
      d->op = (uint8_t)(jmp_base[code4] + (x ? 1 : 0) + (is32 ? 2 : 0));
      d->imm = is32 ? (int64_t)(uint32_t)imm : (int64_t)imm;
      break;
    }
    case CLS_LD: {
      if (opc != 0x18) {
        uint32_t mode = opc & 0xe0;
        if (mode == 0x20 || mode == 0x40) BAD("legacy packet access (ld_abs/ld_ind) is not supported", 0, 0, 0, 0);
        BAD("unknown opcode ", 1, opc, 1, 0);
      }
      /* src 1 (map handle) and 2 (map value address) arrive resolved by the loader and keep
       * their src so that the verifier knows a map value pointer from a number. */
      if (src && (src > 4 || src == 3 || (src != 4 && !(g_env_ctx_flags & BPFVM_LOAD_RESOLVED)))) BAD("unsupported lddw src=", 1, src, 0, " (pseudo loads must be resolved by the loader)");
      if (check_dst_write(pc, dst)) goto out;
      if (off) BAD("nonzero reserved offset field", 0, 0, 0, 0);
      if (pc + 1 >= n) BAD("incomplete lddw (missing second half)", 0, 0, 0, 0);
      uint64_t w2 = raw[pc + 1];
      if ((w2 & 0xffffffffu) != 0) { pc++; BAD("nonzero reserved fields in second half of lddw", 0, 0, 0, 0); }
      d->op = OP_LDDW;
      d->imm = (int64_t)((uint64_t)(uint32_t)imm | (w2 & 0xffffffff00000000ull));
      if (src == 4) { /* PSEUDO_FUNC: address of the subprogram at pc + imm + 1 */
        if (w2 >> 32) BAD("nonzero next imm in lddw src=4", 0, 0, 0, 0);
        d->chk = 1;
        d->off = imm;
      }
      if (src == 1 || src == 2) d->chk = (uint8_t)(src == 2 ? 2 : 3);
      is_second[pc + 1] = 1;
      break;
    }
    case CLS_LDX: {
      uint32_t mode = opc & 0xe0, size = opc & 0x18;
      if (mode != 0x60 && mode != 0x80) BAD("unknown opcode ", 1, opc, 1, 0);
      if (mode == 0x80 && size == 0x18) BAD("unknown opcode ", 1, opc, 1, 0);
      if (check_dst_write(pc, dst)) goto out;
      if (src > 10) BAD("invalid source register r", 1, src, 0, 0);
      if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
      static const uint8_t ldx[4] = {OP_LDXW, OP_LDXH, OP_LDXB, OP_LDXDW};
      static const uint8_t ldxs[4] = {OP_LDXSW, OP_LDXSH, OP_LDXSB, 0};
      d->op = mode == 0x60 ? ldx[size >> 3] : ldxs[size >> 3];
      break;
    }
    case CLS_ST: {
      uint32_t mode = opc & 0xe0, size = opc & 0x18;
      if (mode != 0x60) BAD("unknown opcode ", 1, opc, 1, 0);
      if (dst > 10) BAD("invalid destination register r", 1, dst, 0, 0);
      if (src) BAD("nonzero reserved src field", 0, 0, 0, 0);
      static const uint8_t st[4] = {OP_STW, OP_STH, OP_STB, OP_STDW};
      d->op = st[size >> 3];
      break;
    }
    case CLS_STX: {
      uint32_t mode = opc & 0xe0, size = opc & 0x18;
      if (dst > 10) BAD("invalid destination register r", 1, dst, 0, 0);
      if (src > 10) BAD("invalid source register r", 1, src, 0, 0);
      if (mode == 0x60) {
        if (imm) BAD("nonzero reserved imm field", 0, 0, 0, 0);
        static const uint8_t stx[4] = {OP_STXW, OP_STXH, OP_STXB, OP_STXDW};
        d->op = stx[size >> 3];
      } else if (mode == 0xc0 && (size == 0x00 || size == 0x18)) {
        int is32 = size == 0;
        uint8_t a;
        switch ((uint32_t)imm) {
        case 0x00: a = OP_AADD64; break;
        case 0x40: a = OP_AOR64; break;
        case 0x50: a = OP_AAND64; break;
        case 0xa0: a = OP_AXOR64; break;
        case 0x01: a = OP_FADD64; break;
        case 0x41: a = OP_FOR64; break;
        case 0x51: a = OP_FAND64; break;
        case 0xa1: a = OP_FXOR64; break;
        case 0xe1: a = OP_XCHG64; break;
        case 0xf1: a = OP_CMPXCHG64; break;
        default: BAD("unknown atomic operation ", 1, (uint32_t)imm, 1, 0);
        }
        if ((imm & 1) && src == 10) BAD("write to read-only register r10", 0, 0, 0, 0); /* fetch writes src */
        d->op = (uint8_t)(a + is32);
      } else BAD("unknown opcode ", 1, opc, 1, 0);
      break;
    }
    }
  }
  /* pass 2: control flow targets */
  for (pc = 0; pc < n; pc++) {
    dinsn *d = &code[pc];
    if (is_second[pc]) continue;
    int is_func = d->op == OP_LDDW && d->chk == 1;
    int is_jump = (d->op >= OP_JEQ_IMM && d->op <= OP_JSLE32_REG) || d->op == OP_JA || d->op == OP_CALL_LOCAL;
    if (!is_jump && !is_func) continue;
    int64_t t = (int64_t)pc + 1 + d->off;
    if (t < 0 || t >= (int64_t)n) {
      if (d->op == OP_CALL_LOCAL || is_func) BAD("call local target out of range", 0, 0, 0, 0);
      BAD("jump out of range", 0, 0, 0, 0);
    }
    if (is_second[t]) {
      if (d->op == OP_CALL_LOCAL || is_func) BAD("call local target is the second half of lddw", 0, 0, 0, 0);
      BAD("jump into the second half of lddw", 0, 0, 0, 0);
    }
    if (is_func) {
      d->imm = (int64_t)(BPFVM_FUNC_TAG | (uint64_t)t);
      d->off = 0;
      continue;
    }
    d->off = (int32_t)t;
  }
  pc = n - 1;
  if (is_second[pc] || (code[pc].op != OP_EXIT && code[pc].op != OP_JA))
    BAD("last instruction is not exit or ja (execution could fall off the end)", 0, 0, 0, 0);
  prog_t *p = &g_progs[g_nprogs];
  p->code = code;
  p->len = n;
  p->ctx_size = g_env_ctx_size;
  p->ctx_flags = g_env_ctx_flags;
  p->nregions = g_env_nregions;
  p->regions = regions;
  if (regions) __builtin_memcpy(regions, g_env_regions, g_env_nregions * sizeof(bpfvm_region_t));
#ifdef BPFVM_NO_ISOLATION
  for (uint32_t i = 0; i < n; i++)
    if ((code[i].op >= OP_LDXB && code[i].op <= OP_STXDW) || (code[i].op >= OP_AADD64 && code[i].op <= OP_CMPXCHG32)) code[i].chk = CHK_ARENA;
#else
  if (bpfvm_verify(p) < 0) {
    p->regions = 0;
    p->nregions = 0;
    rc = -1;
    goto out;
  }
#endif
  g_env_nregions = g_env_ctx_size = g_env_ctx_flags = 0;
  rc = (int32_t)g_nprogs++;
  bpfvm_sys_free(is_second);
#ifdef __wasm__
  bpfvm_alloc_rewind(temp_mark);
#endif
  return rc;
out:
  g_env_nregions = g_env_ctx_size = g_env_ctx_flags = 0;
  bpfvm_sys_free(is_second);
  bpfvm_sys_free(code);
  bpfvm_sys_free(regions);
#ifdef __wasm__
  bpfvm_alloc_rewind(temp_mark);
#endif
  return rc;
#undef BAD
}

EXPORT(bpfvm_set_load_env)
int32_t bpfvm_set_load_env(const bpfvm_region_t *regions, uint32_t n, uint32_t ctx_size, uint32_t ctx_flags) {
  if (n > BPFVM_MAX_REGIONS) return -1;
  for (uint32_t i = 0; i < n; i++) {
    const bpfvm_region_t *r = &regions[i];
    if ((uint64_t)r->base + r->size > g_rw_hi || (r->size && r->base < g_ro_lo)) return -2;
    if ((r->flags & BPFVM_REGION_VALUES) && (r->stride == 0 || r->value_size > r->stride)) return -3;
  }
  __builtin_memcpy(g_env_regions, regions, n * sizeof(bpfvm_region_t));
  g_env_nregions = n;
  g_env_ctx_size = ctx_size;
  g_env_ctx_flags = ctx_flags;
  return 0;
}
