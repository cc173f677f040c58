/* The inline hook engine's hit path, called from the entry stub of each hooked address
 * (a site, probeStub.ts) and from the return stub.
 *
 * Built freestanding into a flat, position-independent blob with no relocations
 * (Makefile) that each agent copies into immortal pages: a thread preempted anywhere in
 * here resumes in valid code, whatever happened to the session that wrote it. It calls
 * nothing of libc; everything it reaches goes through the probe block, and a probe block's
 * session-owned pointers (the VM's run function, the fork guard, the fault callback) are
 * only followed between counting in (inflight) and seeing `active` set, which detach clears
 * before it waits for inflight to drop to 0 and unloads.
 *
 * Per-thread state (recursion guard, uretprobe shadow stack) is process-wide: one table in
 * immortal pages shared by every session, keyed by the thread pointer (%fs:0). */

#include <stdint.h>

typedef int32_t (*run_fn)(uint32_t handle, uint64_t ctx, const void *src, uint64_t len);
typedef int32_t (*run_override_fn)(uint32_t handle, uint64_t ctx, const void *src, uint64_t len, int64_t *override);
typedef void (*fault_fn)(uint32_t handle, int32_t status);
typedef int32_t (*js_fn)(uint64_t probe, uint64_t *regs); /* returns 1 when it overrode (value in regs[R_AX]) */

#define PT_REGS_WORDS 21
enum { R_R15, R_R14, R_R13, R_R12, R_BP, R_BX, R_R11, R_R10, R_R9, R_R8, R_AX, R_CX, R_DX, R_SI, R_DI, R_ORIG_AX, R_IP, R_CS, R_FLAGS, R_SP, R_SS };

/* Kinds of probe (probe.kind). */
#define KIND_ENTRY 0
#define KIND_RETURN 1
#define KIND_OVERRIDE 2
#define KIND_UNWIND 3 /* at an unwinder entry point: put hijacked returns back (unwind_restore) */
/* probe.flags */
#define FLAG_JS 1 /* the program runs in JS: js() instead of run() */

struct probe {
  volatile int32_t active;     /* 0 */
  volatile int32_t inflight;   /* 4 */
  uint32_t handle;             /* 8 */
  uint32_t kind;               /* 12 */
  run_fn run;                  /* 16 */
  run_override_fn run_override;/* 24 */
  uint64_t ctx_addr;           /* 32 */
  volatile uint8_t *enabled;   /* 40: one byte per program handle */
  volatile int32_t *fork_state;/* 48: forkGuard.ts: [0] forked child, [1] forks in progress, [2..17] their tids */
  fault_fn fault;              /* 56 */
  struct threads *threads;     /* 64 */
  uint64_t func_ip;            /* 72 */
  js_fn js;                    /* 80 */
  uint64_t hits;               /* 88: runs started (diagnostics) */
  uint64_t return_stub;        /* 96: uretprobe: where a hijacked return goes */
  uint32_t flags;              /* 104 */
  uint32_t skipped;            /* 108: hits skipped (recursion, full shadow stack, fork) */
  uint32_t unwound;            /* 112: returns given back before an unwind (the program missed them) */
  uint32_t pad;
};

#define SHADOW_DEPTH 64
#define THREAD_SLOTS 4096
#define PROBE_LIMIT 64 /* linear-probe steps in the thread table */

struct shadow { uint64_t ret; uint64_t slot; struct probe *p; };

struct thread_state {
  volatile uint64_t tp;        /* owner's thread pointer, 0 = free */
  int32_t busy;                /* inside a program run on this thread: hooks it hits are skipped */
  int32_t depth;
  struct shadow stack[SHADOW_DEPTH];
};

struct threads {
  uint32_t version;
  uint32_t full;               /* lookups that found no slot */
  struct thread_state slot[THREAD_SLOTS];
};

/* A hooked address: its probes in attach order. A list is never edited once published:
 * attach and detach publish a new one (old ones stay, immortal), so a thread preempted
 * while walking one finds it intact whenever it resumes. */
struct probe_list {
  uint32_t n;
  uint32_t pad;
  struct probe *p[];
};

struct site {
  struct probe_list *volatile list; /* NULL: no probe */
  struct threads *threads;
};

#define HOOKCORE_VERSION 1

static inline uint64_t thread_pointer(void) {
  uint64_t tp;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
  return tp;
}

static inline long raw_gettid(void) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "0"(186L) : "rcx", "r11", "memory");
  return r;
}

