// The C the stubs call for a rewritten site whose flag is set: decide whether this
// syscall reaches a program, fill the tracepoint record on the stack, run the programs
// natively (nativeDispatch.ts, shared with the Stalker callouts) or through JS, and hand
// an override back to the trampoline through the frame (rax = value, r11 = 1: skip the
// syscall). Every state a syscall needs lives in the frame, so threads need no set-up:
// threads created later, signal handlers and start-up code are traced the moment their
// syscalls go through a rewritten site.
//
// Skipped, in C, before any program runs: Frida's own threads (cloaked), a syscall made
// while this thread is already inside a program (a helper's getpid, a JS helper's
// write), a forked child (forkGuard), and while a fork is under way any thread whose
// process is not the agent's (the child before fork() returns).

import { SYSCALL_SLOTS } from '../../../../protocol/syscalls.js';
import { FORK_GUARD_C } from '../../../forkGuard.js';
import { hotCallback } from '../../../hotCallback.js';
import { CFG } from '../syscallFilter.js';
import { NATIVE_DISPATCH_C, NATIVE_DISPATCH_C_TYPES } from '../nativeDispatch.js';
import { THREAD_STATE_C, TS } from '../threadState.js';
import { stubPage } from './stubs.js';

/** Site table entry: the site's syscall address (its mov + 5) and number. */
export const SITE = { ip: 0, nr: 8, size: 16 } as const;
export const MAX_SITES = 16384;
const MAX_TIDS = 1024;

/**
 * A set of thread ids in a block the handlers read (CModule cannot reach Frida's cloak):
 * count, then slots; a removed id leaves a 0 slot that the next add reuses. Written only
 * by JS (under the JS lock), read racily by C: a slot changes with one 4-byte store.
 */
export class ThreadTable {
  readonly block = Memory.alloc(4 * (1 + MAX_TIDS));
  private readonly slots = new Map<number, number>();
  private used = 0;

  has(tid: number): boolean {
    return this.slots.has(tid);
  }

  add(tid: number): void {
    if (tid <= 0 || this.slots.has(tid)) return;
    let slot = -1;
    for (let i = 0; i < this.used; i++) if (this.block.add(4 * (1 + i)).readS32() === 0) slot = i;
    if (slot < 0) {
      if (this.used >= MAX_TIDS) return;
      slot = this.used++;
    }
    this.block.add(4 * (1 + slot)).writeS32(tid);
    this.slots.set(tid, slot);
    this.block.writeS32(this.used);
  }

  remove(tid: number): void {
    const slot = this.slots.get(tid);
    if (slot === undefined) return;
    this.block.add(4 * (1 + slot)).writeS32(0);
    this.slots.delete(tid);
  }
}

/** Thread ids from /proc/self/task, read with the agent's own libc calls. */
export function listTasks(): number[] {
  const opendir = new NativeFunction(Module.getGlobalExportByName('opendir'), 'pointer', ['pointer']);
  const readdir = new NativeFunction(Module.getGlobalExportByName('readdir'), 'pointer', ['pointer']);
  const closedir = new NativeFunction(Module.getGlobalExportByName('closedir'), 'int', ['pointer']);
  const dir = opendir(Memory.allocUtf8String('/proc/self/task'));
  if (dir.isNull()) return [];
  const out: number[] = [];
  for (let e = readdir(dir); !e.isNull(); e = readdir(dir)) {
    const tid = Number(e.add(19).readUtf8String() ?? ''); // struct dirent.d_name
    if (tid > 0) out.push(tid);
  }
  closedir(dir);
  return out;
}

