/* Definitions shared by the VM's files (state in bpfvm.c, loading in load.c, the
 * interpreter in interp.c, the load-time verifier in verifier.c): the pre-decoded
 * instruction format, the per-program region table, the run-time access checks the verifier
 * attaches to each memory instruction, and the VM state they all read. */
#ifndef BPFVM_INTERNAL_H
#define BPFVM_INTERNAL_H

#include "bpfvm.h"
#include "bpfvm_helpers.h"

/* The table entry of helper `id`, or 0 (helpers outside protocol/helperTable.ts). */
const bpfvm_helper_info *bpfvm_helper_info_of(uint32_t id);

/* ---------------------------------------------------------------- internal opcodes */
#define ALU_NAMES(Y) Y(ADD) Y(SUB) Y(MUL) Y(DIV) Y(SDIV) Y(MOD) Y(SMOD) Y(OR) Y(AND) Y(LSH) Y(RSH) Y(ARSH) Y(XOR) Y(MOV)
#define JMP_NAMES(Y) Y(JEQ) Y(JNE) Y(JGT) Y(JGE) Y(JLT) Y(JLE) Y(JSET) Y(JSGT) Y(JSGE) Y(JSLT) Y(JSLE)
#define ATOMIC_NAMES(Y) Y(AADD) Y(AOR) Y(AAND) Y(AXOR) Y(FADD) Y(FOR) Y(FAND) Y(FXOR) Y(XCHG) Y(CMPXCHG)

#define E_ALU(n) OP_##n##64_IMM, OP_##n##64_REG, OP_##n##32_IMM, OP_##n##32_REG,
#define E_JMP(n) OP_##n##_IMM, OP_##n##_REG, OP_##n##32_IMM, OP_##n##32_REG,
#define E_ATOMIC(n) OP_##n##64, OP_##n##32,
enum {
  OP_INVALID = 0,
  ALU_NAMES(E_ALU) JMP_NAMES(E_JMP) ATOMIC_NAMES(E_ATOMIC)
  OP_NEG64, OP_NEG32, OP_MOVSX8_64, OP_MOVSX16_64, OP_MOVSX32_64, OP_MOVSX8_32, OP_MOVSX16_32,
  OP_ZEXT16, OP_ZEXT32, OP_NOP, OP_BSWAP16, OP_BSWAP32, OP_BSWAP64,
  OP_JA, OP_CALL, OP_CALLX, OP_CALL_LOCAL, OP_EXIT, OP_LDDW, OP_BPF_LOOP,
  OP_LDXB, OP_LDXH, OP_LDXW, OP_LDXDW, OP_LDXSB, OP_LDXSH, OP_LDXSW,
  OP_STB, OP_STH, OP_STW, OP_STDW, OP_STXB, OP_STXH, OP_STXW, OP_STXDW,
  OP_COUNT
};

/* How a memory instruction's address is checked when it runs (dinsn.chk). The verifier
 * picks the narrowest check it can: none when it proved the access in bounds. */
enum bpfvm_check {
  CHK_NONE = 0,  /* proven in bounds at load time */
  CHK_NULL = 1,  /* proven in bounds unless the pointer is NULL (a map value or ringbuf record) */
  CHK_STACK = 2, /* within frame aux above the current one (0: [r10 - 512, r10)) */
  CHK_CTX = 3,   /* within the context: [ctx, ctx + ctx_len) */
  CHK_ELEM = 4,  /* within one value of region aux (a map's values) */
  CHK_OWNED = 5, /* pointer of unknown origin: within some region this program owns */
  CHK_ARENA = 6, /* isolation compiled out (BPFVM_NO_ISOLATION, benchmarks only): whole arena */
  CHK_RECORD = 7, /* a ringbuf record at an unknown offset: its bounds are not known at run time */
};

typedef struct {
  uint8_t op, dst, src;
  uint8_t chk; /* memory instructions: enum bpfvm_check; lddw: 1 = PSEUDO_FUNC */
  int32_t off; /* memory offset, or absolute jump/call target */
  /* sign-extended (64-bit ops) or raw 32-bit (32-bit ops) immediate; lddw value. Memory
   * instructions: the low 32 bits hold the immediate, the high 32 the check's region. */
  int64_t imm;
} dinsn;

#define MEM_IMM(I) ((int64_t)(int32_t)(uint32_t)(I)->imm)
#define MEM_AUX(I) ((uint32_t)((uint64_t)(I)->imm >> 32))

typedef struct {
  dinsn *code;
  uint32_t len;
  bpfvm_region_t *regions; /* what this program may touch besides its stack and context */
  uint32_t nregions;
  uint32_t ctx_size;  /* declared context size, 0 = only known at run time */
  uint32_t ctx_flags; /* BPFVM_CTX_* */
} prog_t;

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name)))
#else
#define EXPORT(name)
#endif

int32_t bpfvm_load_error(uint32_t pc, const char *a, int has_num, uint64_t num, int hex, const char *b);
/* Appends to the load error message (after bpfvm_load_error). */
void bpfvm_msg_cat(const char *s);
void bpfvm_msg_num(int64_t v);
void *bpfvm_sys_alloc(uint32_t bytes);
void bpfvm_sys_free(void *p);

