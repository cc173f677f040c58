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

import { checkLayout, type ExpectedLayout } from './cmodules/checkLayout.js';
import { FORK_GUARD_C as FORK_GUARD_SOURCE } from './cmodules/generated/forkGuard_c.js';
import { FORK_GUARD_H } from './cmodules/generated/forkGuard_h.js';
import { hotCallback } from './hotCallback.js';
import { jsHoldWords } from './interceptorCommit.js';

/** Threads marked as inside fork() at once; a 17th concurrent fork takes over a busy slot. */
const MAX_FORKING = 16;

/**
 * C for any module that guards a JS entry: `extern volatile gint fork_state[];` plus
 * `js_forbidden(tid)` (agent/cmodules/forkGuard.h, which documents fork_state's words).
 */
export const FORK_GUARD_C = FORK_GUARD_H;

/** fork_state's gint words (FORK_GUARD_WORDS in forkGuard.h). */
const FORK_STATE_WORDS = 6 + MAX_FORKING + 64;

/** fork_guard_layout's order: what the gates and fork_state below assume of the C. */
const GUARD_LAYOUT: ExpectedLayout = [
  ['FORK_GUARD_MAX_FORKING', MAX_FORKING],
  ['FORK_GUARD_WORDS', FORK_STATE_WORDS],
  ['sizeof (GatedListener)', 2 * Process.pointerSize],
  ['GatedListener.on_leave', Process.pointerSize],
  ['sizeof (GatedReplacement)', 2 * Process.pointerSize],
  ['GatedReplacement.js', Process.pointerSize],
];

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
  readonly state = Memory.alloc(4 * FORK_STATE_WORDS + 8);
  private readonly agentPid = this.state.add(4 * FORK_STATE_WORDS);
  private readonly tidOffset = this.state.add(4 * FORK_STATE_WORDS + 4);
  private readonly followBeginFn: NativeFunction<number, []>;
  private readonly followEndFn: NativeFunction<void, []>;
  private readonly threadReportedFn: NativeFunction<void, [number]>;
  private readonly setObservingFn: NativeFunction<void, [number]>;
  private readonly module: CModule;
  private readonly forkListeners: InvocationListener[] = [];

  constructor() {
    const getpid = Module.getGlobalExportByName('getpid');
    this.agentPid.writeS32(new NativeFunction(getpid, 'int', [])() as number);
    this.module = new CModule(FORK_GUARD_SOURCE, { fork_state: this.state, agent_pid: this.agentPid, tid_offset: this.tidOffset, getpid_fn: getpid, js_hold: jsHoldWords() });
    checkLayout(this.module, 'fork_guard_layout', GUARD_LAYOUT);
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