const SOURCE = `
#include <gum/guminterceptor.h>

/* Thread id tables kept by JS (see ThreadTable): count, then ids; 0 marks a free slot. */
extern volatile gint32 frida_tids[];
extern volatile gint32 app_tids[];
#define MAX_TIDS ${MAX_TIDS}

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

#define SLOTS ${SYSCALL_SLOTS}

${THREAD_STATE_C}
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
${FORK_GUARD_C}
${NATIVE_DISPATCH_C_TYPES}
extern NativeTable native_table;
extern void js_native_fault (guint32 handle, gint32 status);
extern void js_hit (Record * rec, gint32 phase);
extern gpointer pthread_self_fn (void);
extern gpointer pthread_getspecific_fn (guint32 key);
extern int pthread_setspecific_fn (guint32 key, gconstpointer value);
extern long syscall_fn (long nr);
extern int sched_getcpu (void);
extern volatile guint32 busy_key[];
/* [0]: exit() has begun in the agent's process (see on_exit_begin). */
extern volatile gint exiting[];
/* [0]: the thread in _exit() (see on_process_end), or 0. */
extern volatile gint end_gate[];

${NATIVE_DISPATCH_C}

static gint32
current_tid (void)
{
  gint32 off = *(volatile gint32 *) (cfg + ${CFG.tidOffset});
  if (off <= 0)
    return (gint32) syscall_fn (186); /* gettid, through the stub page's own syscall */
  return *(gint32 *) ((guint8 *) pthread_self_fn () + off);
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

/* A site whose number comes in rax (nr -1 in the table) keeps it on the stack above the frame. */
static void
fill_user (Record * r, Frame * f, Site * s)
{
  r->cpu = sched_getcpu ();
  r->user_ip = s->ip;
  r->user_sp = (guint64) f + sizeof (Frame) + 128 + (s->nr < 0 ? 8 : 0);
  r->user_bp = f->rbp;
}

/*
 * A listener on exit(): from here on only native-path programs run. Frida's exit monitor
 * flushes and winds the script runtime down inside exit(), and a JS entry from the stdio
 * flush or atexit handlers that follow hung the target (a raw sys_enter JS program on
 * seq 1 10: three threads spinning in the agent).
 */
void
on_exit_begin (GumInvocationContext * ic)
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
on_process_end (GumInvocationContext * ic)
{
  end_gate[0] = (gint) gum_invocation_context_get_thread_id (ic);
}

void
rw_enter (Frame * f)
{
  Site * s = &sites[f->site];
  gint64 nr = s->nr >= 0 ? s->nr : (gint64) f->rax;
  gint32 tid;
  Record r;
  if (!cfg[${CFG.anyEnter}] && !(nr >= 0 && nr < SLOTS && cfg[${CFG.enter} + nr]))
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
  if (!run_native (0, nr, &r.enter, sizeof (EnterRecord), &r.override_set) && app_thread (tid) && !exiting[0])
  {
    fill_user (&r, f, s);
    js_hit (&r, 0);
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
  Record r;
  if (!cfg[${CFG.anyExit}] && !(nr >= 0 && nr < SLOTS && cfg[${CFG.exit} + nr]))
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
  if (!run_native (1, nr, &r.exit, sizeof (ExitRecord), &r.override_set) && app_thread (tid) && !exiting[0])
  {
    fill_user (&r, f, s);
    js_hit (&r, 1);
  }
  if (r.override_set)
    f->rax = (guint64) r.override_value;
  done_running ();
}
`;

export interface RewriteHandlers {
  readonly enter: NativePointer;
  readonly exit: NativePointer;
  /** The site table (SITE entries, MAX_SITES of them). */
  readonly sites: NativePointer;
  /** Interceptor listener for exit(): JS-path programs stop there (see on_exit_begin). */
  readonly onExitBegin: NativePointer;
  /** Interceptor listener for _exit(): nothing more on that thread is the target's. */
  readonly onProcessEnd: NativePointer;
  /** Runs `fn` with this thread marked as inside a program: its syscalls reach none. */
  busy(fn: () => void): void;
  readonly keepAlive: unknown[];
}

/**
 * Compiles the handlers. `cfg` and `native` are the Stalker filter's blocks (one enable
 * table and one native run table for both mechanisms); `onHit(record, phase)` is the JS
 * path, given a pointer to a thread-state-shaped record (threadState.ts TS) on the
 * thread's stack.
 */
export function createRewriteHandlers(
  cfg: NativePointer,
  native: NativePointer,
  forkState: NativePointer,
  fridaTids: NativePointer,
  appTids: NativePointer,
  onHit: (record: NativePointer, phase: number) => void,
  onNativeFault: (handle: number, status: number) => void,
): RewriteHandlers {
  if (TS.size !== 152) throw new Error('threadState layout changed: update Record in rewriteHandlers.ts');
  const sites = Memory.alloc(SITE.size * MAX_SITES);
  const pid = Memory.alloc(4);
  pid.writeS32(Process.id);
  const exiting = Memory.alloc(4);
  const endGate = Memory.alloc(4);
  const key = Memory.alloc(4);
  const keyCreate = new NativeFunction(Module.getGlobalExportByName('pthread_key_create'), 'int', ['pointer', 'pointer']);
  if (keyCreate(key, NULL) !== 0) throw new Error('pthread_key_create failed');
  const jsHit = hotCallback(onHit, 'void', ['pointer', 'int']);
  const jsFault = new NativeCallback(onNativeFault, 'void', ['uint', 'int']);
  const cm = new CModule(SOURCE, {
    cfg,
    sites,
    agent_pid: pid,
    fork_state: forkState,
    native_table: native,
    js_native_fault: jsFault,
    js_hit: jsHit,
    busy_key: key,
    exiting,
    end_gate: endGate,
    frida_tids: fridaTids,
    app_tids: appTids,
    pthread_self_fn: Module.getGlobalExportByName('pthread_self'),
    pthread_getspecific_fn: Module.getGlobalExportByName('pthread_getspecific'),
    pthread_setspecific_fn: Module.getGlobalExportByName('pthread_setspecific'),
    syscall_fn: stubPage().rawSyscall0,
    sched_getcpu: Module.getGlobalExportByName('sched_getcpu'),
  });
  const setSpecific = new NativeFunction(Module.getGlobalExportByName('pthread_setspecific'), 'int', ['uint', 'pointer']);
  const busy = (fn: () => void) => {
    setSpecific(key.readU32(), ptr(1));
    try {
      fn();
    } finally {
      setSpecific(key.readU32(), NULL);
    }
  };
  return {
    enter: cm.rw_enter,
    exit: cm.rw_exit,
    onExitBegin: cm.on_exit_begin,
    onProcessEnd: cm.on_process_end,
    sites,
    busy,
    keepAlive: [cm, sites, pid, key, exiting, endGate, jsHit, jsFault],
  };
}
