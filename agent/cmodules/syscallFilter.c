/*
 * The native half of syscall tracing (syscallFilter.ts): the Stalker transform that brackets
 * every `syscall` with two callouts, and the callouts. The TS that creates the module
 * #defines the constants below from their one TS definition.
 */
/*
 * capstone.h picks CAPSTONE_DEPRECATED by compiler; TinyCC is not on its list and the
 * resulting #pragma message is an error under -Werror. Claim a listed compiler for it.
 */
#define __IBMC__ 1
#include <gum/gumstalker.h>
#include <gum/guminterceptor.h>
#undef __IBMC__

/* SLOTS, CFG_*, NR_EXIT_GROUP, MAX_SYSCALL_BLOCKS and NATIVE_MAX_PROGS are #defined by syscallFilter.ts. */

#include "syscallThreadState.h"

extern volatile guint8 cfg[];
/* forkGuard.ts: js_forbidden() in a forked child and on a thread inside fork(). */
#include "forkGuard.h"
#include "syscallNativeTable.h"
extern NativeTable native_table;
extern void js_native_fault (guint32 handle, gint32 status);
extern void js_enter (gint32 slot);
extern void js_exit (gint32 slot);
extern void js_process_exit (gint32 tid, gint32 status);
extern gpointer pthread_self_fn (void);
extern int sched_getcpu (void);

/*
 * Whether this callout runs on the thread its state block was made for. A forked child's
 * thread runs the parent's stalked code with the parent's block, but the kernel already
 * wrote the child's tid into glibc's struct pthread (CLONE_CHILD_SETTID), before any user
 * code runs in the child. No syscall needed. (forkGuard covers the child after fork()
 * returns; this covers the clone's own exit callout, and children made by raw clone.)
 */
static int
own_thread (const ThreadState * ts)
{
  gint32 off = *(volatile gint32 *) (cfg + CFG_TID_OFFSET);
  if (off <= 0)
    return 1;
  return *(gint32 *) ((guint8 *) pthread_self_fn () + off) == ts->tid;
}

#include "syscallNativeDispatch.h"
/* Interceptor listener on _exit(): reports sys_enter_exit_group (see exitHooks.ts). */
void
on_process_exit (GumInvocationContext * ic)
{
  gint32 tid;
  if (!cfg[CFG_ANY_ENTER] && !cfg[CFG_ENTER + NR_EXIT_GROUP])
    return;
  tid = (gint32) gum_invocation_context_get_thread_id (ic);
  if (js_forbidden (tid))
    return;
  js_process_exit (tid, (gint32) GPOINTER_TO_SIZE (gum_invocation_context_get_nth_argument (ic, 0)));
}

static int
wanted (gint64 nr, int table, int any)
{
  if (cfg[any])
    return 1;
  return nr >= 0 && nr < SLOTS && cfg[table + nr];
}

static void
on_enter (GumCpuContext * cpu, gpointer user_data)
{
  ThreadState * ts = user_data;
  gint64 nr = (gint64) cpu->rax;

  ts->nr = nr;
  ts->override_set = 0;
  ts->in_syscall = 1;
  if (!wanted (nr, CFG_ENTER, CFG_ANY_ENTER) || !own_thread (ts) || js_forbidden (ts->tid) || in_vm_run ())
    return;
  ts->enter.ent.pid = ts->tid;
  ts->enter.id = nr;
  ts->enter.args[0] = cpu->rdi;
  ts->enter.args[1] = cpu->rsi;
  ts->enter.args[2] = cpu->rdx;
  ts->enter.args[3] = cpu->r10;
  ts->enter.args[4] = cpu->r8;
  ts->enter.args[5] = cpu->r9;
  if (!run_native (0, nr, &ts->enter, sizeof (EnterRecord), &ts->override_set))
  {
    ts->cpu = sched_getcpu (); /* here: a NativeFunction call from JS costs ~0.6 us */
    ts->user_ip = cpu->rip;
    ts->user_sp = cpu->rsp;
    ts->user_bp = cpu->rbp;
    js_enter (ts->slot);
  }
  /*
   * Overridden: the instruction stays (Stalker must still see clone & co. go by), but the
   * kernel gets a number it rejects at once with -ENOSYS; on_exit puts the wanted value in.
   */
  if (ts->override_set)
    cpu->rax = (guint64) -1;
}

static void
on_exit (GumCpuContext * cpu, gpointer user_data)
{
  ThreadState * ts = user_data;
  gint64 nr = ts->nr;

  ts->in_syscall = 0;
  if (ts->override_set)
  {
    cpu->rax = (guint64) ts->override_value;
    ts->override_set = 0;
  }
  if (!wanted (nr, CFG_EXIT, CFG_ANY_EXIT) || !own_thread (ts) || js_forbidden (ts->tid) || in_vm_run ())
    return;
  ts->exit.ent.pid = ts->tid;
  ts->exit.id = nr;
  ts->exit.ret = (gint64) cpu->rax;
  if (!run_native (1, nr, &ts->exit, sizeof (ExitRecord), &ts->override_set))
  {
    ts->cpu = sched_getcpu ();
    ts->user_ip = cpu->rip;
    ts->user_sp = cpu->rsp;
    ts->user_bp = cpu->rbp;
    js_exit (ts->slot);
  }
  if (ts->override_set)
  {
    cpu->rax = (guint64) ts->override_value;
    ts->override_set = 0;
  }
}

/*
 * Start addresses of the blocks that hold a bracketed syscall (see BLOCKS in TS). Stalker
 * links hot blocks straight to each other, so a thread in a loop never passes through
 * its dispatcher again and never notices Stalker.unfollow(); invalidating these blocks at
 * detach sends it through the dispatcher at its next syscall, where it leaves Stalker.
 */
extern volatile gint syscall_blocks_count;
extern gpointer syscall_blocks[];

static void
remember_block (gpointer start)
{
  gint i, n = syscall_blocks_count;
  for (i = 0; i < n && i < MAX_SYSCALL_BLOCKS; i++)
    if (syscall_blocks[i] == start)
      return;
  i = g_atomic_int_add (&syscall_blocks_count, 1);
  if (i < MAX_SYSCALL_BLOCKS)
    syscall_blocks[i] = start;
}

void
transform (GumStalkerIterator * iterator, GumStalkerOutput * output, gpointer user_data)
{
  const cs_insn * insn;
  gpointer block_start = NULL;

  while (gum_stalker_iterator_next (iterator, &insn))
  {
    if (block_start == NULL)
      block_start = GSIZE_TO_POINTER (insn->address);
    if (insn->id == X86_INS_SYSCALL)
    {
      remember_block (block_start);
      gum_stalker_iterator_put_callout (iterator, on_enter, user_data, NULL);
      gum_stalker_iterator_keep (iterator);
      gum_stalker_iterator_put_callout (iterator, on_exit, user_data, NULL);
    }
    else
    {
      gum_stalker_iterator_keep (iterator);
    }
  }
}

/* The shared structs' layout, checked by syscallFilter.ts (THREAD_STATE_LAYOUT, NATIVE_LAYOUT). */
void
syscall_filter_layout (guint32 * out)
{
  int n = native_table_layout (out, thread_state_layout (out, 1));
  out[0] = n - 1;
}
