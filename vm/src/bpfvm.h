/* bpfvm: an RFC 9669 eBPF interpreter for wasm32 (freestanding) and native builds.
 *
 * Memory model: one arena [ro region][rw region] at VM address BPFVM_ARENA_VADDR.
 * A load is allowed in [ro_lo, rw_hi), a store in [rw_lo, rw_hi). In the wasm build the
 * VM address equals the linear-memory offset; natively it is an offset from a base pointer.
 * The first BPFVM_STACK_BYTES of the rw region hold the call-frame stacks.
 */
#ifndef BPFVM_H
#define BPFVM_H

#include <stdint.h>

#define BPFVM_ARENA_VADDR 0x100000u
#define BPFVM_MAX_FRAMES 8
#define BPFVM_FRAME_STACK 512
#define BPFVM_STACK_BYTES (BPFVM_MAX_FRAMES * BPFVM_FRAME_STACK)
#define BPFVM_MAX_INSNS 65536
#define BPFVM_MAX_PROGS 4096
#define BPFVM_MAX_HELPERS 4096
#define BPFVM_MAX_TAIL_CALLS 33
/* lddw src=4 (PSEUDO_FUNC) yields BPFVM_FUNC_TAG | target_pc (bpf_loop callbacks). */
#define BPFVM_MAX_ARRAY_MAPS 256
#define BPFVM_FUNC_TAG 0xbf0f000000000000ull

/* A memory range a program may reach besides its stack and context (a map's values, global
 * data). Programs get pointers into it from lddw (map value) or from helpers (map lookup,
 * ringbuf reserve); the verifier and the run-time checks keep every access inside one
 * element ([base + k * stride, + value_size)) of the region the pointer came from. */
typedef struct {
  uint64_t handle;     /* map handle programs pass to helpers (0: none) */
  uint32_t base, size; /* VM address range [base, base + size) */
  uint32_t stride;     /* distance between elements (> 0) */
  uint32_t value_size; /* bytes of each element a program may touch */
  uint32_t flags;      /* BPFVM_REGION_* */
  uint32_t reserved;
} bpfvm_region_t;
#define BPFVM_REGION_RO 1u      /* loads only (.rodata, frozen maps) */
#define BPFVM_REGION_VALUES 2u  /* its elements are program-accessible map values */
#define BPFVM_REGION_RINGBUF 4u /* ring buffer: reachable only through ringbuf_reserve records */
#define BPFVM_MAX_REGIONS 1024
#define BPFVM_CTX_RO 1u /* the context is read-only (pt_regs, tracepoint records) */
#define BPFVM_LOAD_RESOLVED 2u /* lddw src=1/2 were resolved by the loader (handle / map value address) */

enum bpfvm_status {
  BPFVM_OK = 0,
  BPFVM_FAULT_MEMORY = 1,
  BPFVM_FAULT_BUDGET = 2,
  BPFVM_FAULT_HELPER = 3,
  BPFVM_FAULT_STACK = 4,
  BPFVM_FAULT_TAIL_CALL = 5,
  BPFVM_FAULT_BAD_HANDLE = 6,
};

/* Helper actions a helper may request while it runs (checked after it returns). */
enum bpfvm_action { BPFVM_ACT_NONE = 0, BPFVM_ACT_TAIL = 1, BPFVM_ACT_EXIT = 2, BPFVM_ACT_FAULT = 3 };

/* What a run left: its status, r0, the instructions it ran and, after a fault, where (pc,
 * address, the check that failed and its region). The native build hands out copies taken
 * under the run lock; TypeScript reads the layout from bpfvm_outcome_layout. */
typedef struct {
  uint64_t result, insns, fault_addr;
  uint32_t status, fault_pc, fault_check, fault_region;
} bpfvm_outcome;
/* out[0] = sizeof(bpfvm_outcome), then the offsets of result, insns, fault_addr, status,
 * fault_pc, fault_check, fault_region. */
void bpfvm_outcome_layout(uint32_t *out);

