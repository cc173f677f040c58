/*
 * The handlers the rewritten syscall sites call (rewriteHandlers.ts explains the gating).
 * Built by gcc into a shared library that the agent loads as a CModule (Makefile); the
 * shared fragments come from agent/cmodules, the constants from constants.h.
 */
#include "prelude.h"
#include "constants.h"

/* Thread id tables kept by JS (see ThreadTable): count, then ids; 0 marks a free slot. */
extern volatile gint32 frida_tids[];
extern volatile gint32 app_tids[];

static int
in_table (volatile gint32 * t, gint32 tid)
{
  gint32 n = t[0];
  int i;
  for (i = 0; i < n && i < MAX_TIDS; i++)
    if (t[1 + i] == tid)
      return 1;
  return 0;
}

/* Frida's own threads: never traced. */
static int
frida_thread (gint32 tid)
{
  return in_table (frida_tids, tid);
}

/*
 * Threads known to be the target's (there at attach, or reported by the thread observer
 * as not Frida's): only these may enter JS. A thread Frida starts is cloaked only once it
 * runs; entering JS from its first syscalls, while its creator may hold the JS lock and
 * wait for it, hung the target.
 */
static int
app_thread (gint32 tid)
{
  return in_table (app_tids, tid);
}


#include "syscallThreadState.h"
/* JS reads the record as a thread state block (in_syscall unused here). */
typedef ThreadState Record;

/* Mirrors FRAME in stubs.ts. */
typedef struct {
  guint64 flags, rbp, rbx, r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax, ret, site;
} Frame;

typedef struct { guint64 ip; gint64 nr; } Site;

extern volatile guint8 cfg[];
extern Site sites[];
extern volatile gint agent_pid[];
#include "forkGuard.h"
#include "syscallNativeTable.h"
extern NativeTable native_table;
extern void js_native_fault_cb (guint32 handle, gint32 status);
extern void js_hit (Record * rec, gint32 phase);
/* stubs.ts: fn(a0, a1) with every vector and x87 register saved (the stub saves only xmm0-15). */
extern void full_save_call (gpointer a0, gint64 a1, gpointer fn);
extern gpointer pthread_self_fn (void);
extern gpointer pthread_getspecific_fn (guint32 key);
extern int pthread_setspecific_fn (guint32 key, gconstpointer value);
extern long syscall_fn (long nr);
extern int sched_getcpu (void);
extern volatile guint32 busy_key[];
/* The hook registry's cell for the inline engine's per-thread table (NULL until one exists). */
extern guint8 * volatile hook_threads_cell[];
/* [0]: exit() has begun in the agent's process (see on_exit_begin). */
extern volatile gint exiting[];
/* [0]: the thread in _exit() (see on_process_end), or 0. */
extern volatile gint end_gate[];
/* Frida's agent's code: AGENT_TEXT_RANGES [lo, hi) pairs, unused ones 0 (rewriteHandlers.ts). */
extern volatile guint64 agent_text[];

/* Every call into JS goes through full_save_call: V8 and Frida use AVX (stubs.ts). */
static void
js_native_fault (guint32 handle, gint32 status)
{
  full_save_call ((gpointer) (gsize) handle, status, (gpointer) js_native_fault_cb);
}

static void
js_hit_saved (Record * rec, gint32 phase)
{
  full_save_call (rec, phase, (gpointer) js_hit);
}

#include "syscallNativeDispatch.h"

static gint32
current_tid (void)
{
  gint32 off = *(volatile gint32 *) (cfg + CFG_TID_OFFSET);
  if (off <= 0)
    return (gint32) syscall_fn (186); /* gettid, through the stub page's own syscall */
  return *(gint32 *) ((guint8 *) pthread_self_fn () + off);
}

/*
 * Whether this thread is inside an inline probe's program (hookcore.c sets `busy` around the
 * run, its JS path included): a syscall made there is the agent's or Frida's (V8 on a
 * JS-path uprobe or USDT hit), not the target's. Running a program for it re-entered JS from
 * inside JS (V8's "Invoke in DisallowJavascriptExecutionScope": a JS-path syscall program
 * beside a JS-path uprobe killed the target). The same lookup as hookcore.c's, read-only.
 */
