/* bpfvm core: state, load-time validation, pre-decoding and the interpreter. The native
 * build adds native_entry.c (locked entry points), native_helpers.c and hashmap.c.
 * Written from RFC 9669 (BPF Instruction Set Architecture). */
#ifndef __wasm__
#define _GNU_SOURCE /* PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP */
#endif
#include "bpfvm_internal.h"

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name)))
/* Helper arguments travel through g_hargs (read lazily by the JS side, which converts only as
 * many as the helper function declares), the result through the i64 return value. */
__attribute__((import_module("env"), import_name("call_helper")))
extern uint64_t env_call_helper(uint32_t id);
static uint64_t g_hargs[5];
EXPORT(bpfvm_helper_args) uint64_t *bpfvm_helper_args(void) { return g_hargs; }
extern unsigned char __heap_base;
#else
#include <stdlib.h>
#include <string.h>
#define EXPORT(name)
uint8_t *bpfvm_host_base; /* host pointer of VM address 0 */
static uint8_t *g_arena;
static bpfvm_helper_fn g_helper_fns[BPFVM_MAX_HELPERS];
uint64_t bpfvm_native_hits_tab[BPFVM_MAX_PROGS];
void bpfvm_set_helper_fn(uint32_t id, bpfvm_helper_fn fn) {
  if (id < BPFVM_MAX_HELPERS) g_helper_fns[id] = fn;
}
uint8_t *bpfvm_host_ptr(uint64_t vaddr) { return HP(vaddr); }
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

static void init_map_args(void);

/* ---------------------------------------------------------------- state */
static uint64_t g_ro_lo, g_rw_lo, g_rw_hi;
static uint32_t g_narray_maps; /* array maps whose lookups the VM inlines (see array_lookup) */
static uint64_t g_budget = 1000000;
/* What the last run left. In the native build runs take bpfvm_run_lock, and callers get a
 * copy taken under it (bpfvm_run_out, bpfvm_prog_fault): never __thread, whose first use on
 * a thread mallocs in a dlopen()ed library (see native_entry.c). */
static uint64_t g_result, g_insns, g_fault_addr;
static uint32_t g_fault_pc;
static uint32_t g_err_pc;
static char g_err_msg[160];
static prog_t g_progs[BPFVM_MAX_PROGS];
static uint32_t g_nprogs;
static uint8_t g_helper_ok[BPFVM_MAX_HELPERS];
static volatile int32_t g_action;
static volatile uint64_t g_action_val;
static int32_t g_running, g_in_helper;
static void *g_scratch;
static uint32_t g_scratch_size;
/* The regions and context of the next bpfvm_load (bpfvm_set_load_env). */
static bpfvm_region_t g_env_regions[BPFVM_MAX_REGIONS];
static uint32_t g_env_nregions, g_env_ctx_size, g_env_ctx_flags;
/* The run in progress: what its helpers may touch (bpfvm_accessible). */
typedef struct {
  const prog_t *prog;
  uint64_t ctx, ctx_len, fp;
  uint64_t rec, rec_len; /* the ringbuf record the current helper call was given (verifier) */
} run_state;
static run_state g_run;
static uint32_t g_fault_check, g_fault_region;
/* Each program's last fault, for a fault reported after its run's lock was released (native hooks). */
static bpfvm_outcome g_prog_faults[BPFVM_MAX_PROGS];

/* ---------------------------------------------------------------- platform allocation */
#ifdef __wasm__
static uintptr_t g_brk;
static void *sys_alloc(uint32_t bytes) {
  uintptr_t p = (g_brk + 15) & ~(uintptr_t)15;
  uintptr_t end = p + bytes;
  uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
  if (end > have) {
    uintptr_t pages = (end - have + 65535u) / 65536u;
    if (__builtin_wasm_memory_grow(0, pages) == (uintptr_t)-1) return 0;
  }
  g_brk = end;
  __builtin_memset((void *)p, 0, bytes);
  return (void *)p;
}
static void sys_free(void *p) { (void)p; }
#else
static void *sys_alloc(uint32_t bytes) { return calloc(1, bytes ? bytes : 1); }
static void sys_free(void *p) { free(p); }
#endif
void *bpfvm_sys_alloc(uint32_t bytes) { return sys_alloc(bytes); }
void bpfvm_sys_free(void *p) { if (p) sys_free(p); }