#ifndef __wasm__
/* bpfvm_run, and a copy of what it left in `out`, under the run lock. */
int32_t bpfvm_run_out(uint32_t handle, uint64_t ctx, uint64_t ctx_len, bpfvm_outcome *out);
/* A copy of program `handle`'s last fault (a zero status when it never faulted). */
void bpfvm_prog_fault(uint32_t handle, bpfvm_outcome *out);
typedef uint64_t (*bpfvm_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
void bpfvm_set_helper_fn(uint32_t id, bpfvm_helper_fn fn);
uint8_t *bpfvm_host_ptr(uint64_t vaddr);
void bpfvm_fini(void);
/* Copies ctx_len bytes from host memory `src` to VM address `ctx` and runs the program, both
 * under the run lock, for hooks that run programs from native code on any thread. */
int32_t bpfvm_run_with_ctx(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len);
/* bpfvm_run_with_ctx where bpf_override_return stores {1, value} at `override` (int64[2]). */
int32_t bpfvm_run_with_override(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override);
/* Non-zero while the calling thread is inside a run (native build only). */
int32_t bpfvm_thread_in_run(void);
/* Runs counted by bpfvm_run_with_ctx for `handle`. */
uint64_t bpfvm_native_hits(uint32_t handle);
/* Installs the C version of helper `id` (ktime, CPU, pid/tid, uid/gid, comm,
 * probe_read_user(_str)); 0 when there is none. */
int32_t bpfvm_use_builtin_helper(uint32_t id);
/* BPF_MAP_TYPE_HASH resolved inside the VM (lookup, update, delete from programs), values
 * at VM address `values` (max * round8(value_size) bytes). See hashmap.c. */
int32_t bpfvm_register_hash_map(uint64_t handle, uint32_t key_size, uint32_t value_size, uint32_t max, uint64_t values);
int64_t bpfvm_hash_op(uint64_t handle, uint32_t op, const uint8_t *key, const uint8_t *value, uint64_t flags);
int32_t bpfvm_hash_entries(uint64_t handle, uint8_t *keys_out, uint32_t *slots_out, uint32_t max_out);
#endif

/* Shared API (exported from wasm as vm_*). */
int32_t bpfvm_init(uint32_t ro_bytes, uint32_t rw_bytes);
void bpfvm_register_helper(uint32_t id);
int32_t bpfvm_register_array_map(uint64_t handle, uint32_t base, uint32_t stride, uint32_t max);
void *bpfvm_scratch(uint32_t bytes);
int32_t bpfvm_load(const uint64_t *raw, uint32_t n_insns);
int32_t bpfvm_run(uint32_t handle, uint64_t ctx, uint64_t ctx_len);
void bpfvm_set_budget(uint64_t budget);
uint64_t bpfvm_result(void);
uint64_t bpfvm_insn_count(void);
uint32_t bpfvm_fault_pc(void);
uint64_t bpfvm_fault_addr(void);
uint32_t bpfvm_err_pc(void);
const char *bpfvm_err_msg(void);
uint32_t bpfvm_ro_lo(void);
uint32_t bpfvm_rw_lo(void);
uint32_t bpfvm_rw_hi(void);
uint32_t bpfvm_alloc_start(void);
uint32_t bpfvm_prog_count(void);
void bpfvm_request_tail_call(uint32_t handle);
void bpfvm_request_exit(uint64_t r0);
void bpfvm_request_fault(void);
int32_t bpfvm_in_helper(void);
void bpfvm_reset_after_trap(void);
/* The regions and context of the next bpfvm_load (copied); n = 0: stack and context only. */
int32_t bpfvm_set_load_env(const bpfvm_region_t *regions, uint32_t n, uint32_t ctx_size, uint32_t ctx_flags);
/* Whether the running program may touch [addr, addr + len) (helpers check their buffers
 * with it); outside a run, whether it lies in the arena (readable, or writable). */
int32_t bpfvm_accessible(uint64_t addr, uint64_t len, uint32_t write);
int32_t bpfvm_accessible32(uint32_t addr, uint32_t len, uint32_t write); /* for JavaScript: no BigInt */
/* After a memory fault: the check that failed (enum bpfvm_check in bpfvm_internal.h) and its region. */
uint32_t bpfvm_fault_check(void);
uint32_t bpfvm_fault_region(void);

#endif
