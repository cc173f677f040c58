// The native half of syscall tracing: a Stalker transform that brackets every `syscall`
// instruction with two callouts, and the callouts themselves. They run on every syscall
// of every followed thread, so they decide in C, from a table JS keeps up to date,
// whether anything is attached to this syscall; only then do they fill the tracepoint
// record and call into JS (which takes Frida's JS lock). Unrelated syscalls never leave C.

import { NR_EXIT_GROUP } from './exitHooks.js';
import { SYSCALL_SLOTS } from '../../../protocol/syscalls.js';
import { FORK_GUARD_C, forkGuard } from '../../forkGuard.js';
import { hotCallback } from '../../hotCallback.js';
import { NATIVE_DISPATCH_C, NATIVE_DISPATCH_C_TYPES } from './nativeDispatch.js';
import { THREAD_STATE_C } from './threadState.js';

/** Byte offsets in the shared config block: one enable byte per syscall and phase, then the raw ones. */
export const CFG = {
  enter: 0,
  exit: SYSCALL_SLOTS,
  anyEnter: 2 * SYSCALL_SLOTS,
  anyExit: 2 * SYSCALL_SLOTS + 1,
  /** gint32: offset of the thread id in glibc's struct pthread (found at start-up). */
  tidOffset: 2 * SYSCALL_SLOTS + 4,
  size: 2 * SYSCALL_SLOTS + 8,
} as const;

const CFG_TID_OFFSET = CFG.tidOffset;

import { NATIVE } from './nativeDispatch.js';
export { NATIVE, NATIVE_MAX_PROGS } from './nativeDispatch.js';
const CFG_ANY_ENTER = CFG.anyEnter;

/** Blocks with a syscall remembered for detach (more are possible only in huge programs; they leave Stalker later). */
export const MAX_SYSCALL_BLOCKS = 4096;
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

${THREAD_STATE_C}

extern volatile guint8 cfg[];
/* forkGuard.ts: js_forbidden() in a forked child and on a thread inside fork(). */
${FORK_GUARD_C}
${NATIVE_DISPATCH_C_TYPES}
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
  gint32 off = *(volatile gint32 *) (cfg + ${CFG_TID_OFFSET});
  if (off <= 0)
    return 1;
  return *(gint32 *) ((guint8 *) pthread_self_fn () + off) == ts->tid;
}

${NATIVE_DISPATCH_C}
/* Interceptor listener on _exit(): reports sys_enter_exit_group (see exitHooks.ts). */
void
on_process_exit (GumInvocationContext * ic)
{
  gint32 tid;
  if (!cfg[${CFG_ANY_ENTER}] && !cfg[${CFG_ENTER} + ${NR_EXIT_GROUP}])
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
  if (!wanted (nr, ${CFG.enter}, ${CFG.anyEnter}) || !own_thread (ts) || js_forbidden (ts->tid))
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
  if (!wanted (nr, ${CFG.exit}, ${CFG.anyExit}) || !own_thread (ts) || js_forbidden (ts->tid))
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
  for (i = 0; i < n && i < ${MAX_SYSCALL_BLOCKS}; i++)
    if (syscall_blocks[i] == start)
      return;
  i = g_atomic_int_add (&syscall_blocks_count, 1);
  if (i < ${MAX_SYSCALL_BLOCKS})
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
`;


export interface SyscallFilter {
  /** `void transform(GumStalkerIterator*, GumStalkerOutput*, ThreadState*)`. */
  readonly transform: NativePointer;
  /** Enable bytes (see CFG); written by JS, read by every callout. */
  readonly cfg: Uint8Array;
  /** The same block as a pointer (the rewrite mechanism's handlers read it too). */
  readonly cfgBlock: NativePointer;
  /** `void (GumInvocationContext*)` listener for _exit(). */
  readonly onProcessExit: NativePointer;
  /** The native run table (see NATIVE); change it only between quiesce() and activate(). */
  readonly native: NativePointer;
  /** Start addresses of the translated blocks that contain a syscall (for Stalker.invalidate at detach). */
  syscallBlocks(): NativePointer[];
  /** Stops new native runs and waits until no callout is inside one. */
  quiesce(): void;
  /** Lets callouts use the native table again. */
  activate(): void;
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
  onNativeFault: (handle: number, status: number) => void,
): SyscallFilter & { keepAlive: unknown[] } {
  const cfgBlock = Memory.alloc(CFG.size);
  const nativeBlock = Memory.alloc(NATIVE.size);
  const blocksCount = Memory.alloc(8);
  const blocks = Memory.alloc(MAX_SYSCALL_BLOCKS * Process.pointerSize);
  const jsNativeFault = new NativeCallback(onNativeFault, 'void', ['uint', 'int']);
  const jsEnter = hotCallback(onEnter, 'void', ['int']);
  const jsExit = hotCallback(onExit, 'void', ['int']);
  const jsProcessExit = new NativeCallback(onProcessExit, 'void', ['int', 'int']);
  const cm = new CModule(SOURCE, {
    cfg: cfgBlock,
    fork_state: forkGuard().state,
    js_enter: jsEnter,
    js_exit: jsExit,
    js_process_exit: jsProcessExit,
    native_table: nativeBlock,
    js_native_fault: jsNativeFault,
    pthread_self_fn: Module.getGlobalExportByName('pthread_self'),
    sched_getcpu: Module.getGlobalExportByName('sched_getcpu'),
    syscall_blocks_count: blocksCount,
    syscall_blocks: blocks,
  });
  new DataView(ArrayBuffer.wrap(cfgBlock, CFG.size)).setInt32(CFG.tidOffset, findTidOffset(), true);
  // Exclusive: the table is JS's to change while it holds the JS lock.
  const quiesce = new NativeFunction(cm.native_quiesce, 'void', [], { scheduling: 'exclusive' });
  const activate = new NativeFunction(cm.native_activate, 'void', [], { scheduling: 'exclusive' });
  return {
    transform: cm.transform,
    cfg: new Uint8Array(ArrayBuffer.wrap(cfgBlock, CFG.size)),
    cfgBlock,
    onProcessExit: cm.on_process_exit,
    native: nativeBlock,
    syscallBlocks(): NativePointer[] {
      const n = Math.min(blocksCount.readS32(), MAX_SYSCALL_BLOCKS);
      const out: NativePointer[] = [];
      for (let i = 0; i < n; i++) {
        const p = blocks.add(i * Process.pointerSize).readPointer();
        if (!p.isNull()) out.push(p);
      }
      return out;
    },
    quiesce: () => void quiesce(),
    activate: () => void activate(),
    keepAlive: [cm, cfgBlock, nativeBlock, blocksCount, blocks, jsEnter, jsExit, jsProcessExit, jsNativeFault],
  };
}

/**
 * Where glibc keeps the thread id in struct pthread (0x2d0 on current x86-64 glibc): the
 * first 32-bit slot after the TCB header that holds this thread's id. 0 (check disabled)
 * when not found.
 */
export function findTidOffset(): number {
  const self = new NativeFunction(Module.getGlobalExportByName('pthread_self'), 'pointer', [])();
  const tid = Process.getCurrentThreadId();
  for (let off = 0x40; off < 0x800; off += 4) {
    if (self.add(off).readS32() === tid) return off;
  }
  return 0;
}