EXPORT(bpfvm_init) int32_t bpfvm_init(uint32_t ro_bytes, uint32_t rw_bytes) {
  ro_bytes = (ro_bytes + 4095u) & ~4095u;
  rw_bytes = (rw_bytes + 4095u) & ~4095u;
  if (rw_bytes < BPFVM_STACK_BYTES + 4096u) rw_bytes = BPFVM_STACK_BYTES + 4096u;
  if (ro_bytes < 4096u) ro_bytes = 4096u;
  g_ro_lo = BPFVM_ARENA_VADDR;
  g_rw_lo = g_ro_lo + ro_bytes;
  g_rw_hi = g_rw_lo + rw_bytes;
#ifdef __wasm__
  if ((uintptr_t)&__heap_base > BPFVM_ARENA_VADDR) return -1;
  if (g_brk) return -2; /* once per instance */
  g_brk = BPFVM_ARENA_VADDR;
  if (!sys_alloc(ro_bytes + rw_bytes)) return -3;
#else
  for (uint32_t i = 0; i < g_nprogs; i++) sys_free(g_progs[i].code), sys_free(g_progs[i].regions);
  g_nprogs = 0;
  free(g_arena);
  g_arena = calloc(1, (size_t)ro_bytes + rw_bytes);
  if (!g_arena) return -3;
  bpfvm_host_base = g_arena - BPFVM_ARENA_VADDR;
  memset(g_helper_ok, 0, sizeof g_helper_ok);
  memset(bpfvm_native_hits_tab, 0, sizeof bpfvm_native_hits_tab);
  memset(g_prog_faults, 0, sizeof g_prog_faults);
  bpfvm_hash_maps_free();
#endif
  g_running = 0;
  g_action = 0;
  g_narray_maps = 0;
  init_map_args();
  return 0;
}

EXPORT(bpfvm_register_helper) void bpfvm_register_helper(uint32_t id) {
  if (id < BPFVM_MAX_HELPERS) g_helper_ok[id] = 1;
}

#ifndef __wasm__
/* Frees everything bpfvm_init and bpfvm_load allocated, so a host that unloads the native build
 * (the Frida agent at detach) leaves nothing of the VM behind in the target. */
void bpfvm_fini(void) {
  bpfvm_hash_maps_free();
  for (uint32_t i = 0; i < g_nprogs; i++) sys_free(g_progs[i].code), sys_free(g_progs[i].regions);
  g_nprogs = 0;
  free(g_arena);
  g_arena = 0;
  bpfvm_host_base = 0;
  sys_free(g_scratch);
  g_scratch = 0;
  g_scratch_size = 0;
}
#endif

EXPORT(bpfvm_scratch) void *bpfvm_scratch(uint32_t bytes) {
  if (bytes > g_scratch_size) {
    sys_free(g_scratch);
    g_scratch = sys_alloc(bytes);
    g_scratch_size = g_scratch ? bytes : 0;
  }
  return g_scratch;
}

