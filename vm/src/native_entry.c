/* Native entry points: runs under one lock (hooks on any thread run programs one after
 * another), with the context copied in from host memory, with bpf_override_return. */
#define _GNU_SOURCE /* PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP */
#include "bpfvm_internal.h"
#ifndef __wasm__
#include <string.h>
/* One program runs at a time (the VM stack and g_action are shared). Recursive, so a run
 * started from inside a helper is refused by g_running as in the wasm build, not deadlocked. */
pthread_mutex_t bpfvm_run_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

/*
 * Which threads are inside a run, or waiting for the run lock to start one.
 *
 * A syscall hook asks this for every syscall the target makes (bpfvm_thread_in_run): a
 * syscall made by a helper, or by pthread_mutex_lock's futex wait for the run lock, is ours
 * and must run no program. Answering must itself make no syscall and take no lock, and this
 * library is dlopen()ed, so its __thread variables were dynamic TLS: a thread's first access
 * called malloc (__tls_get_addr). malloc waiting for an arena lock made a futex syscall,
 * whose hook asked again, and so on until the stack ran out (forker under load, 1 in 30 runs
 * under --syscalls rewrite), or deadlocked when the thread held that arena lock itself.
 *
 * So: a small table of thread pointers (the %fs base, no syscall to read), filled before
 * the lock is taken and cleared after it is released. A thread uses one of the
 * THREAD_PROBES slots after its hash, so a lookup reads at most two cache lines.
 */
#define THREAD_SLOTS 1024u
#define THREAD_PROBES 16u
static uintptr_t g_thread_slots[THREAD_SLOTS];
/* The thread holding the run lock for a run or a map operation (0: none). */
static uintptr_t g_lock_owner;

static inline uintptr_t self_thread(void) { return (uintptr_t)__builtin_thread_pointer(); }
static inline uint32_t thread_hash(uintptr_t tp) { return (uint32_t)(((tp >> 12) * 0x9E3779B97F4A7C15ull) >> 54); }

static int self_registered(uintptr_t tp) {
  uint32_t h = thread_hash(tp);
  for (uint32_t i = 0; i < THREAD_PROBES; i++)
    if (__atomic_load_n(&g_thread_slots[(h + i) % THREAD_SLOTS], __ATOMIC_ACQUIRE) == tp) return 1;
  return 0;
}

/* Marks the calling thread; returns its slot, or -1 when an outer entry (a helper's nested
 * run or map operation) already holds one. Spins without a syscall when all its slots are
 * taken: that needs 16 other threads at once at the lock with colliding hashes. */
static int32_t thread_enter(void) {
  uintptr_t tp = self_thread();
  if (self_registered(tp)) return -1;
  uint32_t h = thread_hash(tp);
  for (;;) {
    for (uint32_t i = 0; i < THREAD_PROBES; i++) {
      uint32_t s = (h + i) % THREAD_SLOTS;
      uintptr_t expected = 0;
      if (__atomic_compare_exchange_n(&g_thread_slots[s], &expected, tp, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return (int32_t)s;
    }
    __builtin_ia32_pause();
  }
}

static void thread_leave(int32_t slot) {
  if (slot >= 0) __atomic_store_n(&g_thread_slots[slot], 0, __ATOMIC_RELEASE);
}

int32_t bpfvm_lock(void) {
  int32_t slot = thread_enter();
  pthread_mutex_lock(&bpfvm_run_lock);
  return slot;
}

void bpfvm_unlock(int32_t slot) {
  pthread_mutex_unlock(&bpfvm_run_lock);
  thread_leave(slot);
}

int32_t bpfvm_thread_in_run(void) { return self_registered(self_thread()); }

int32_t bpfvm_self_holds_lock(void) { return __atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == self_thread(); }

/* The run and, under the same lock, what it left (another thread's run may follow at once). */
static int32_t run_locked(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override, bpfvm_outcome *out) {
  int32_t slot = bpfvm_lock();
  uintptr_t outer_owner = g_lock_owner;
  int64_t *outer_override = bpfvm_override;
  __atomic_store_n(&g_lock_owner, self_thread(), __ATOMIC_RELAXED);
  int32_t st;
  if (src && !vm_writable(ctx, ctx_len)) {
    bpfvm_set_fault(0, ctx);
    st = BPFVM_FAULT_MEMORY;
  } else {
    if (src) {
      memcpy(HP(ctx), src, ctx_len);
      if (handle < BPFVM_MAX_PROGS) bpfvm_native_hits_tab[handle]++;
    }
    bpfvm_override = override;
    st = bpfvm_run_program(handle, ctx, ctx_len);
  }
  if (st != 0) bpfvm_record_fault(handle, st);
  if (out) bpfvm_take_outcome(out, st);
  bpfvm_override = outer_override;
  __atomic_store_n(&g_lock_owner, outer_owner, __ATOMIC_RELAXED);
  bpfvm_unlock(slot);
  return st;
}

int32_t bpfvm_run(uint32_t handle, uint64_t ctx, uint64_t ctx_len) { return run_locked(handle, ctx, NULL, ctx_len, NULL, NULL); }

int32_t bpfvm_run_out(uint32_t handle, uint64_t ctx, uint64_t ctx_len, bpfvm_outcome *out) {
  return run_locked(handle, ctx, NULL, ctx_len, NULL, out);
}

int32_t bpfvm_run_with_ctx(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len) {
  return run_locked(handle, ctx, src, ctx_len, NULL, NULL);
}

void bpfvm_prog_fault(uint32_t handle, bpfvm_outcome *out) {
  int32_t slot = bpfvm_lock();
  const bpfvm_outcome *rec = bpfvm_prog_fault_record(handle);
  if (rec) *out = *rec;
  else memset(out, 0, sizeof *out);
  bpfvm_unlock(slot);
}

uint64_t bpfvm_native_hits(uint32_t handle) { return handle < BPFVM_MAX_PROGS ? bpfvm_native_hits_tab[handle] : 0; }

/* bpfvm_run_with_ctx where bpf_override_return is allowed: it stores {1, value} at `override`. */
int32_t bpfvm_run_with_override(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override) {
  return run_locked(handle, ctx, src, ctx_len, override, NULL);
}
#endif