/* The calling thread's state; `claim`: take a free slot when it has none yet. */
static struct thread_state *thread_state(struct threads *t, int claim) {
  uint64_t tp = thread_pointer();
  uint64_t h = ((tp >> 6) * 0x9e3779b97f4a7c15ull) >> 52; /* 12 bits */
  for (int i = 0; i < PROBE_LIMIT; i++) {
    struct thread_state *s = &t->slot[(h + i) & (THREAD_SLOTS - 1)];
    uint64_t owner = s->tp;
    if (owner == tp) return s;
    if (owner == 0) {
      if (!claim) return 0;
      uint64_t expected = 0;
      if (__atomic_compare_exchange_n(&s->tp, &expected, tp, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return s;
      if (expected == tp) return s;
    }
  }
  __atomic_fetch_add(&t->full, 1, __ATOMIC_RELAXED);
  return 0;
}

/* Not in a forked child, nor on a thread inside fork() (forkGuard.ts): both could deadlock. */
static int fork_forbidden(const struct probe *p) {
  volatile int32_t *fs = p->fork_state;
  if (!fs) return 0;
  if (fs[0]) return 1;
  if (fs[1]) {
    long tid = raw_gettid();
    for (int i = 0; i < 16; i++)
      if (fs[2 + i] == tid) return 1;
  }
  return 0;
}

/* Runs p's program on regs if p is live. Returns 1 when an override was taken (value in regs[R_AX]). */
static int run_probe(struct probe *p, struct thread_state *ts, uint64_t *regs, int may_override) {
  int taken = 0;
  int32_t st = 0;
  __atomic_fetch_add(&p->inflight, 1, __ATOMIC_SEQ_CST); /* a full fence before reading active */
  if (p->active && !fork_forbidden(p) && p->enabled[p->handle]) {
    ts->busy = 1;
    p->hits++;
    if (p->flags & FLAG_JS) {
      if (p->js((uint64_t)p, regs) == 1 && may_override) taken = 1;
    } else if (may_override) {
      int64_t ovr[2] = {0, 0};
      st = p->run_override(p->handle, p->ctx_addr, regs, PT_REGS_WORDS * 8, ovr);
      if (ovr[0]) {
        regs[R_AX] = (uint64_t)ovr[1];
        taken = 1;
      }
    } else {
      st = p->run(p->handle, p->ctx_addr, regs, PT_REGS_WORDS * 8);
    }
    if (st != 0) p->fault(p->handle, st);
    ts->busy = 0;
  }
  __atomic_fetch_add(&p->inflight, -1, __ATOMIC_SEQ_CST);
  return taken;
}

/* A return probe's half of an entry: hijacks the return address at ret_slot (the original
 * rsp at a function entry) so that the return comes through the probe's return stub. */
static void hijack_return(struct probe *p, struct thread_state *ts, uint64_t *ret_slot) {
  /* Frames the thread has left without returning through us (longjmp, exceptions) sit
   * below this slot on the same stack, or at this very slot when the slot no longer
   * holds what that entry's hijack wrote (a new call at the same depth): drop them. An
   * entry at this slot that still holds its return stub is another return probe on the
   * same call (hijacked just before this one) and stays. */
  uint64_t slot = (uint64_t)ret_slot;
  while (ts->depth > 0) {
    struct shadow *top = &ts->stack[ts->depth - 1];
    int below = top->slot < slot && slot - top->slot < (16u << 20);
    int replaced = top->slot == slot && *ret_slot != top->p->return_stub;
    if (below || replaced) ts->depth--;
    else break;
  }
  if (ts->depth >= SHADOW_DEPTH) {
    p->skipped++;
    return;
  }
  struct shadow *e = &ts->stack[ts->depth];
  e->ret = *ret_slot;
  e->slot = slot;
  e->p = p;
  ts->depth++;
  *ret_slot = p->return_stub;
}

/* Frames within this distance of the stack pointer are on the thread's current stack. */
#define SAME_STACK (16u << 20)

/* At an unwinder's entry (_Unwind_RaiseException and co., from a C++ throw, a rethrow, a
 * landing pad's resume, pthread_cancel/pthread_exit's forced unwind) on this thread: the
 * unwinder reads return addresses off the stack to find each frame's unwind info, and our
 * return stub has none, so it would call std::terminate (or abort, for a cancel). Every
 * hijacked return above sp on this stack gets its real address back and its shadow entry
 * is dropped, as if longjmp had left it: those calls' return programs do not run (counted
 * in probe.unwound), including frames the exception will not leave. Entries below sp are
 * frames already left (dropped without a write: that memory is our own callers' now);
 * entries far from sp belong to another stack (sigaltstack) and are kept as they are.
 * Top down, so that two return probes on one call restore in the order they hijacked. */
static void unwind_restore(struct threads *t, uint64_t *ret_slot) {
  struct thread_state *ts = thread_state(t, 0);
  if (!ts || ts->depth == 0) return;
  int was_busy = ts->busy;
  ts->busy = 1; /* a signal handler's hooks on this thread keep off the stack being edited */
  uint64_t sp = (uint64_t)ret_slot;
  for (int i = ts->depth - 1; i >= 0; i--) {
    struct shadow *e = &ts->stack[i];
    if (e->slot >= sp && e->slot - sp < SAME_STACK) {
      uint64_t *slot = (uint64_t *)e->slot;
      if (*slot == e->p->return_stub) {
        *slot = e->ret;
        e->p->unwound++;
      }
      e->slot = 0;
    } else if (e->slot < sp && sp - e->slot < SAME_STACK) {
      e->slot = 0;
    }
  }
  int n = 0;
  for (int i = 0; i < ts->depth; i++)
    if (ts->stack[i].slot != 0) ts->stack[n++] = ts->stack[i];
  ts->depth = n;
  ts->busy = was_busy;
}

/* From a site's entry stub. regs: pt_regs of the hit; ret_slot: where the return address
 * is (the original rsp at a function entry). Runs every probe of the site as the kernel
 * orders a uprobe's consumers: entry programs in attach order, then the return hijacks,
 * then the overrides, the first one taken deciding (so an override never hides another
 * probe of the same function, and a return probe also sees an overridden call return).
 * Returns 1 when the stub must return regs[R_AX] to the caller instead of running the
 * function. The list is loaded once: attach and detach publish a new one, never edit. */
__attribute__((used, visibility("default"))) int hookcore_site(struct site *s, uint64_t *regs, uint64_t *ret_slot) {
  struct probe_list *l = __atomic_load_n(&s->list, __ATOMIC_ACQUIRE);
  if (!l) return 0;
  uint32_t n = l->n;
  int others = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (l->p[i]->kind == KIND_UNWIND) unwind_restore(s->threads, ret_slot);
    else others = 1;
  }
  if (!others) return 0;
  struct thread_state *ts = thread_state(s->threads, 1);
  if (!ts || ts->busy) {
    for (uint32_t i = 0; i < n; i++)
      if (l->p[i]->active) l->p[i]->skipped++;
    return 0;
  }
  for (uint32_t i = 0; i < n; i++)
    if (l->p[i]->kind == KIND_ENTRY) run_probe(l->p[i], ts, regs, 0);
  for (uint32_t i = 0; i < n; i++)
    if (l->p[i]->kind == KIND_RETURN && l->p[i]->active) hijack_return(l->p[i], ts, ret_slot);
  for (uint32_t i = 0; i < n; i++)
    if (l->p[i]->kind == KIND_OVERRIDE && run_probe(l->p[i], ts, regs, 1)) return 1;
  return 0;
}

/* From the return stub, after a hijacked return: ret_slot is where the stub keeps the
 * address it will return to; the frame's entry is found by that slot (the original rsp
 * at entry), so frames skipped by longjmp are dropped on the way. */
__attribute__((used, visibility("default"))) void hookcore_return(struct threads *t, uint64_t *regs, uint64_t *ret_slot) {
  struct thread_state *ts = thread_state(t, 1);
  uint64_t slot = (uint64_t)ret_slot;
  if (!ts || ts->depth == 0) {
    /* Cannot happen: every hijack pushed an entry on this thread's slot. */
    __builtin_trap();
  }
  int i = ts->depth - 1;
  while (i > 0 && ts->stack[i].slot != slot) i--;
  struct shadow e = ts->stack[i];
  ts->depth = i;
  *ret_slot = e.ret;
  regs[R_IP] = e.ret; /* as a kernel uretprobe reports it */
  if (e.p->active && !ts->busy) run_probe(e.p, ts, regs, 0);
}

/* Offsets and sizes the TypeScript side mirrors; checked when the blob is loaded. */
__attribute__((used, visibility("default"))) void hookcore_layout(uint32_t *out) {
  out[0] = HOOKCORE_VERSION;
  out[1] = sizeof(struct probe);
  out[2] = __builtin_offsetof(struct probe, active);
  out[3] = __builtin_offsetof(struct probe, inflight);
  out[4] = __builtin_offsetof(struct probe, run);
  out[5] = __builtin_offsetof(struct probe, fault);
  out[6] = __builtin_offsetof(struct probe, threads);
  out[7] = __builtin_offsetof(struct probe, return_stub);
  out[8] = __builtin_offsetof(struct probe, flags);
  out[9] = sizeof(struct threads);
  out[10] = PT_REGS_WORDS * 8;
  out[11] = __builtin_offsetof(struct probe, js);
  out[12] = __builtin_offsetof(struct probe, skipped);
  out[13] = __builtin_offsetof(struct probe, hits);
  out[14] = __builtin_offsetof(struct probe, fork_state);
  out[15] = __builtin_offsetof(struct probe, kind);
  out[16] = sizeof(struct site);
  out[17] = __builtin_offsetof(struct site, list);
  out[18] = __builtin_offsetof(struct site, threads);
  out[19] = __builtin_offsetof(struct probe_list, p);
  out[20] = __builtin_offsetof(struct probe, unwound);
}