#ifdef __wasm__
/* The bump allocator's position, and rewinding it there: bpfvm_load frees its temporaries
 * (decoding, the verifier's states) at once. */
uintptr_t bpfvm_alloc_mark(void);
void bpfvm_alloc_rewind(uintptr_t mark);
#endif

/* ---------------------------------------------------------------- shared state
 * Defined in bpfvm.c; read by the loader (load.c) and the interpreter (interp.c,
 * bpfvm_access.h). Hidden: the library exports only the bpfvm_ API, and a hidden global is
 * reached directly, not through the GOT, on the interpreter's hot path. */
#define BPFVM_HIDDEN __attribute__((visibility("hidden")))

/* The arena: loads in [g_ro_lo, g_rw_hi), stores in [g_rw_lo, g_rw_hi). */
extern BPFVM_HIDDEN uint64_t g_ro_lo, g_rw_lo, g_rw_hi;
extern BPFVM_HIDDEN uint64_t g_budget;
/* What the last run left. In the native build runs take bpfvm_run_lock, and callers get a
 * copy taken under it (bpfvm_run_out, bpfvm_prog_fault). */
extern BPFVM_HIDDEN uint64_t g_result, g_insns, g_fault_addr;
extern BPFVM_HIDDEN uint32_t g_fault_pc, g_fault_check, g_fault_region;
extern BPFVM_HIDDEN prog_t g_progs[BPFVM_MAX_PROGS];
extern BPFVM_HIDDEN uint32_t g_nprogs;
extern BPFVM_HIDDEN uint8_t g_helper_ok[BPFVM_MAX_HELPERS];
/* What a helper asked for (bpfvm_request_*), checked when it returns. */
extern BPFVM_HIDDEN volatile int32_t g_action;
extern BPFVM_HIDDEN volatile uint64_t g_action_val;
extern BPFVM_HIDDEN int32_t g_running, g_in_helper;
/* The run in progress: what its helpers may touch (bpfvm_accessible). */
typedef struct {
  const prog_t *prog;
  uint64_t ctx, ctx_len, fp;
  uint64_t rec, rec_len; /* the ringbuf record the current helper call was given (verifier) */
} run_state;
extern BPFVM_HIDDEN run_state g_run;
/* Array maps whose lookups the interpreter resolves itself (as the kernel's verifier
 * inlines them): value = base + index * stride, no call out to the host's helper. */
typedef struct {
  uint64_t handle;
  uint32_t base, stride, max;
} array_map_t;
extern BPFVM_HIDDEN array_map_t g_array_maps[BPFVM_MAX_ARRAY_MAPS];
extern BPFVM_HIDDEN uint32_t g_narray_maps;
/* Which argument of each helper is a map handle (1-based; 0: none), from the helper table. */
extern BPFVM_HIDDEN uint8_t g_map_arg[BPFVM_MAX_HELPERS];
#ifdef __wasm__
extern BPFVM_HIDDEN uint64_t g_hargs[5]; /* helper arguments for the JS side (bpfvm_helper_args) */
#else
extern BPFVM_HIDDEN bpfvm_helper_fn g_helper_fns[BPFVM_MAX_HELPERS];
#endif

/* Abstract interpretation of the decoded program `p` (pointer kinds, offsets, stack slots):
 * rejects provably bad accesses (-1, message set) and sets each memory instruction's check. */
int32_t bpfvm_verify(prog_t *p);

/* ---------------------------------------------------------------- native build only */
#ifndef __wasm__
#include <pthread.h>
extern uint8_t *bpfvm_host_base; /* host pointer of VM address 0 */
#define HP(a) (bpfvm_host_base + (uintptr_t)(a))
extern uint64_t bpfvm_native_hits_tab[BPFVM_MAX_PROGS];
extern int64_t *bpfvm_override; /* where bpf_override_return writes {1, value}; under the run lock */
/* Whether the calling thread holds the run lock for a run (native_entry.c). */
int32_t bpfvm_self_holds_lock(void);
/* bpfvm_lock takes the run lock (the thread counts as in a run for bpfvm_thread_in_run
 * while it waits and holds it; nested takes by the holder nest); pass its result to
 * bpfvm_unlock. Map operations use them as runs do. */
int32_t bpfvm_lock(void);
void bpfvm_unlock(int32_t slot);
void bpfvm_take_outcome(bpfvm_outcome *out, int32_t status);
void bpfvm_record_fault(uint32_t handle, int32_t status);
const bpfvm_outcome *bpfvm_prog_fault_record(uint32_t handle);
int32_t bpfvm_run_program(uint32_t handle, uint64_t ctx, uint64_t ctx_len);
void bpfvm_set_fault(uint32_t pc, uint64_t addr);
/* hashmap.c */
extern uint32_t bpfvm_nhash_maps;
int bpfvm_hash_helper(uint32_t id, uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t *out);
void bpfvm_hash_maps_free(void);
/* Whether the running program (or, outside a run, the arena) allows [addr, addr + len). */
static inline int vm_readable(uint64_t addr, uint64_t len) { return bpfvm_accessible(addr, len, 0); }
static inline int vm_writable(uint64_t addr, uint64_t len) { return bpfvm_accessible(addr, len, 1); }
#else
#define HP(a) ((uint8_t *)(uintptr_t)(a))
#endif

#endif
