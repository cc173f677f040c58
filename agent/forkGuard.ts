// Keeps fork() away from Frida's JS runtime. Two hazards, both measured with `forker 5 4`
// (four threads running syscall programs while main forks; 6 of 6 runs hung before):
// - The forking thread holds glibc's malloc locks from just before the clone until just
//   after it. If it enters JS then (its clone's syscall callouts), it waits for the JS
//   lock, whose holder may be waiting for malloc: the parent deadlocks.
// - A forked child inherits every hook but none of the threads behind the JS runtime. If
//   one held a runtime lock at the moment of fork(), the child's first JS entry (its _exit
//   hook, a uprobe hit) waits forever.
// So a native listener on fork() marks the forking thread for the length of the call, and
// in the child marks the whole process; every hook that runs on the target's threads
// reads these marks natively before it calls into JS. Forked children run untraced, and
// the forking thread's own syscalls inside fork() (the clone) reach no program (README).
// glibc's atfork handlers cannot do this job: they cannot be removed again (glibc exports
// no __unregister_atfork), so they would outlive the agent's code.

import { hotCallback } from './hotCallback.js';
import { rawAlloc } from './hooks/rawMemory.js';

/** Threads marked as inside fork() at once; a 17th concurrent fork takes over a busy slot. */
const MAX_FORKING = 16;

/**
 * C for any module that guards a JS entry: `extern volatile gint fork_state[];` plus
 * `js_forbidden(tid)`. fork_state: [0] forked child, [1] forks in progress, [2..17] their
 * tids, [18] slot ticket; then the thread-start guard (see followBegin): [19] threads
 * between followBegin() and followEnd(), [20] observing on, [21] ring ticket, [22..85] a
 * ring of thread ids the observer has reported.
 */
export const FORK_GUARD_C = `
extern volatile gint fork_state[];

static int
js_forbidden (gint tid)
{
  if (fork_state[0])
    return 1;
  if (fork_state[1])
  {
    int i;
    for (i = 0; i < ${MAX_FORKING}; i++)
      if (fork_state[2 + i] == tid)
        return 1;
  }
  return 0;
}
`;

const SOURCE = `
#include <gum/guminterceptor.h>

${FORK_GUARD_C}

extern volatile gint agent_pid;
extern int getpid_fn (void);

static gint
current_tid (GumInvocationContext * ic)
{
  return (gint) gum_invocation_context_get_thread_id (ic);
}

#define FOLLOWING (3 + ${MAX_FORKING})
#define OBSERVING (4 + ${MAX_FORKING})
#define RING_TICKET (5 + ${MAX_FORKING})
#define RING_BASE (6 + ${MAX_FORKING})
#define RING 64
extern volatile gint tid_offset;

void
fork_enter (GumInvocationContext * ic)
{
  /* A ticket picks the slot (TinyCC has no compare-and-swap); only a 17th concurrent fork could reuse a busy one. */
  gint slot = g_atomic_int_add (&fork_state[2 + ${MAX_FORKING}], 1) % ${MAX_FORKING};
  fork_state[2 + slot] = current_tid (ic);
  g_atomic_int_add (&fork_state[1], 1); /* locked: a full fence before the read below */
  /* A new thread putting itself under Stalker finishes first (see followBegin). */
  while (fork_state[FOLLOWING] != 0)
    ;
}

static int
was_reported (gint tid)
{
  int i;
  for (i = 0; i < RING; i++)
    if (fork_state[RING_BASE + i] == tid)
      return 1;
  return 0;
}

void
thread_create_enter (GumInvocationContext * ic)
{
  gpointer * out = gum_invocation_context_get_listener_invocation_data (ic, sizeof (gpointer));
  *out = gum_invocation_context_get_nth_argument (ic, 0);
}

/* pthread_create returns once the thread observer has seen the new thread (up to 100 ms). */
void
thread_create_leave (GumInvocationContext * ic)
{
  gpointer * out = gum_invocation_context_get_listener_invocation_data (ic, sizeof (gpointer));
  guint8 * pd;
  gint tid;
  gint64 end;
  if (!fork_state[OBSERVING] || tid_offset <= 0 || gum_invocation_context_get_return_value (ic) != NULL)
    return;
  pd = *(guint8 **) *out;
  tid = *(volatile gint *) (pd + tid_offset);
  end = g_get_monotonic_time () + 100000;
  while (!was_reported (tid) && g_get_monotonic_time () < end)
    g_thread_yield (); /* the new thread needs a CPU to get reported */
}

void
thread_reported (gint tid)
{
  gint i = g_atomic_int_add (&fork_state[RING_TICKET], 1) % RING;
  fork_state[RING_BASE + i] = tid;
}

void
set_observing (gint on)
{
  fork_state[OBSERVING] = on;
}

int
follow_begin (void)
{
  g_atomic_int_add (&fork_state[FOLLOWING], 1);
  if (fork_state[1] == 0)
    return 1;
  g_atomic_int_add (&fork_state[FOLLOWING], -1);
  return 0;
}

void
follow_end (void)
{
  g_atomic_int_add (&fork_state[FOLLOWING], -1);
}

void
fork_leave (GumInvocationContext * ic)
{
  gint tid = current_tid (ic);
  int i;
  if ((gint) GPOINTER_TO_SIZE (gum_invocation_context_get_return_value (ic)) == 0)
    fork_state[0] = 1; /* the child: from now on nothing here enters JS */
  for (i = 0; i < ${MAX_FORKING}; i++)
  {
    if (fork_state[2 + i] == tid)
      fork_state[2 + i] = 0;
  }
  g_atomic_int_add (&fork_state[1], -1);
}

typedef struct {
  void (* on_enter) (gint tid);
  void (* on_leave) (gint tid);
} GatedListener;

static void
gated_call (GumInvocationContext * ic, int leave)
{
  GatedListener * g = gum_invocation_context_get_listener_function_data (ic);
  gint tid = current_tid (ic);
  if (!js_forbidden (tid))
    (leave ? g->on_leave : g->on_enter) (tid);
}

void
gated_enter (GumInvocationContext * ic)
{
  gated_call (ic, 0);
}

void
gated_leave (GumInvocationContext * ic)
{
  gated_call (ic, 1);
}

typedef guint64 (* Fn6) (guint64, guint64, guint64, guint64, guint64, guint64);
typedef guint64 (* JsReplacement) (guint64, guint64, guint64, guint64, guint64, guint64, gint);

typedef struct {
  Fn6 original;
  JsReplacement js;
} GatedReplacement;

guint64
gated_replacement (guint64 a0, guint64 a1, guint64 a2, guint64 a3, guint64 a4, guint64 a5)
{
  GumInvocationContext * ic = gum_interceptor_get_current_invocation ();
  GatedReplacement * g = gum_invocation_context_get_replacement_data (ic);
  gint tid = current_tid (ic);
  if (js_forbidden (tid))
    return g->original (a0, a1, a2, a3, a4, a5);
  return g->js (a0, a1, a2, a3, a4, a5, tid);
}

/* execve() in the process the agent was loaded into (not in a vfork/posix_spawn child). */
void
gated_exec (GumInvocationContext * ic)
{
  void (* on_exec) (gpointer path) = *(gpointer *) gum_invocation_context_get_listener_function_data (ic);
  if (js_forbidden (current_tid (ic)) || getpid_fn () != agent_pid)
    return;
  on_exec (gum_invocation_context_get_nth_argument (ic, 0));
}

/* The exit hook also runs in children made without fork() (vfork, posix_spawn), so it compares pids too. */
void
gated_exit (GumInvocationContext * ic)
{
  GatedListener * g = gum_invocation_context_get_listener_function_data (ic);
  if (js_forbidden (current_tid (ic)) || getpid_fn () != agent_pid)
    return;
  g->on_enter ((gint) GPOINTER_TO_SIZE (gum_invocation_context_get_nth_argument (ic, 0)));
}
`;

