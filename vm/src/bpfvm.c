/* bpfvm core: the VM's state and lifecycle (init, fini, the arena, allocation), what a run
 * left (result, faults), helper requests, load error messages and the registries (helpers,
 * array maps). Loading is in load.c, the interpreter in interp.c, the run-time access
 * checks and helper dispatch in bpfvm_access.h; the native build adds native_entry.c
 * (locked entry points), native_helpers.c and hashmap.c.
 * Written from RFC 9669 (BPF Instruction Set Architecture). */
#ifndef __wasm__
#define _GNU_SOURCE /* PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP */
#endif
#include "bpfvm_access.h"

#ifdef __wasm__
/* Helper arguments travel through g_hargs (read lazily by the JS side, which converts only as
 * many as the helper function declares), the result through the i64 return value. */
uint64_t g_hargs[5];
EXPORT(bpfvm_helper_args) uint64_t *bpfvm_helper_args(void) { return g_hargs; }
extern unsigned char __heap_base;
#else
#include <stdlib.h>
#include <string.h>
uint8_t *bpfvm_host_base; /* host pointer of VM address 0 */
static uint8_t *g_arena;
bpfvm_helper_fn g_helper_fns[BPFVM_MAX_HELPERS];
uint64_t bpfvm_native_hits_tab[BPFVM_MAX_PROGS];
void bpfvm_set_helper_fn(uint32_t id, bpfvm_helper_fn fn) {
  if (id < BPFVM_MAX_HELPERS) g_helper_fns[id] = fn;
}
uint8_t *bpfvm_host_ptr(uint64_t vaddr) { return HP(vaddr); }
#endif

static void init_map_args(void);

/* ---------------------------------------------------------------- state */
uint64_t g_ro_lo, g_rw_lo, g_rw_hi;
uint32_t g_narray_maps; /* array maps whose lookups the VM inlines (see array_lookup) */
uint64_t g_budget = 1000000;
/* What the last run left. In the native build runs take bpfvm_run_lock, and callers get a
 * copy taken under it (bpfvm_run_out, bpfvm_prog_fault): never __thread, whose first use on
 * a thread mallocs in a dlopen()ed library (see native_entry.c). */
uint64_t g_result, g_insns, g_fault_addr;
uint32_t g_fault_pc;
static uint32_t g_err_pc;
static char g_err_msg[160];
prog_t g_progs[BPFVM_MAX_PROGS];
uint32_t g_nprogs;
uint8_t g_helper_ok[BPFVM_MAX_HELPERS];
volatile int32_t g_action;
volatile uint64_t g_action_val;
int32_t g_running, g_in_helper;
static void *g_scratch;
static uint32_t g_scratch_size;
run_state g_run; /* the run in progress: what its helpers may touch (bpfvm_accessible) */
uint32_t g_fault_check, g_fault_region;
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
uintptr_t bpfvm_alloc_mark(void) { return g_brk; }
void bpfvm_alloc_rewind(uintptr_t mark) { g_brk = mark; }
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

/* Ownership itself is decided in bpfvm_access.h, which the interpreter inlines. */
EXPORT(bpfvm_accessible) int32_t bpfvm_accessible(uint64_t addr, uint64_t len, uint32_t write) {
  return accessible(addr, len, write);
}
EXPORT(bpfvm_accessible32) int32_t bpfvm_accessible32(uint32_t addr, uint32_t len, uint32_t write) { return bpfvm_accessible(addr, len, write); }
EXPORT(bpfvm_fault_check) uint32_t bpfvm_fault_check(void) { return g_fault_check; }
EXPORT(bpfvm_fault_region) uint32_t bpfvm_fault_region(void) { return g_fault_region; }

/* ---------------------------------------------------------------- registries */
array_map_t g_array_maps[BPFVM_MAX_ARRAY_MAPS];

EXPORT(bpfvm_register_array_map)
int32_t bpfvm_register_array_map(uint64_t handle, uint32_t base, uint32_t stride, uint32_t max) {
  if (g_narray_maps >= BPFVM_MAX_ARRAY_MAPS) return -1;
  if ((uint64_t)base < g_ro_lo || (uint64_t)base + (uint64_t)stride * max > g_rw_hi) return -2;
  g_array_maps[g_narray_maps++] = (array_map_t){handle, base, stride, max};
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
uint8_t g_map_arg[BPFVM_MAX_HELPERS];
static void init_map_args(void) {
  for (uint32_t i = 0; i < BPFVM_NHELPER_INFO; i++)
    for (uint32_t a = 0; a < 5; a++)
      if (BPFVM_HELPER_INFO[i].arg[a] == BPFVM_ARG_MAP && BPFVM_HELPER_INFO[i].id < BPFVM_MAX_HELPERS) {
        g_map_arg[BPFVM_HELPER_INFO[i].id] = (uint8_t)(a + 1);
        break;
      }
}