static int
in_inline_probe (void)
{
  guint8 * t = hook_threads_cell[0];
  guint64 tp, h;
  int i;
  if (t == NULL)
    return 0;
  tp = (guint64) pthread_self_fn ();
  h = ((tp >> 6) * 0x9e3779b97f4a7c15ULL) >> 52;
  for (i = 0; i < HOOK_PROBE_LIMIT; i++)
  {
    guint8 * s = t + HOOK_THREADS_SLOT0 + ((h + i) & (HOOK_THREAD_SLOTS - 1)) * HOOK_THREAD_STATE_SIZE;
    guint64 owner = *(volatile guint64 *) s;
    if (owner == tp)
      return *(volatile gint32 *) (s + HOOK_THREAD_BUSY);
    if (owner == 0)
      return 0; /* hookcore.c would have taken this slot for the thread: it has none */
  }
  return 0;
}

/* Whether programs may run for this thread now; marks it busy when they may. */
static int
may_run (gint32 tid)
{
  if (pthread_getspecific_fn (busy_key[0]) != NULL)
    return 0;
  if (js_forbidden (tid))
    return 0;
  if (fork_state[1] && syscall_fn (39) != agent_pid[0])
    return 0;
  if (in_inline_probe ())
    return 0; /* (inside a VM run: run_native_unless_nested answers, in the same window) */
  /* Only threads known to be the target's: a new thread is once the thread observer has
     reported it (Frida reads /proc for it on the thread itself first), as with Stalker.
     The main thread always is (a spawned one runs Frida's loader, cloaked, at attach). */
  if ((!app_thread (tid) && tid != agent_pid[0]) || frida_thread (tid) || end_gate[0] == tid)
    return 0;
  pthread_setspecific_fn (busy_key[0], (gconstpointer) 1);
  return 1;
}

static void
done_running (void)
{
  pthread_setspecific_fn (busy_key[0], NULL);
}

/*
 * Whether this syscall is Frida's agent's own heap growing or shrinking on a target thread:
 * the agent's allocator (dlmalloc, spin lock held) calls mmap, munmap, mremap or madvise,
 * leaf wrappers in libc, so the word at the user stack pointer is their return address and
 * it lies in the agent's text. Entering JS there hung the target: V8 allocated from that
 * heap and spun for good on the lock its own thread held (gdb on a hung victim, a raw
 * sys_enter JS probe on every syscall). Only that word of only those calls is read: a
 * wider look (8 words up) also met stale agent addresses in a caller's uninitialised buffer
 * and lost one of the target's own fstat calls.
 */
static int
agent_heap_syscall (gint64 nr, guint64 user_sp)
{
  guint64 w;
  int j;
  if (nr != NR_MMAP && nr != NR_MUNMAP && nr != NR_MREMAP && nr != NR_MADVISE)
    return 0;
  w = *(const guint64 *) user_sp;
  for (j = 0; j < AGENT_TEXT_RANGES; j++)
    if (w - agent_text[2 * j] < agent_text[2 * j + 1] - agent_text[2 * j])
      return 1;
  return 0;
}

/* A site whose number comes in rax (nr -1 in the table) keeps it on the stack above the frame. */
static guint64
user_sp_at (Frame * f, Site * s)
{
  return (guint64) f + sizeof (Frame) + 128 + (s->nr < 0 ? 8 : 0);
}

static void
fill_user (Record * r, Frame * f, Site * s)
{
  r->cpu = sched_getcpu ();
  r->user_ip = s->ip;
  r->user_sp = user_sp_at (f, s);
  r->user_bp = f->rbp;
}

/*
 * A listener on exit(): from here on only native-path programs run. Frida's exit monitor
 * flushes and winds the script runtime down inside exit(), and a JS entry from the stdio
 * flush or atexit handlers that follow hung the target (a raw sys_enter JS program on
 * seq 1 10: three threads spinning in the agent).
 */
void
on_exit_begin (void * ic)
{
  if (!fork_state[0] && syscall_fn (39) == agent_pid[0])
    exiting[0] = 1;
}

/*
 * A listener on _exit(): the thread's next syscall is exit_group (reported by the _exit
 * hook), so everything it does from here on is the agent's and Frida's (the final map
 * snapshot and its message to the host).
 */
void
on_process_end (void * ic)
{
  end_gate[0] = current_tid ();
}