type ReplacementArgs = ['uint64', 'uint64', 'uint64', 'uint64', 'uint64', 'uint64', 'int'];
const REPLACEMENT_ARGS: ReplacementArgs = ['uint64', 'uint64', 'uint64', 'uint64', 'uint64', 'uint64', 'int'];
export type ReplacementFn = (a0: UInt64, a1: UInt64, a2: UInt64, a3: UInt64, a4: UInt64, a5: UInt64, tid: number) => UInt64 | number;

/** The native gate's data for one hook; keep it reachable as long as a thread may run it. */
export interface GatedHook {
  readonly data: NativePointer;
  readonly keepAlive: unknown[];
}

class ForkGuard {
  /** fork_state (see FORK_GUARD_C), then agent_pid. */
  readonly state = Memory.alloc(4 * (6 + MAX_FORKING + 64) + 8);
  private readonly agentPid = this.state.add(4 * (6 + MAX_FORKING + 64));
  private readonly tidOffset = this.state.add(4 * (6 + MAX_FORKING + 64) + 4);
  private readonly followBeginFn: NativeFunction<number, []>;
  private readonly followEndFn: NativeFunction<void, []>;
  private readonly threadReportedFn: NativeFunction<void, [number]>;
  private readonly setObservingFn: NativeFunction<void, [number]>;
  private readonly module: CModule;
  private readonly forkListeners: InvocationListener[] = [];