EXPORT(bpfvm_set_budget) void bpfvm_set_budget(uint64_t budget) { g_budget = budget; }
EXPORT(bpfvm_result) uint64_t bpfvm_result(void) { return g_result; }
EXPORT(bpfvm_insn_count) uint64_t bpfvm_insn_count(void) { return g_insns; }
EXPORT(bpfvm_fault_pc) uint32_t bpfvm_fault_pc(void) { return g_fault_pc; }
EXPORT(bpfvm_fault_addr) uint64_t bpfvm_fault_addr(void) { return g_fault_addr; }
void bpfvm_take_outcome(bpfvm_outcome *out, int32_t status) {
  out->result = g_result;
  out->insns = g_insns;
  out->fault_addr = g_fault_addr;
  out->status = (uint32_t)status;
  out->fault_pc = g_fault_pc;
  out->fault_check = g_fault_check;
  out->fault_region = g_fault_region;
}
void bpfvm_record_fault(uint32_t handle, int32_t status) {
  if (handle < BPFVM_MAX_PROGS) bpfvm_take_outcome(&g_prog_faults[handle], status);
}
const bpfvm_outcome *bpfvm_prog_fault_record(uint32_t handle) { return handle < BPFVM_MAX_PROGS ? &g_prog_faults[handle] : 0; }
EXPORT(bpfvm_outcome_layout) void bpfvm_outcome_layout(uint32_t *out) {
  out[0] = sizeof(bpfvm_outcome);
  out[1] = __builtin_offsetof(bpfvm_outcome, result);
  out[2] = __builtin_offsetof(bpfvm_outcome, insns);
  out[3] = __builtin_offsetof(bpfvm_outcome, fault_addr);
  out[4] = __builtin_offsetof(bpfvm_outcome, status);
  out[5] = __builtin_offsetof(bpfvm_outcome, fault_pc);
  out[6] = __builtin_offsetof(bpfvm_outcome, fault_check);
  out[7] = __builtin_offsetof(bpfvm_outcome, fault_region);
}
void bpfvm_set_fault(uint32_t pc, uint64_t addr) {
  g_fault_pc = pc;
  g_fault_addr = addr;
}
EXPORT(bpfvm_err_pc) uint32_t bpfvm_err_pc(void) { return g_err_pc; }
EXPORT(bpfvm_err_msg) const char *bpfvm_err_msg(void) { return g_err_msg; }
EXPORT(bpfvm_ro_lo) uint32_t bpfvm_ro_lo(void) { return (uint32_t)g_ro_lo; }
EXPORT(bpfvm_rw_lo) uint32_t bpfvm_rw_lo(void) { return (uint32_t)g_rw_lo; }
EXPORT(bpfvm_rw_hi) uint32_t bpfvm_rw_hi(void) { return (uint32_t)g_rw_hi; }
EXPORT(bpfvm_alloc_start) uint32_t bpfvm_alloc_start(void) { return (uint32_t)g_rw_lo + BPFVM_STACK_BYTES; }
EXPORT(bpfvm_prog_count) uint32_t bpfvm_prog_count(void) { return g_nprogs; }
EXPORT(bpfvm_request_tail_call) void bpfvm_request_tail_call(uint32_t handle) {
  g_action = BPFVM_ACT_TAIL;
  g_action_val = handle;
}
EXPORT(bpfvm_request_exit) void bpfvm_request_exit(uint64_t r0) {
  g_action = BPFVM_ACT_EXIT;
  g_action_val = r0;
}
EXPORT(bpfvm_request_fault) void bpfvm_request_fault(void) {
  g_action = BPFVM_ACT_FAULT;
  g_action_val = 0;
}
EXPORT(bpfvm_in_helper) int32_t bpfvm_in_helper(void) { return g_in_helper; }
EXPORT(bpfvm_reset_after_trap) void bpfvm_reset_after_trap(void) {
  g_running = 0;
  g_in_helper = 0;
  g_action = 0;
}

