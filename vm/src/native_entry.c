/* Native entry points: runs under one lock (hooks on any thread run programs one after
 * another), with the context copied in from host memory, with bpf_override_return. */
#include "bpfvm_internal.h"
#ifndef __wasm__
#include <string.h>
/*
 * The run lock. One program runs at a time (the VM stack and g_action are shared), and map
 * operations from JS take the same lock. It is taken on every traced hit, so it is our own:
 * one compare-and-swap to take it, one exchange to give it back (a recursive pthread mutex
 * plus the thread table below took four locked operations and two libc calls). Taken
 * again by its holder (a helper's map operation inside a run) it nests; a run started
 * from inside a helper is then refused by g_running, as in the wasm build, not deadlocked.
 * Waiters spin briefly, then sleep on g_lock_seq with futex.
 *
 * Which threads are inside a run, or waiting to start one: a syscall hook asks this for
 * every syscall the target makes (bpfvm_thread_in_run), and a syscall made by a helper, or
 * by a waiter's futex wait, is ours and must run no program. Answering must itself make no
 * syscall and take no lock, and this library is dlopen()ed, so its __thread variables
 * would be dynamic TLS: a thread's first access called malloc (__tls_get_addr), whose
 * futex wait for an arena lock was hooked in turn, until the stack ran out (forker under
 * load, 1 in 30 runs under --syscalls rewrite). So the holder is known by its thread
 * pointer (the %fs base, read without a syscall), and a waiter puts its thread pointer in a
 * small table before its first futex wait and takes it out once it holds the lock. A thread
 * uses one of the THREAD_PROBES slots after its hash, so a lookup reads at most two cache
 * lines, and none while nobody waits.
 */
#define THREAD_SLOTS 1024u
#define THREAD_PROBES 16u
#define LOCK_SPINS 200
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
/* bpfvm_lock's answer when its caller already held the lock. */
#define LOCK_NESTED (-1)
/* bpfvm_lock's answer when it took the lock at once. */
#define LOCK_TAKEN (-2)
static uintptr_t g_thread_slots[THREAD_SLOTS];
/* The holder's thread pointer (0: free), the threads waiting, and the word they sleep on
 * (bumped by an unlock that saw waiters). */
static uintptr_t g_lock_owner;
static int32_t g_lock_waiters;
static int32_t g_lock_seq;

static inline uintptr_t self_thread(void) { return (uintptr_t)__builtin_thread_pointer(); }
static inline uint32_t thread_hash(uintptr_t tp) { return (uint32_t)(((tp >> 12) * 0x9E3779B97F4A7C15ull) >> 54); }

static int self_registered(uintptr_t tp) {
  uint32_t h = thread_hash(tp);
  for (uint32_t i = 0; i < THREAD_PROBES; i++)
    if (__atomic_load_n(&g_thread_slots[(h + i) % THREAD_SLOTS], __ATOMIC_ACQUIRE) == tp) return 1;
  return 0;
}

/* Puts the calling thread in the table; returns its slot. Spins without a syscall when all
 * its slots are taken: that needs 16 other threads waiting at once with colliding hashes. */
static uint32_t thread_enter(uintptr_t tp) {
  uint32_t h = thread_hash(tp);
  for (;;) {
    for (uint32_t i = 0; i < THREAD_PROBES; i++) {
      uint32_t s = (h + i) % THREAD_SLOTS;
      uintptr_t expected = 0;
      if (__atomic_compare_exchange_n(&g_thread_slots[s], &expected, tp, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return s;
    }
    __builtin_ia32_pause();
  }
}

/* A raw futex call: libc's syscall() may itself be a rewritten site. */
static void futex(int32_t *word, int op, int32_t value) {
  long ret;
  register long r10 __asm__("r10") = 0;
  __asm__ volatile("syscall" : "=a"(ret) : "0"(202L), "D"(word), "S"((long)op), "d"((long)value), "r"(r10) : "rcx", "r11", "memory");
  (void)ret;
}

static int try_take(uintptr_t tp) {
  uintptr_t expected = 0;
  return __atomic_compare_exchange_n(&g_lock_owner, &expected, tp, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

int32_t bpfvm_lock(void) {
  uintptr_t tp = self_thread();
  if (__atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == tp) return LOCK_NESTED;
  if (try_take(tp)) return LOCK_TAKEN;
  uint32_t slot = thread_enter(tp);
  __atomic_add_fetch(&g_lock_waiters, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    for (int i = 0; i < LOCK_SPINS && __atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) != 0; i++) __builtin_ia32_pause();
    int32_t seq = __atomic_load_n(&g_lock_seq, __ATOMIC_SEQ_CST);
    if (try_take(tp)) break;
    /* An unlock after the load above bumps seq first, so this returns at once. */
    futex(&g_lock_seq, FUTEX_WAIT_PRIVATE, seq);
  }
  __atomic_sub_fetch(&g_lock_waiters, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&g_thread_slots[slot], 0, __ATOMIC_RELEASE); /* the owner check answers from here on */
  return LOCK_TAKEN;
}

void bpfvm_unlock(int32_t token) {
  if (token == LOCK_NESTED) return; /* the outer take gives it back */
  /* A full barrier between freeing the lock and reading the waiters: a waiter counted
   * after this read sees the lock free when it tries again. */
  __atomic_exchange_n(&g_lock_owner, 0, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&g_lock_waiters, __ATOMIC_SEQ_CST) > 0) {
    __atomic_add_fetch(&g_lock_seq, 1, __ATOMIC_SEQ_CST);
    futex(&g_lock_seq, FUTEX_WAKE_PRIVATE, 1);
  }
}

int32_t bpfvm_thread_in_run(void) {
  uintptr_t tp = self_thread();
  if (__atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == tp) return 1;
  /* This thread's own waiting is counted before its first futex call. */
  if (__atomic_load_n(&g_lock_waiters, __ATOMIC_RELAXED) == 0) return 0;
  return self_registered(tp);
}

int32_t bpfvm_self_holds_lock(void) { return __atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == self_thread(); }

/* The run and, under the same lock, what it left (another thread's run may follow at once). */
static int32_t run_locked(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override, bpfvm_outcome *out) {
  int32_t token = bpfvm_lock();
  int64_t *outer_override = bpfvm_override;
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
  bpfvm_unlock(token);
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
  int32_t token = bpfvm_lock();
  const bpfvm_outcome *rec = bpfvm_prog_fault_record(handle);
  if (rec) *out = *rec;
  else memset(out, 0, sizeof *out);
  bpfvm_unlock(token);
}

uint64_t bpfvm_native_hits(uint32_t handle) { return handle < BPFVM_MAX_PROGS ? bpfvm_native_hits_tab[handle] : 0; }

/* bpfvm_run_with_ctx where bpf_override_return is allowed: it stores {1, value} at `override`. */
int32_t bpfvm_run_with_override(uint32_t handle, uint64_t ctx, const void *src, uint64_t ctx_len, int64_t *override) {
  return run_locked(handle, ctx, src, ctx_len, override, NULL);
}
#endif
