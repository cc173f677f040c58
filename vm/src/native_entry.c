/* Native entry points: runs under one lock (hooks on any thread run programs one after
 * another), with the context copied in from host memory, with bpf_override_return. */
#define _GNU_SOURCE /* PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP */
#include "bpfvm_internal.h"
#ifndef __wasm__
#include <string.h>
/* One program runs at a time (the VM stack and g_action are shared). Recursive, so a run
 * started from inside a helper is refused by g_running as in the wasm build, not deadlocked. */
pthread_mutex_t bpfvm_run_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
/* Runs this thread is inside (helpers, JS ones included, run within them). A syscall hook
 * that meets a syscall a helper made must not run programs: the VM would refuse the nested
 * run as a fault, and reporting that fault entered JS from inside the helper (a JS-path
 * uprobe beside a getpid program killed the target: V8's "Invoke in
 * DisallowJavascriptExecutionScope"). */
static __thread int32_t t_in_run;

int32_t bpfvm_thread_in_run(void) { return t_in_run; }

int32_t bpfvm_run(uint32_t handle, uint64_t ctx, uint64_t ctx_len) {
  pthread_mutex_lock(&bpfvm_run_lock);
  t_in_run++;
  int32_t st = bpfvm_run_program(handle, ctx, ctx_len);
  t_in_run--;
  pthread_mutex_unlock(&bpfvm_run_lock);
  return st;
}


int32_t bpfvm_run_with_ctx(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len) {
  int32_t st;
  pthread_mutex_lock(&bpfvm_run_lock);
  if (!vm_writable(ctx, ctx_len)) {
    bpfvm_set_fault(0, ctx);
    st = BPFVM_FAULT_MEMORY;
  } else {
    memcpy(HP(ctx), src, ctx_len);
    if (handle < BPFVM_MAX_PROGS) bpfvm_native_hits_tab[handle]++;
    t_in_run++;
    st = bpfvm_run_program(handle, ctx, ctx_len);
    t_in_run--;
  }
  pthread_mutex_unlock(&bpfvm_run_lock);
  return st;
}

uint64_t bpfvm_native_hits(uint32_t handle) { return handle < BPFVM_MAX_PROGS ? bpfvm_native_hits_tab[handle] : 0; }

/* bpfvm_run_with_ctx where bpf_override_return is allowed: it stores {1, value} at `override`. */
int32_t bpfvm_run_with_override(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override) {
  bpfvm_override = override;
  int32_t st = bpfvm_run_with_ctx(handle, ctx, src, ctx_len);
  bpfvm_override = 0;
  return st;
}
#endif
