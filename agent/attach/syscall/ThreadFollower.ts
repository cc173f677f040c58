// Puts every thread of the process, present and future, under Stalker with the syscall
// transform. Existing threads are followed by id (Frida's ptrace helper redirects them);
// a new thread reports itself through the thread observer synchronously, on its own
// thread, before its start routine runs, so it follows itself without ptrace.

import { findMain } from './findMain.js';
import { ThreadState } from './threadState.js';
import { forkGuard } from '../../forkGuard.js';
import { findTidOffset } from './syscallFilter.js';

/**
 * Frida's own threads (JS loop, GLib main loop, D-Bus, agent workers). Gum cloaks them so
 * they are normally not reported at all; the names are a second line of defence, since
 * stalking the thread that runs our JS would deadlock on the JS lock.
 */
const FRIDA_THREAD = /^(gum-|gmain$|gdbus$|frida-|pool-frida)/;

export function isFridaThread(t: { id: number; name?: string; entrypoint?: { routine: NativePointer } }): boolean {
  if (Cloak.hasThread(t.id)) return true;
  if (t.name !== undefined && FRIDA_THREAD.test(t.name)) return true;
  // Threads the agent starts late (two appear while the process exits) are reported
  // before Gum cloaks or names them; their start routine lives in the cloaked agent.
  const routine = t.entrypoint?.routine;
  return routine !== undefined && Cloak.hasRangeContaining(routine);
}

export class ThreadFollower {
  /** Index = slot passed to the callouts; never reused (a dead thread's block may still be read by its last callout). */
  readonly states: ThreadState[] = [];
  private readonly byTid = new Map<number, ThreadState>();
  private observer: ThreadObserver | null = null;
  /** Threads whose follow failed (seccomp, another tracer), reported once each. */
  readonly failures: string[] = [];

  /** Start hooks of threads still waiting to reach __libc_start_main. */
  private readonly pendingStarts = new Set<InvocationListener>();

  constructor(
    private readonly transform: NativePointer,
    /** Translated blocks holding a syscall (SyscallFilter.syscallBlocks). */
    private readonly syscallBlocks: () => NativePointer[] = () => [],
  ) {}

  get active(): boolean {
    return this.observer !== null;
  }

  /** The state of a followed thread, or a fresh unfollowed one (for hooks outside Stalker). */
  stateOf(tid: number): ThreadState {
    const known = this.byTid.get(tid);
    if (known) return known;
    const state = new ThreadState(this.states.length, tid);
    this.states.push(state);
    return state;
  }

  followedTids(): number[] {
    return [...this.byTid.keys()];
  }

  start(): void {
    if (this.observer) return;
    forkGuard().setObserving(true, findTidOffset());
    this.observer = Process.attachThreadObserver({
      onAdded: (t) => {
        const guard = forkGuard();
        try {
          if (isFridaThread(t)) return;
          if (!guard.followBegin()) {
            // A fork is under way: follow by id once it is over (ptrace, from the JS thread).
            setTimeout(() => this.follow(t.id, t.name), 5);
            return;
          }
          try {
            this.follow(t.id, t.name);
          } finally {
            guard.followEnd();
          }
        } finally {
          // Releases the pthread_create that started it (see ForkGuard.setObserving).
          guard.threadReported(t.id);
        }
      },
      onRemoved: (t) => {
        // The thread is on its way out; Stalker drops its context itself. Forget the tid
        // (ids get reused) but keep the slot's block alive.
        this.byTid.delete(t.id);
      },
    });
  }

  /**
   * Unfollows every thread; returns the threads still inside a syscall they entered under
   * Stalker (blocked in read(), poll(), ...). Each returns through Stalker's code and our
   * exit callout, so Frida keeps the agent (not the hooks) in the target until it does.
   */
  stop(): { tid: number; nr: number }[] {
    if (this.observer) {
      forkGuard().setObserving(false, 0);
      this.observer.detach();
      this.observer = null;
    }
    for (const l of this.pendingStarts) l.detach();
    this.pendingStarts.clear();
    const tids = [...this.byTid.keys()];
    for (const tid of tids) {
      try {
        Stalker.unfollow(tid);
      } catch {
        // Already gone.
      }
    }
    // unfollow() only marks a running thread; it leaves at its next pass through Stalker's
    // dispatcher, which a thread looping over linked blocks never makes (measured: never,
    // so the script's unload waited out its 5 s timeout twice and the agent stayed in the
    // target). Invalidating the blocks that hold a syscall sends each thread through the
    // dispatcher at its next syscall. A thread blocked in a syscall leaves when it returns.
    const blocks = this.syscallBlocks();
    for (const tid of tids) {
      for (const block of blocks) {
        try {
          Stalker.invalidate(tid, block);
        } catch {
          // The thread is gone, or never ran that block.
        }
      }
    }
    const states = [...this.byTid.values()];
    this.byTid.clear();
    Stalker.garbageCollect();
    // Threads in tight loops pass through a syscall every few µs; give them a moment.
    let blocked = states.filter((s) => s.inSyscall() && threadAlive(s.tid));
    for (let waited = 0; blocked.length > 0 && waited < 200; waited += 10) {
      Thread.sleep(0.01);
      blocked = blocked.filter((s) => s.inSyscall() && threadAlive(s.tid));
    }
    return blocked.map((s) => ({ tid: s.tid, nr: s.nr() }));
  }

  /**
   * A spawned process's main thread sits in a ptrace stop owned by Frida until resume(),
   * and resuming restores its saved registers, undoing the redirect Stalker.follow(tid)
   * made. Such a thread follows itself instead when it reaches main() (found through _start
   * when the binary is stripped, see findMain.ts); its syscalls before main() are not
   * traced. __libc_start_main is the last resort: the thread is usually inside it already.
   */
  private followAtStart(state: ThreadState): void {
    const start = findMain() ?? Module.findGlobalExportByName('__libc_start_main');
    if (start === null) {
      this.failures.push(`thread ${state.tid}: stopped by a tracer and no __libc_start_main or main to catch it at`);
      return;
    }
    this.byTid.set(state.tid, state);
    const transform = this.transform;
    const pending = this.pendingStarts;
    const listener = Interceptor.attach(start, {
      onEnter() {
        if (this.threadId !== state.tid) return;
        Stalker.follow(state.tid, { transform, data: state.block } as StalkerOptions);
        listener.detach();
        pending.delete(listener);
      },
    });
    this.pendingStarts.add(listener);
  }

  private follow(tid: number, name?: string): void {
    if (this.byTid.has(tid)) return;
    const state = new ThreadState(this.states.length, tid);
    this.states.push(state);
    if (tid !== Process.getCurrentThreadId() && stoppedByTracer(tid)) {
      this.followAtStart(state);
      return;
    }
    try {
      // For the current thread (a new one reporting itself) this is follow-me: it takes
      // effect when the observer callback returns to native code.
      Stalker.follow(tid, { transform: this.transform, data: state.block } as StalkerOptions);
      this.byTid.set(tid, state);
    } catch (e) {
      this.failures.push(`thread ${tid}${name ? ` (${name})` : ''}: ${(e as Error).message}`);
    }
  }
}

/** Whether a thread is in a stop ('t' traced, 'T' stopped) per /proc: it cannot be redirected now. */
function stoppedByTracer(tid: number): boolean {
  try {
    const stat = File.readAllText(`/proc/self/task/${tid}/stat`);
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state === 't' || state === 'T';
  } catch {
    return false;
  }
}

function threadAlive(tid: number): boolean {
  try {
    File.readAllText(`/proc/self/task/${tid}/stat`);
    return true;
  } catch {
    return false;
  }
}