/* ---------------------------------------------------------------- load-time errors */
static uint32_t g_err_len;
static void msg_cat(uint32_t *n, const char *s) {
  while (*s && *n + 1 < sizeof g_err_msg) g_err_msg[(*n)++] = *s++;
  g_err_msg[*n] = 0;
}
static void msg_num(uint32_t *n, uint64_t v, int hex) {
  char buf[24];
  int i = 0;
  if (hex) msg_cat(n, "0x");
  do {
    uint32_t d = (uint32_t)(hex ? v % 16 : v % 10);
    buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v = hex ? v / 16 : v / 10;
  } while (v);
  if (hex && i < 2) buf[i++] = '0';
  char out[24];
  for (int j = 0; j < i; j++) out[j] = buf[i - 1 - j];
  out[i] = 0;
  msg_cat(n, out);
}
static int32_t load_error(uint32_t pc, const char *a, int has_num, uint64_t num, int hex, const char *b) {
  uint32_t n = 0;
  g_err_pc = pc;
  g_err_msg[0] = 0;
  msg_cat(&n, a);
  if (has_num) msg_num(&n, num, hex);
  if (b) msg_cat(&n, b);
  g_err_len = n;
  return -1;
}
int32_t bpfvm_load_error(uint32_t pc, const char *a, int has_num, uint64_t num, int hex, const char *b) {
  return load_error(pc, a, has_num, num, hex, b);
}
void bpfvm_msg_cat(const char *s) { msg_cat(&g_err_len, s); }
void bpfvm_msg_num(int64_t v) {
  if (v < 0) msg_cat(&g_err_len, "-");
  msg_num(&g_err_len, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 0);
}
#define FAIL(msg) return load_error(pc, msg, 0, 0, 0, 0)
#define FAILN(msg, v, hex, tail) return load_error(pc, msg, 1, (uint64_t)(v), hex, tail)

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
  if (dst > 10) return load_error(pc, "invalid destination register r", 1, dst, 0, 0);
  if (dst == 10) return load_error(pc, "write to read-only register r10", 0, 0, 0, 0);
  return 0;
}