void
rw_enter (Frame * f)
{
  Site * s = &sites[f->site];
  gint64 nr = s->nr >= 0 ? s->nr : (gint64) f->rax;
  gint32 tid;
  int ran;
  Record r;
  if (!cfg[CFG_ANY_ENTER] && !(nr >= 0 && nr < SLOTS && cfg[CFG_ENTER + nr]))
    return;
  tid = current_tid ();
  if (!may_run (tid))
    return;
  r.enter.ent.type = 0;
  r.enter.ent.flags = 0;
  r.enter.ent.preempt_count = 0;
  r.enter.ent.pid = tid;
  r.enter.id = nr;
  r.enter.args[0] = f->rdi;
  r.enter.args[1] = f->rsi;
  r.enter.args[2] = f->rdx;
  r.enter.args[3] = f->r10;
  r.enter.args[4] = f->r8;
  r.enter.args[5] = f->r9;
  r.nr = nr;
  r.override_set = 0;
  r.override_value = 0;
  r.tid = tid;
  ran = run_native_unless_nested (0, nr, &r.enter, sizeof (EnterRecord), &r.override_set);
  if (ran == 0 && app_thread (tid) && !exiting[0])
  {
    fill_user (&r, f, s);
    if (!agent_heap_syscall (nr, r.user_sp))
      js_hit_saved (&r, 0);
  }
  if (r.override_set)
  {
    f->rax = (guint64) r.override_value;
    f->r11 = 1;
  }
  done_running ();
}

void
rw_exit (Frame * f)
{
  Site * s = &sites[f->site];
  gint64 nr = s->nr >= 0 ? s->nr : *(gint64 *) (f + 1);
  gint32 tid;
  int ran;
  Record r;
  if (!cfg[CFG_ANY_EXIT] && !(nr >= 0 && nr < SLOTS && cfg[CFG_EXIT + nr]))
    return;
  tid = current_tid ();
  if (!may_run (tid))
    return;
  r.exit.ent.type = 0;
  r.exit.ent.flags = 0;
  r.exit.ent.preempt_count = 0;
  r.exit.ent.pid = tid;
  r.exit.id = nr;
  r.exit.ret = (gint64) f->rax;
  r.nr = nr;
  r.override_set = 0;
  r.override_value = 0;
  r.tid = tid;
  ran = run_native_unless_nested (1, nr, &r.exit, sizeof (ExitRecord), &r.override_set);
  if (ran == 0 && app_thread (tid) && !exiting[0])
  {
    fill_user (&r, f, s);
    if (!agent_heap_syscall (nr, r.user_sp))
      js_hit_saved (&r, 1);
  }
  if (r.override_set)
    f->rax = (guint64) r.override_value;
  done_running ();
}

/* The shared structs' layout, checked by rewriteHandlers.ts (THREAD_STATE_LAYOUT, NATIVE_LAYOUT, FRAME, SITE). */
void
rewrite_handlers_layout (guint32 * out)
{
  int n = native_table_layout (out, thread_state_layout (out, 1));
  out[n++] = G_STRUCT_OFFSET (Frame, flags);
  out[n++] = G_STRUCT_OFFSET (Frame, rbp);
  out[n++] = G_STRUCT_OFFSET (Frame, rbx);
  out[n++] = G_STRUCT_OFFSET (Frame, r11);
  out[n++] = G_STRUCT_OFFSET (Frame, rax);
  out[n++] = G_STRUCT_OFFSET (Frame, ret);
  out[n++] = G_STRUCT_OFFSET (Frame, site);
  out[n++] = sizeof (Frame);
  out[n++] = G_STRUCT_OFFSET (Site, ip);
  out[n++] = G_STRUCT_OFFSET (Site, nr);
  out[n++] = sizeof (Site);
  /* constants.h, against their TypeScript definitions */
  out[n++] = MAX_TIDS;
  out[n++] = SLOTS;
  out[n++] = CFG_ENTER;
  out[n++] = CFG_EXIT;
  out[n++] = CFG_ANY_ENTER;
  out[n++] = CFG_ANY_EXIT;
  out[n++] = CFG_TID_OFFSET;
  out[n++] = NATIVE_MAX_PROGS;
  out[n++] = HOOK_THREADS_SLOT0;
  out[n++] = HOOK_THREAD_SLOTS;
  out[n++] = HOOK_THREAD_STATE_SIZE;
  out[n++] = HOOK_THREAD_BUSY;
  out[n++] = HOOK_PROBE_LIMIT;
  out[n++] = AGENT_TEXT_RANGES;
  out[n++] = NR_MMAP;
  out[n++] = NR_MUNMAP;
  out[n++] = NR_MREMAP;
  out[n++] = NR_MADVISE;
  out[0] = n - 1;
}
