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
/* Helper 181 (bpf_loop) is an interpreter intrinsic; lddw src=4 (PSEUDO_FUNC) yields
 * BPFVM_FUNC_TAG | target_pc. */
#define BPFVM_HELPER_BPF_LOOP 181
/* bpf_map_lookup_elem on maps registered with vm_register_array_map is resolved in the VM. */
#define BPFVM_HELPER_MAP_LOOKUP 1
#define BPFVM_MAX_ARRAY_MAPS 256
#define BPFVM_FUNC_TAG 0xbf0f000000000000ull

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

#ifndef __wasm__
typedef uint64_t (*bpfvm_helper_fn)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
void bpfvm_set_helper_fn(uint32_t id, bpfvm_helper_fn fn);
uint8_t *bpfvm_host_ptr(uint64_t vaddr);
void vm_fini(void);
/* Copies ctx_len bytes from host memory `src` to VM address `ctx` and runs the program, both
 * under the run lock, for hooks that run programs from native code on any thread. */
int32_t vm_run_with_ctx(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len);
/* vm_run_with_ctx where bpf_override_return stores {1, value} at `override` (int64[2]). */
int32_t vm_run_with_override(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override);
/* Runs counted by vm_run_with_ctx for `handle`. */
uint64_t vm_native_hits(uint32_t handle);
/* Installs the C version of helper `id` (ktime, CPU, pid/tid, uid/gid, comm,
 * probe_read_user(_str)); 0 when there is none. */
int32_t bpfvm_use_builtin_helper(uint32_t id);
/* BPF_MAP_TYPE_HASH resolved inside the VM (lookup, update, delete from programs), values
 * at VM address `values` (max * round8(value_size) bytes). See bpfvm.c. */
int32_t vm_register_hash_map(uint64_t handle, uint32_t key_size, uint32_t value_size, uint32_t max, uint64_t values);
int64_t vm_hash_op(uint64_t handle, uint32_t op, const uint8_t *key, const uint8_t *value, uint64_t flags);
int32_t vm_hash_entries(uint64_t handle, uint8_t *keys_out, uint32_t *slots_out, uint32_t max_out);
#endif

/* Shared API (exported from wasm as vm_*). */
int32_t vm_init(uint32_t ro_bytes, uint32_t rw_bytes);
void vm_register_helper(uint32_t id);
int32_t vm_register_array_map(uint64_t handle, uint32_t base, uint32_t stride, uint32_t max);
void *vm_scratch(uint32_t bytes);
int32_t vm_load(const uint64_t *raw, uint32_t n_insns);
int32_t vm_run(uint32_t handle, uint64_t ctx, uint64_t ctx_len);
void vm_set_budget(uint64_t budget);
uint64_t vm_result(void);
uint64_t vm_insn_count(void);
uint32_t vm_fault_pc(void);
uint64_t vm_fault_addr(void);
uint32_t vm_err_pc(void);
const char *vm_err_msg(void);
uint32_t vm_ro_lo(void);
uint32_t vm_rw_lo(void);
uint32_t vm_rw_hi(void);
uint32_t vm_alloc_start(void);
uint32_t vm_prog_count(void);
void vm_request_tail_call(uint32_t handle);
void vm_request_exit(uint64_t r0);
void vm_request_fault(void);
int32_t vm_in_helper(void);
void vm_reset_after_trap(void);

#endif
