// The native half of syscall tracing: a Stalker transform that brackets every `syscall`
// instruction with two callouts, and the callouts themselves. They run on every syscall
// of every followed thread, so they decide in C, from a table JS keeps up to date,
// whether anything is attached to this syscall; only then do they fill the tracepoint
// record and call into JS (which takes Frida's JS lock). Unrelated syscalls never leave C.

import { NR_EXIT_GROUP } from './exitHooks.js';
import { SYSCALL_SLOTS } from './syscallTable.js';

/** Byte offsets in the shared config block: one enable byte per syscall and phase, then the raw ones. */
export const CFG = {
  enter: 0,
  exit: SYSCALL_SLOTS,
  anyEnter: 2 * SYSCALL_SLOTS,
  anyExit: 2 * SYSCALL_SLOTS + 1,
  /** Set in a forked child (atfork handler): its callouts stay in C, see README. */
  forkedChild: 2 * SYSCALL_SLOTS + 2,
  size: 2 * SYSCALL_SLOTS + 8,
} as const;

const CFG_FORKED = CFG.forkedChild;
const CFG_ANY_ENTER = CFG.anyEnter;
const CFG_ENTER = CFG.enter;

const SOURCE = `
/*
 * capstone.h picks CAPSTONE_DEPRECATED by compiler; TinyCC is not on its list and the
 * resulting #pragma message is an error under -Werror. Claim a listed compiler for it.
 */
#define __IBMC__ 1
#include <gum/gumstalker.h>
#include <gum/guminterceptor.h>
#undef __IBMC__

#define SLOTS ${SYSCALL_SLOTS}

typedef struct {
  guint16 type;
  guint8 flags;
  guint8 preempt_count;
  gint32 pid;
} TraceEntry;

typedef struct {
  TraceEntry ent;
  gint64 id;
  guint64 args[6];
} EnterRecord;

typedef struct {
  TraceEntry ent;
  gint64 id;
  gint64 ret;
} ExitRecord;

/* Mirrors TS in threadState.ts. */
typedef struct {
  EnterRecord enter;
  ExitRecord exit;
  gint64 nr;
  gint64 override_set;
  gint64 override_value;
  gint32 slot;
  gint32 tid;
} ThreadState;

extern volatile guint8 cfg[];
extern void js_enter (gint32 slot);
extern void js_exit (gint32 slot);
extern void js_process_exit (gint32 tid, gint32 status);
extern void unregister_atfork (gpointer dso_handle);

/*
 * A forked child continues inside its copy of the parent's Stalker code, but the JS
 * runtime's threads and lock owners did not come along: entering JS there can deadlock.
 * So the child keeps running stalked but never calls out (it is untraced).
 */
void
on_fork_child (void)
{
  cfg[${CFG_FORKED}] = 1;
}

/*
 * Runs when the script unloads and this module is unmapped: a fork after that must not
 * call into freed code (the handler was registered with cfg as its dso handle).
 */
void
finalize (void)
{
  unregister_atfork ((gpointer) cfg);
}

/* Interceptor listener on _exit(): reports sys_enter_exit_group (see exitHooks.ts). */
void
on_process_exit (GumInvocationContext * ic)
{
  if (cfg[${CFG_FORKED}] || (!cfg[${CFG_ANY_ENTER}] && !cfg[${CFG_ENTER} + ${NR_EXIT_GROUP}]))
    return;
  js_process_exit ((gint32) gum_invocation_context_get_thread_id (ic),
      (gint32) GPOINTER_TO_SIZE (gum_invocation_context_get_nth_argument (ic, 0)));
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
  if (cfg[${CFG_FORKED}])
    return;
  if (!wanted (nr, ${CFG.enter}, ${CFG.anyEnter}))
    return;
  ts->enter.ent.pid = ts->tid;
  ts->enter.id = nr;
  ts->enter.args[0] = cpu->rdi;
  ts->enter.args[1] = cpu->rsi;
  ts->enter.args[2] = cpu->rdx;
  ts->enter.args[3] = cpu->r10;
  ts->enter.args[4] = cpu->r8;
  ts->enter.args[5] = cpu->r9;
  js_enter (ts->slot);
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

  if (ts->override_set)
  {
    cpu->rax = (guint64) ts->override_value;
    ts->override_set = 0;
  }
  if (cfg[${CFG_FORKED}])
    return;
  if (!wanted (nr, ${CFG.exit}, ${CFG.anyExit}))
    return;
  ts->exit.ent.pid = ts->tid;
  ts->exit.id = nr;
  ts->exit.ret = (gint64) cpu->rax;
  js_exit (ts->slot);
  if (ts->override_set)
  {
    cpu->rax = (guint64) ts->override_value;
    ts->override_set = 0;
  }
}

void
transform (GumStalkerIterator * iterator, GumStalkerOutput * output, gpointer user_data)
{
  const cs_insn * insn;

  while (gum_stalker_iterator_next (iterator, &insn))
  {
    if (insn->id == X86_INS_SYSCALL)
    {
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
`;


export interface SyscallFilter {
  /** `void transform(GumStalkerIterator*, GumStalkerOutput*, ThreadState*)`. */
  readonly transform: NativePointer;
  /** Enable bytes (see CFG); written by JS, read by every callout. */
  readonly cfg: Uint8Array;
  /** `void (GumInvocationContext*)` listener for _exit(). */
  readonly onProcessExit: NativePointer;
}

/**
 * Compiles the filter. The module, the config block and the two callbacks are returned
 * inside one object that must stay reachable for as long as any thread may still run
 * stalked code, since the callouts point into all of them.
 */
export function createSyscallFilter(
  onEnter: (slot: number) => void,
  onExit: (slot: number) => void,
  onProcessExit: (tid: number, status: number) => void,
): SyscallFilter & { keepAlive: unknown[] } {
  const cfgBlock = Memory.alloc(CFG.size);
  const jsEnter = new NativeCallback(onEnter, 'void', ['int']);
  const jsExit = new NativeCallback(onExit, 'void', ['int']);
  const jsProcessExit = new NativeCallback(onProcessExit, 'void', ['int', 'int']);
  // glibc runs atfork child handlers in the child of fork() (not of raw clone or vfork).
  const registerAtfork = Module.findGlobalExportByName('__register_atfork');
  const unregisterAtfork = Module.findGlobalExportByName('__unregister_atfork');
  const noop = new NativeCallback(() => undefined, 'void', ['pointer']);
  const cm = new CModule(SOURCE, {
    cfg: cfgBlock,
    js_enter: jsEnter,
    js_exit: jsExit,
    js_process_exit: jsProcessExit,
    unregister_atfork: unregisterAtfork ?? noop,
  });
  if (registerAtfork !== null && unregisterAtfork !== null) {
    new NativeFunction(registerAtfork, 'int', ['pointer', 'pointer', 'pointer', 'pointer'])(NULL, NULL, cm.on_fork_child, cfgBlock);
  }
  return {
    transform: cm.transform,
    cfg: new Uint8Array(ArrayBuffer.wrap(cfgBlock, CFG.size)),
    onProcessExit: cm.on_process_exit,
    keepAlive: [cm, cfgBlock, jsEnter, jsExit, jsProcessExit, noop],
  };
}