  constructor() {
    // The gates' own getpid is a raw syscall in immortal code, not libc's: with
    // `--syscalls rewrite` libc's getpid is a traced site, and every exit and exec of the
    // target would show one getpid of ours.
    const getpid = rawAlloc(8, 'code');
    getpid.writeByteArray([0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3]); // mov $39,%eax; syscall; ret
    this.agentPid.writeS32(new NativeFunction(getpid, 'int', [])() as number);
    this.module = new CModule(SOURCE, { fork_state: this.state, agent_pid: this.agentPid, tid_offset: this.tidOffset, getpid_fn: getpid });
    this.followBeginFn = new NativeFunction(this.module.follow_begin, 'int', [], { scheduling: 'exclusive' });
    this.followEndFn = new NativeFunction(this.module.follow_end, 'void', [], { scheduling: 'exclusive' });
    this.threadReportedFn = new NativeFunction(this.module.thread_reported, 'void', ['int'], { scheduling: 'exclusive' });
    this.setObservingFn = new NativeFunction(this.module.set_observing, 'void', ['int'], { scheduling: 'exclusive' });
    const pthreadCreate = Module.findGlobalExportByName('pthread_create');
    if (pthreadCreate !== null) {
      this.forkListeners.push(Interceptor.attach(pthreadCreate, { onEnter: this.module.thread_create_enter, onLeave: this.module.thread_create_leave }));
    }
    // Frida replaces vfork with fork, so both arrive here. Listeners go when the script unloads.
    const fork = Module.findGlobalExportByName('fork');
    if (fork !== null) {
      this.forkListeners.push(Interceptor.attach(fork, { onEnter: this.module.fork_enter, onLeave: this.module.fork_leave }));
    }
  }

  /**
   * New threads and fork() (measured with forker 10 4, which forks right after starting
   * its threads, and a syscall program on an unrelated syscall): a thread still starting
   * (not yet through the thread observer, or putting itself under Stalker) when another
   * thread forked crashed at address 0 with a zeroed stack, in 5 to 8 of 20 runs; with a
   * 300 ms pause before the forks, never. Two guards, 0 of 60 runs since:
   * - setObserving(): while syscalls are traced, pthread_create returns only once the
   *   thread observer has reported the new thread (at most 100 ms), so its creator
   *   cannot fork while it starts;
   * - followBegin()/followEnd() bracket the self-follow; forks that begin meanwhile wait,
   *   and a thread that finds a fork under way is followed later by id instead.
   */
  followBegin(): boolean {
    return this.followBeginFn() !== 0;
  }

  followEnd(): void {
    this.followEndFn();
  }

  threadReported(tid: number): void {
    this.threadReportedFn(tid);
  }

  /** While on, pthread_create waits for the thread observer to report the new thread (see followBegin). */
  setObserving(on: boolean, tidOffset: number): void {
    this.tidOffset.writeS32(tidOffset);
    this.setObservingFn(on ? 1 : 0);
  }

  /** Interceptor.attach(target, callbacks, hook.data): JS runs only where forkGuard allows it. */
  listener(onEnter?: (tid: number) => void, onLeave?: (tid: number) => void): { callbacks: NativeInvocationListenerCallbacks; hook: GatedHook } {
    const enter = onEnter ? hotCallback(onEnter, 'void', ['int']) : null;
    const leave = onLeave ? hotCallback(onLeave, 'void', ['int']) : null;
    const data = Memory.alloc(2 * Process.pointerSize);
    data.writePointer(enter ?? NULL);
    data.add(Process.pointerSize).writePointer(leave ?? NULL);
    const callbacks: NativeInvocationListenerCallbacks = {};
    if (enter) callbacks.onEnter = this.module.gated_enter;
    if (leave) callbacks.onLeave = this.module.gated_leave;
    return { callbacks, hook: { data, keepAlive: [enter, leave, data, this.module] } };
  }

  /** A listener for _exit: `onExit(status)` runs only in the process the agent was loaded into. */
  exitListener(onExit: (status: number) => void): { callbacks: NativeInvocationListenerCallbacks; hook: GatedHook } {
    const cb = new NativeCallback(onExit, 'void', ['int']);
    const data = Memory.alloc(2 * Process.pointerSize);
    data.writePointer(cb);
    return { callbacks: { onEnter: this.module.gated_exit }, hook: { data, keepAlive: [cb, data, this.module] } };
  }

  /** A listener for execve: `onExec(path)` runs only in the process the agent was loaded into. */
  execListener(onExec: (path: NativePointer) => void): { callbacks: NativeInvocationListenerCallbacks; hook: GatedHook } {
    const cb = new NativeCallback(onExec, 'void', ['pointer']);
    const data = Memory.alloc(Process.pointerSize);
    data.writePointer(cb);
    return { callbacks: { onEnter: this.module.gated_exec }, hook: { data, keepAlive: [cb, data, this.module] } };
  }

  /**
   * Interceptor.replace(target, replacement, hook.data): where JS is forbidden the original
   * runs directly; elsewhere `js(args…, tid)` decides.
   */
  replacement(target: NativePointer, js: ReplacementFn): { replacement: NativePointer; hook: GatedHook } {
    const cb = hotCallback(js, 'uint64', REPLACEMENT_ARGS);
    const data = Memory.alloc(2 * Process.pointerSize);
    // Calling the target from inside its own replacement reaches the original code.
    data.writePointer(target);
    data.add(Process.pointerSize).writePointer(cb);
    return { replacement: this.module.gated_replacement, hook: { data, keepAlive: [cb, data, this.module] } };
  }
}

let instance: ForkGuard | null = null;

/** The process-wide guard, made on first use. */
export function forkGuard(): ForkGuard {
  instance ??= new ForkGuard();
  return instance;
}
