/* The interpreter: bpfvm_run_program runs a loaded program to its exit or first fault
 * (switch dispatch for wasm, computed goto natively), with bpf-to-bpf calls, bpf_loop,
 * tail calls and the instruction budget. */
#include "bpfvm_access.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef struct {
  uint64_t r6, r7, r8, r9;
  const dinsn *ret;
  const dinsn *loop_fn; /* non-null: a bpf_loop callback frame */
  uint64_t loop_i, loop_n, loop_ctx;
} frame_t;

#ifdef __wasm__
#define DISPATCH_NEXT continue
#define CASE(x) case OP_##x:
#else
#define DISPATCH_NEXT do { I = ip++; goto *labels[I->op]; } while (0)
#define CASE(x) L_##x:
#endif

#define REG(off) (*(uint64_t *)((uint8_t *)r + (off)))
#define LD(T, a)  ({ T v_; __builtin_memcpy(&v_, HP(a), sizeof(T)); v_; })
#define ST(T, a, v) do { T v_ = (T)(v); __builtin_memcpy(HP(a), &v_, sizeof(T)); } while (0)

/* The context check is inlined (variable offsets into the context are the common checked
 * access: pt_regs, tracepoint records, the benchmark's memory loop); ctx_tag is CHK_CTX when
 * ctx_len >= 8, so that ctx_len - sz cannot wrap, and no check value otherwise. */
#define CHECK_MEM(b, a, sz, w) \
  if (UNLIKELY(I->chk)) { \
    if (LIKELY(I->chk == ctx_tag)) { \
      if (UNLIKELY((a) - ctx > ctx_len - (sz))) { fault_addr = (a); goto fault_mem; } \
    } else if (UNLIKELY(!mem_ok(I, cur, (b), (a), (sz), (w), r[10], ctx, ctx_len))) { fault_addr = (a); goto fault_mem; } \
  }
#define CHECK_LD(a, sz) CHECK_MEM(REG(I->src), a, sz, 0)
#define CHECK_ST(a, sz) CHECK_MEM(REG(I->dst), a, sz, 1)
#define CHARGE(newseg) do { budget -= (int64_t)(I - seg) + 1; seg = (newseg); } while (0)
#define TAKE() do { const dinsn *T_ = code + I->off; if (T_ <= I) { CHARGE(T_); if (UNLIKELY(budget < 0)) goto fault_budget; } ip = T_; } while (0)