EXPORT(bpfvm_load) int32_t bpfvm_load(const uint64_t *raw, uint32_t n) {
  uint32_t pc = 0;
  if (g_nprogs >= BPFVM_MAX_PROGS) FAIL("too many programs loaded");
  if (n == 0) FAIL("empty program");
  if (n > BPFVM_MAX_INSNS) FAILN("program too large (limit ", BPFVM_MAX_INSNS, 0, " instructions)");
  dinsn *code = sys_alloc(n * (uint32_t)sizeof(dinsn));
  bpfvm_region_t *regions = g_env_nregions ? sys_alloc(g_env_nregions * (uint32_t)sizeof(bpfvm_region_t)) : 0;
#ifdef __wasm__
  /* Everything allocated after this point is temporary (decoding, the verifier's states):
   * the bump allocator is rewound to here at the end. */
  uintptr_t temp_mark = g_brk;
#endif
  uint8_t *is_second = sys_alloc(n);
  if (!code || !is_second || (g_env_nregions && !regions)) FAIL("out of memory");
  int32_t rc = -1;
#define BAD(...) do { rc = load_error(pc, __VA_ARGS__); goto out; } while (0)
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
  sys_free(is_second);
#ifdef __wasm__
  g_brk = temp_mark;
#endif
  return rc;
out:
  g_env_nregions = g_env_ctx_size = g_env_ctx_flags = 0;
  sys_free(is_second);
  sys_free(code);
  sys_free(regions);
#ifdef __wasm__
  g_brk = temp_mark;
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

/* Whether [a, a + len) lies inside the one region the program owns that pointer `base`
 * points into (a == base for helper buffers): a live stack frame (the current one or a
 * caller's), the context, or one element of a value region. A pointer one past a region's
 * end with a negative offset (r10 - 8) belongs to that region. */
static int owned(const prog_t *p, uint64_t base, uint64_t a, uint64_t len, int write, uint64_t fp, uint64_t ctx, uint64_t ctx_len) {
  uint64_t stack_top = g_rw_lo + BPFVM_STACK_BYTES, lo = fp - BPFVM_FRAME_STACK;
  uint64_t probe = a < base ? base - 1 : base;
  if (probe >= lo && probe < stack_top) {
    uint64_t frame = lo + (probe - lo) / BPFVM_FRAME_STACK * BPFVM_FRAME_STACK;
    return a >= frame && a - frame <= BPFVM_FRAME_STACK && len <= BPFVM_FRAME_STACK - (a - frame);
  }
  if (ctx_len && probe >= ctx && probe - ctx < ctx_len)
    return a >= ctx && a - ctx <= ctx_len && len <= ctx_len - (a - ctx) && (!write || !(p->ctx_flags & BPFVM_CTX_RO));
  for (int pass = 0; pass < 2; pass++) {
    uint64_t q = pass ? probe : base;
    if (pass && q == base) break;
    for (uint32_t i = 0; i < p->nregions; i++) {
      const bpfvm_region_t *r = &p->regions[i];
      if (!(r->flags & BPFVM_REGION_VALUES) || q < r->base || q - r->base >= r->size) continue;
      if (write && (r->flags & BPFVM_REGION_RO)) return 0;
      uint64_t elem = r->base + (q - r->base) / r->stride * r->stride;
      return a >= elem && a - elem <= r->value_size && len <= r->value_size - (a - elem);
    }
  }
  return 0;
}

/* Whether a helper of the run in progress is asking: another thread's question (outside
 * any run) is about the arena, not about that run's regions. */
#ifdef __wasm__
#define IN_OWN_HELPER() (g_running && g_in_helper)
#else
#define IN_OWN_HELPER() (g_running && g_in_helper && bpfvm_self_holds_lock())
#endif

EXPORT(bpfvm_accessible) int32_t bpfvm_accessible(uint64_t addr, uint64_t len, uint32_t write) {
  const int own = IN_OWN_HELPER();
  if (own && g_run.rec_len && addr >= g_run.rec && addr - g_run.rec <= g_run.rec_len && len <= g_run.rec_len - (addr - g_run.rec))
    return 1;
  if (own && g_run.prog) return owned(g_run.prog, addr, addr, len, (int)write, g_run.fp, g_run.ctx, g_run.ctx_len);
  uint64_t lo = write ? g_rw_lo : g_ro_lo;
  return addr >= lo && addr <= g_rw_hi && len <= g_rw_hi - addr;
}
EXPORT(bpfvm_accessible32) int32_t bpfvm_accessible32(uint32_t addr, uint32_t len, uint32_t write) { return bpfvm_accessible(addr, len, write); }
EXPORT(bpfvm_fault_check) uint32_t bpfvm_fault_check(void) { return g_fault_check; }
EXPORT(bpfvm_fault_region) uint32_t bpfvm_fault_region(void) { return g_fault_region; }

/* Whether map `handle` belongs to the running program's object (always, for programs loaded
 * without regions: the VM then knows no maps to tell apart). */
static int owns_handle(uint64_t handle) {
  const prog_t *p = g_run.prog;
  if (!p || !p->nregions) return 1;
  for (uint32_t i = 0; i < p->nregions; i++) if (p->regions[i].handle == handle) return 1;
  return 0;
}

/* ---------------------------------------------------------------- interpreter */
/* Array maps whose lookups the interpreter resolves itself (as the kernel's verifier
 * inlines them): value = base + index * stride, no call out to the host's helper. */
typedef struct {
  uint64_t handle;
  uint32_t base, stride, max;
} array_map_t;
static array_map_t g_array_maps[BPFVM_MAX_ARRAY_MAPS];

EXPORT(bpfvm_register_array_map)
int32_t bpfvm_register_array_map(uint64_t handle, uint32_t base, uint32_t stride, uint32_t max) {
  if (g_narray_maps >= BPFVM_MAX_ARRAY_MAPS) return -1;
  if ((uint64_t)base < g_ro_lo || (uint64_t)base + (uint64_t)stride * max > g_rw_hi) return -2;
  g_array_maps[g_narray_maps++] = (array_map_t){handle, base, stride, max};
  return 0;
}

/* 1 and *out set when `map` is a registered array map and the key is readable. */
static inline int array_lookup(uint64_t map, uint64_t key, uint64_t *out) {
  for (uint32_t i = 0; i < g_narray_maps; i++) {
    if (g_array_maps[i].handle != map) continue;
    if (!bpfvm_accessible(key, 4, 0)) return 0; /* the host helper reports the bad key */
    uint32_t idx;
    __builtin_memcpy(&idx, HP(key), 4);
    *out = idx < g_array_maps[i].max ? (uint64_t)g_array_maps[i].base + (uint64_t)idx * g_array_maps[i].stride : 0;
    return 1;
  }
  return 0;
}

#ifndef __wasm__
/* Where bpf_override_return writes {1, value} during a bpfvm_run_with_override (else the
 * host's helper runs); set and cleared under the run lock. */
int64_t *bpfvm_override;
#endif

const bpfvm_helper_info *bpfvm_helper_info_of(uint32_t id) {
  for (uint32_t i = 0; i < BPFVM_NHELPER_INFO; i++)
    if (BPFVM_HELPER_INFO[i].id == id) return &BPFVM_HELPER_INFO[i];
  return 0;
}

/* Which argument of each helper is a map handle (1-based; 0: none), from the helper table.
 * A program names only its own object's maps. */
static uint8_t g_map_arg[BPFVM_MAX_HELPERS];
static void init_map_args(void) {
  for (uint32_t i = 0; i < BPFVM_NHELPER_INFO; i++)
    for (uint32_t a = 0; a < 5; a++)
      if (BPFVM_HELPER_INFO[i].arg[a] == BPFVM_ARG_MAP && BPFVM_HELPER_INFO[i].id < BPFVM_MAX_HELPERS) {
        g_map_arg[BPFVM_HELPER_INFO[i].id] = (uint8_t)(a + 1);
        break;
      }
}
static inline uint32_t map_arg(uint32_t id) { return id < BPFVM_MAX_HELPERS ? g_map_arg[id] : 0; }

static inline uint64_t call_helper(const prog_t *cur, uint32_t id, uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  uint64_t v;
  uint32_t ma;
  /* Another object's map (or no map): the helper's error for a bad map, and nothing touched. */
  if (cur->nregions && (ma = map_arg(id)) && !owns_handle(ma == 1 ? a : b))
    return id == BPFVM_HELPER_MAP_LOOKUP_ELEM || id == BPFVM_HELPER_RINGBUF_RESERVE ? 0 : (uint64_t)-22; /* NULL / -EINVAL */
  if (id == BPFVM_HELPER_MAP_LOOKUP_ELEM && g_narray_maps && array_lookup(a, b, &v)) return v;
#ifndef __wasm__
  if (id <= BPFVM_HELPER_MAP_DELETE_ELEM && bpfvm_nhash_maps && bpfvm_hash_helper(id, a, b, c, d, &v)) return v;
  if (id == BPFVM_HELPER_OVERRIDE_RETURN && bpfvm_override) {
    bpfvm_override[0] = 1;
    bpfvm_override[1] = (int64_t)b;
    return 0;
  }
#endif
#ifdef __wasm__
  g_hargs[0] = a; g_hargs[1] = b; g_hargs[2] = c; g_hargs[3] = d; g_hargs[4] = e;
  return env_call_helper(id);
#else
  return g_helper_fns[id](a, b, c, d, e);
#endif
}

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
/* The run-time half of isolation: the check the verifier chose for this instruction. */
static inline int mem_ok(const dinsn *I, const prog_t *cur, uint64_t base, uint64_t a, uint32_t sz, int write, uint64_t fp, uint64_t ctx, uint64_t ctx_len) {
  switch (I->chk) {
  case CHK_NULL: return a >= BPFVM_ARENA_VADDR;
  case CHK_STACK: return a - (fp + (uint64_t)BPFVM_FRAME_STACK * MEM_AUX(I) - BPFVM_FRAME_STACK) <= BPFVM_FRAME_STACK - sz;
  case CHK_RECORD: return 0;
  case CHK_CTX: return ctx_len >= sz && a - ctx <= ctx_len - sz;
  case CHK_ELEM: {
    const bpfvm_region_t *r = &cur->regions[MEM_AUX(I)];
    uint64_t d = a - r->base;
    return d < r->size && d % r->stride + sz <= r->value_size;
  }
  case CHK_ARENA: {
    uint64_t lo = write ? g_rw_lo : g_ro_lo;
    return a - lo <= (g_rw_hi - lo) - sz;
  }
  default: return owned(cur, base, a, sz, write, fp, ctx, ctx_len);
  }
}
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