int32_t bpfvm_run_program(uint32_t handle, uint64_t ctx, uint64_t ctx_len) {
#ifndef __wasm__
#define L_ALU(n) &&L_##n##64_IMM, &&L_##n##64_REG, &&L_##n##32_IMM, &&L_##n##32_REG,
#define L_JMP(n) &&L_##n##_IMM, &&L_##n##_REG, &&L_##n##32_IMM, &&L_##n##32_REG,
#define L_ATOMIC(n) &&L_##n##64, &&L_##n##32,
  static const void *const labels[OP_COUNT] = {
      &&L_INVALID, ALU_NAMES(L_ALU) JMP_NAMES(L_JMP) ATOMIC_NAMES(L_ATOMIC)
      &&L_NEG64, &&L_NEG32, &&L_MOVSX8_64, &&L_MOVSX16_64, &&L_MOVSX32_64, &&L_MOVSX8_32, &&L_MOVSX16_32,
      &&L_ZEXT16, &&L_ZEXT32, &&L_NOP, &&L_BSWAP16, &&L_BSWAP32, &&L_BSWAP64,
      &&L_JA, &&L_CALL, &&L_CALLX, &&L_CALL_LOCAL, &&L_EXIT, &&L_LDDW, &&L_BPF_LOOP,
      &&L_LDXB, &&L_LDXH, &&L_LDXW, &&L_LDXDW, &&L_LDXSB, &&L_LDXSH, &&L_LDXSW,
      &&L_STB, &&L_STH, &&L_STW, &&L_STDW, &&L_STXB, &&L_STXH, &&L_STXW, &&L_STXDW};
#endif
  if (handle >= g_nprogs || g_running) return BPFVM_FAULT_BAD_HANDLE;
  /* The context must be arena memory the program may use that way: a writable context in
   * the rw arena, a read-only one anywhere in the arena. */
  if (ctx_len) {
    uint64_t lo = (g_progs[handle].ctx_flags & BPFVM_CTX_RO) ? g_ro_lo : g_rw_lo;
    if (ctx < lo || ctx > g_rw_hi || ctx_len > g_rw_hi - ctx) {
      g_fault_pc = 0;
      g_fault_addr = ctx;
      g_fault_check = CHK_CTX;
      g_insns = 0;
      return BPFVM_FAULT_MEMORY;
    }
  }
  g_running = 1;
  g_action = 0;
  const prog_t *cur = &g_progs[handle];
  const dinsn *code = cur->code;
  uint32_t prog_len = cur->len;
  const dinsn *ip = code, *I = code, *seg = code;
  const uint32_t ctx_tag = ctx_len >= 8 ? CHK_CTX : 0x100;
  run_state saved_run = g_run;
  g_run.prog = cur;
  g_run.ctx = ctx;
  g_run.ctx_len = ctx_len;
  const uint64_t stack_top = g_rw_lo + BPFVM_STACK_BYTES;
  int64_t budget = (int64_t)g_budget;
  uint64_t fault_addr = 0;
  int32_t status;
  uint32_t depth = 0, tail_calls = 0;
  frame_t frames[BPFVM_MAX_FRAMES];
  uint64_t r[11] = {0};
  r[1] = ctx;
  r[2] = ctx_len;
  r[10] = stack_top;

#ifdef __wasm__
dispatch_loop:
  for (;;) {
    I = ip++;
    switch (I->op) {
#else
  DISPATCH_NEXT;
  {
    {
#endif

#define ALU64_OP(name, expr) \
  CASE(name##64_IMM) { uint64_t d = REG(I->dst), s = (uint64_t)I->imm; (void)d; (void)s; REG(I->dst) = (expr); DISPATCH_NEXT; } \
  CASE(name##64_REG) { uint64_t d = REG(I->dst), s = REG(I->src); (void)d; (void)s; REG(I->dst) = (expr); DISPATCH_NEXT; }
#define ALU32_OP(name, expr) \
  CASE(name##32_IMM) { uint32_t d = (uint32_t)REG(I->dst), s = (uint32_t)I->imm; (void)d; (void)s; REG(I->dst) = (uint32_t)(expr); DISPATCH_NEXT; } \
  CASE(name##32_REG) { uint32_t d = (uint32_t)REG(I->dst), s = (uint32_t)REG(I->src); (void)d; (void)s; REG(I->dst) = (uint32_t)(expr); DISPATCH_NEXT; }

      ALU64_OP(ADD, d + s)
      ALU64_OP(SUB, d - s)
      ALU64_OP(MUL, d * s)
      ALU64_OP(DIV, s ? d / s : 0)
      ALU64_OP(SDIV, s == 0 ? 0 : s == ~0ull ? 0 - d : (uint64_t)((int64_t)d / (int64_t)s))
      ALU64_OP(MOD, s ? d % s : d)
      ALU64_OP(SMOD, s == 0 ? d : s == ~0ull ? 0 : (uint64_t)((int64_t)d % (int64_t)s))
      ALU64_OP(OR, d | s)
      ALU64_OP(AND, d & s)
      ALU64_OP(LSH, d << (s & 63))
      ALU64_OP(RSH, d >> (s & 63))
      ALU64_OP(ARSH, (uint64_t)((int64_t)d >> (s & 63)))
      ALU64_OP(XOR, d ^ s)
      ALU64_OP(MOV, s)
      ALU32_OP(ADD, d + s)
      ALU32_OP(SUB, d - s)
      ALU32_OP(MUL, d * s)
      ALU32_OP(DIV, s ? d / s : 0)
      ALU32_OP(SDIV, s == 0 ? 0 : s == ~0u ? 0 - d : (uint32_t)((int32_t)d / (int32_t)s))
      ALU32_OP(MOD, s ? d % s : d)
      ALU32_OP(SMOD, s == 0 ? d : s == ~0u ? 0 : (uint32_t)((int32_t)d % (int32_t)s))
      ALU32_OP(OR, d | s)
      ALU32_OP(AND, d & s)
      ALU32_OP(LSH, d << (s & 31))
      ALU32_OP(RSH, d >> (s & 31))
      ALU32_OP(ARSH, (uint32_t)((int32_t)d >> (s & 31)))
      ALU32_OP(XOR, d ^ s)
      ALU32_OP(MOV, s)

      CASE(NEG64) { REG(I->dst) = 0 - REG(I->dst); DISPATCH_NEXT; }
      CASE(NEG32) { REG(I->dst) = (uint32_t)(0 - (uint32_t)REG(I->dst)); DISPATCH_NEXT; }
      CASE(MOVSX8_64) { REG(I->dst) = (uint64_t)(int64_t)(int8_t)REG(I->src); DISPATCH_NEXT; }
      CASE(MOVSX16_64) { REG(I->dst) = (uint64_t)(int64_t)(int16_t)REG(I->src); DISPATCH_NEXT; }
      CASE(MOVSX32_64) { REG(I->dst) = (uint64_t)(int64_t)(int32_t)REG(I->src); DISPATCH_NEXT; }
      CASE(MOVSX8_32) { REG(I->dst) = (uint32_t)(int32_t)(int8_t)REG(I->src); DISPATCH_NEXT; }
      CASE(MOVSX16_32) { REG(I->dst) = (uint32_t)(int32_t)(int16_t)REG(I->src); DISPATCH_NEXT; }
      CASE(ZEXT16) { REG(I->dst) = (uint16_t)REG(I->dst); DISPATCH_NEXT; }
      CASE(ZEXT32) { REG(I->dst) = (uint32_t)REG(I->dst); DISPATCH_NEXT; }
      CASE(NOP) { DISPATCH_NEXT; }
      CASE(BSWAP16) { REG(I->dst) = __builtin_bswap16((uint16_t)REG(I->dst)); DISPATCH_NEXT; }
      CASE(BSWAP32) { REG(I->dst) = __builtin_bswap32((uint32_t)REG(I->dst)); DISPATCH_NEXT; }
      CASE(BSWAP64) { REG(I->dst) = __builtin_bswap64(REG(I->dst)); DISPATCH_NEXT; }

#define JMP64_OP(name, cond) \
  CASE(name##_IMM) { uint64_t d = REG(I->dst), s = (uint64_t)I->imm; if (cond) TAKE(); DISPATCH_NEXT; } \
  CASE(name##_REG) { uint64_t d = REG(I->dst), s = REG(I->src); if (cond) TAKE(); DISPATCH_NEXT; }
#define JMP32_OP(name, cond) \
  CASE(name##32_IMM) { uint32_t d = (uint32_t)REG(I->dst), s = (uint32_t)I->imm; if (cond) TAKE(); DISPATCH_NEXT; } \
  CASE(name##32_REG) { uint32_t d = (uint32_t)REG(I->dst), s = (uint32_t)REG(I->src); if (cond) TAKE(); DISPATCH_NEXT; }

      JMP64_OP(JEQ, d == s)
      JMP64_OP(JNE, d != s)
      JMP64_OP(JGT, d > s)
      JMP64_OP(JGE, d >= s)
      JMP64_OP(JLT, d < s)
      JMP64_OP(JLE, d <= s)
      JMP64_OP(JSET, (d & s) != 0)
      JMP64_OP(JSGT, (int64_t)d > (int64_t)s)
      JMP64_OP(JSGE, (int64_t)d >= (int64_t)s)
      JMP64_OP(JSLT, (int64_t)d < (int64_t)s)
      JMP64_OP(JSLE, (int64_t)d <= (int64_t)s)
      JMP32_OP(JEQ, d == s)
      JMP32_OP(JNE, d != s)
      JMP32_OP(JGT, d > s)
      JMP32_OP(JGE, d >= s)
      JMP32_OP(JLT, d < s)
      JMP32_OP(JLE, d <= s)
      JMP32_OP(JSET, (d & s) != 0)
      JMP32_OP(JSGT, (int32_t)d > (int32_t)s)
      JMP32_OP(JSGE, (int32_t)d >= (int32_t)s)
      JMP32_OP(JSLT, (int32_t)d < (int32_t)s)
      JMP32_OP(JSLE, (int32_t)d <= (int32_t)s)

      CASE(JA) { TAKE(); DISPATCH_NEXT; }

      CASE(LDDW) { REG(I->dst) = (uint64_t)I->imm; ip++; DISPATCH_NEXT; }

#define LDX_OP(name, T, CT, sz) \
  CASE(name) { uint64_t a = REG(I->src) + (uint64_t)(int64_t)I->off; CHECK_LD(a, sz); REG(I->dst) = (uint64_t)(CT)LD(T, a); DISPATCH_NEXT; }
      LDX_OP(LDXB, uint8_t, uint64_t, 1)
      LDX_OP(LDXH, uint16_t, uint64_t, 2)
      LDX_OP(LDXW, uint32_t, uint64_t, 4)
      LDX_OP(LDXDW, uint64_t, uint64_t, 8)
      LDX_OP(LDXSB, int8_t, int64_t, 1)
      LDX_OP(LDXSH, int16_t, int64_t, 2)
      LDX_OP(LDXSW, int32_t, int64_t, 4)

#define ST_OP(name, T, sz, val) \
  CASE(name) { uint64_t a = REG(I->dst) + (uint64_t)(int64_t)I->off; CHECK_ST(a, sz); ST(T, a, val); DISPATCH_NEXT; }
      ST_OP(STB, uint8_t, 1, MEM_IMM(I))
      ST_OP(STH, uint16_t, 2, MEM_IMM(I))
      ST_OP(STW, uint32_t, 4, MEM_IMM(I))
      ST_OP(STDW, uint64_t, 8, MEM_IMM(I))
      ST_OP(STXB, uint8_t, 1, REG(I->src))
      ST_OP(STXH, uint16_t, 2, REG(I->src))
      ST_OP(STXW, uint32_t, 4, REG(I->src))
      ST_OP(STXDW, uint64_t, 8, REG(I->src))

#define ATOMIC_OP(name, T, sz, NEWV, FETCH) \
  CASE(name) { uint64_t a = REG(I->dst) + (uint64_t)(int64_t)I->off; CHECK_ST(a, sz); \
    T old = LD(T, a), v = (T)REG(I->src); (void)v; ST(T, a, NEWV); if (FETCH) REG(I->src) = (uint64_t)old; DISPATCH_NEXT; }
      ATOMIC_OP(AADD64, uint64_t, 8, old + v, 0)
      ATOMIC_OP(AOR64, uint64_t, 8, old | v, 0)
      ATOMIC_OP(AAND64, uint64_t, 8, old & v, 0)
      ATOMIC_OP(AXOR64, uint64_t, 8, old ^ v, 0)
      ATOMIC_OP(FADD64, uint64_t, 8, old + v, 1)
      ATOMIC_OP(FOR64, uint64_t, 8, old | v, 1)
      ATOMIC_OP(FAND64, uint64_t, 8, old & v, 1)
      ATOMIC_OP(FXOR64, uint64_t, 8, old ^ v, 1)
      ATOMIC_OP(XCHG64, uint64_t, 8, v, 1)
      ATOMIC_OP(AADD32, uint32_t, 4, old + v, 0)
      ATOMIC_OP(AOR32, uint32_t, 4, old | v, 0)
      ATOMIC_OP(AAND32, uint32_t, 4, old & v, 0)
      ATOMIC_OP(AXOR32, uint32_t, 4, old ^ v, 0)
      ATOMIC_OP(FADD32, uint32_t, 4, old + v, 1)
      ATOMIC_OP(FOR32, uint32_t, 4, old | v, 1)
      ATOMIC_OP(FAND32, uint32_t, 4, old & v, 1)
      ATOMIC_OP(FXOR32, uint32_t, 4, old ^ v, 1)
      ATOMIC_OP(XCHG32, uint32_t, 4, v, 1)
      CASE(CMPXCHG64) {
        uint64_t a = REG(I->dst) + (uint64_t)(int64_t)I->off;
        CHECK_ST(a, 8);
        uint64_t old = LD(uint64_t, a);
        if (old == r[0]) ST(uint64_t, a, REG(I->src));
        r[0] = old;
        DISPATCH_NEXT;
      }
      CASE(CMPXCHG32) {
        uint64_t a = REG(I->dst) + (uint64_t)(int64_t)I->off;
        CHECK_ST(a, 4);
        uint32_t old = LD(uint32_t, a);
        if (old == (uint32_t)r[0]) ST(uint32_t, a, REG(I->src));
        r[0] = old;
        DISPATCH_NEXT;
      }

      CASE(CALLX) {
        uint64_t id = REG(I->dst);
        if (UNLIKELY(id >= BPFVM_MAX_HELPERS || !g_helper_ok[id])) { fault_addr = id; goto fault_helper; }
        g_in_helper = 1;
        g_fault_pc = (uint32_t)(I - code);
        g_run.fp = r[10];
        r[0] = call_helper(cur, (uint32_t)id, r[1], r[2], r[3], r[4], r[5]);
        g_in_helper = 0;
        if (UNLIKELY(g_action)) goto helper_action;
        DISPATCH_NEXT;
      }
      CASE(CALL) {
        g_in_helper = 1;
        g_fault_pc = (uint32_t)(I - code);
        g_run.fp = r[10];
        if (UNLIKELY(I->chk)) {
          g_run.rec = r[I->chk];
          g_run.rec_len = (uint32_t)I->off;
        }
        r[0] = call_helper(cur, (uint32_t)I->imm, r[1], r[2], r[3], r[4], r[5]);
        if (UNLIKELY(I->chk)) g_run.rec_len = 0;
        g_in_helper = 0;
        if (UNLIKELY(g_action)) goto helper_action;
        DISPATCH_NEXT;
      }
      CASE(CALL_LOCAL) {
        if (UNLIKELY(depth + 1 >= BPFVM_MAX_FRAMES)) goto fault_stack;
        frame_t *f = &frames[depth++];
        f->r6 = r[6]; f->r7 = r[7]; f->r8 = r[8]; f->r9 = r[9];
        f->ret = ip;
        f->loop_fn = 0;
        r[10] -= BPFVM_FRAME_STACK;
        const dinsn *T_ = code + I->off;
        CHARGE(T_);
        if (UNLIKELY(budget < 0)) goto fault_budget;
        ip = T_;
        DISPATCH_NEXT;
      }
      CASE(EXIT) {
        if (depth == 0) {
          CHARGE(I);
          g_result = r[0];
          status = BPFVM_OK;
          goto done;
        }
        frame_t *f = &frames[depth - 1];
        if (f->loop_fn) {
          if (r[0] == 0 && ++f->loop_i < f->loop_n) { /* next bpf_loop iteration */
            CHARGE(f->loop_fn);
            if (UNLIKELY(budget < 0)) goto fault_budget;
            r[1] = f->loop_i;
            r[2] = f->loop_ctx;
            ip = f->loop_fn;
            DISPATCH_NEXT;
          }
          r[0] = r[0] == 0 ? f->loop_i : f->loop_i + 1; /* iterations performed */
        }
        depth--;
        r[6] = f->r6; r[7] = f->r7; r[8] = f->r8; r[9] = f->r9;
        r[10] += BPFVM_FRAME_STACK;
        CHARGE(f->ret);
        ip = f->ret;
        DISPATCH_NEXT;
      }
      CASE(BPF_LOOP) { /* bpf_loop(nr_loops, callback, callback_ctx, flags) as an intrinsic */
        uint64_t nr = r[1], fn = r[2];
        if (r[4] != 0 || (fn & ~0xffffffffull) != BPFVM_FUNC_TAG || (uint32_t)fn >= prog_len || code[(uint32_t)fn].op == OP_INVALID) {
          r[0] = (uint64_t)-22; /* -EINVAL */
          DISPATCH_NEXT;
        }
        if (nr > (1u << 23)) { r[0] = (uint64_t)-7; DISPATCH_NEXT; } /* -E2BIG */
        if (nr == 0) { r[0] = 0; DISPATCH_NEXT; }
        if (UNLIKELY(depth + 1 >= BPFVM_MAX_FRAMES)) goto fault_stack;
        frame_t *f = &frames[depth++];
        f->r6 = r[6]; f->r7 = r[7]; f->r8 = r[8]; f->r9 = r[9];
        f->ret = ip;
        f->loop_fn = code + (uint32_t)fn;
        f->loop_i = 0;
        f->loop_n = nr;
        f->loop_ctx = r[3];
        r[10] -= BPFVM_FRAME_STACK;
        r[1] = 0;
        r[2] = f->loop_ctx;
        CHARGE(f->loop_fn);
        if (UNLIKELY(budget < 0)) goto fault_budget;
        ip = f->loop_fn;
        DISPATCH_NEXT;
      }
      CASE(INVALID) { goto fault_helper; }
#ifdef __wasm__
    default:
      goto fault_helper;
    }
  }
#else
    }
  }
#endif

helper_action: {
    int32_t act = g_action;
    g_action = 0;
    if (act == BPFVM_ACT_EXIT) {
      CHARGE(I);
      g_result = g_action_val;
      status = BPFVM_OK;
      goto done;
    }
    if (act == BPFVM_ACT_TAIL) {
      uint64_t h = g_action_val;
      if (h >= g_nprogs || ++tail_calls > BPFVM_MAX_TAIL_CALLS) { fault_addr = h; status = BPFVM_FAULT_TAIL_CALL; goto fault; }
      CHARGE(I);
      if (budget < 0) goto fault_budget;
      cur = &g_progs[h];
      g_run.prog = cur;
      code = cur->code;
      prog_len = cur->len;
      ip = seg = code;
      uint64_t ctx1 = r[1];
      for (int i = 0; i < 11; i++) r[i] = 0;
      r[1] = ctx1;
      r[2] = ctx_len;
      r[10] = stack_top;
      depth = 0;
#ifdef __wasm__
      goto dispatch_loop;
#else
      DISPATCH_NEXT;
#endif
    }
    fault_addr = g_action_val;
    goto fault_helper;
  }
fault_mem:
  status = BPFVM_FAULT_MEMORY;
  g_fault_check = I->chk;
  g_fault_region = MEM_AUX(I);
  goto fault;
fault_budget:
  status = BPFVM_FAULT_BUDGET;
  goto fault;
fault_stack:
  status = BPFVM_FAULT_STACK;
  goto fault;
fault_helper:
  status = BPFVM_FAULT_HELPER;
fault:
  g_fault_pc = (uint32_t)(I - code);
  g_fault_addr = fault_addr;
done:
  g_insns = (uint64_t)((int64_t)g_budget - budget);
  g_running = 0;
  g_run = saved_run;
  return status;
}

#ifdef __wasm__
EXPORT(bpfvm_run) int32_t bpfvm_run(uint32_t handle, uint64_t ctx, uint64_t ctx_len) { return bpfvm_run_program(handle, ctx, ctx_len); }
#endif
