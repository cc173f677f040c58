// A spawned target's exit status is reaped by Frida's helper, not by us, so the agent
// reports it from inside, with the final counts and maps, since nobody can ask for them
// afterwards. It listens on _exit (every normal exit ends there, exit() included, after
// the atexit handlers), and on execve (the new image has no agent), and must be the last
// listener on _exit: the syscall implementation's
// sys_enter_exit_group programs run from a listener on _exit too, and their map updates
// belong in the snapshot. rearm() moves it back to the end after other hooks are added.
// Frida does not hold the process back until queued messages are delivered (measured:
// the last batch was lost in 3 of 5 exits), so the exiting thread waits for the host to
// acknowledge. The host acknowledges every exit event it receives; if it is gone, the
// agent is unloaded with the session and the wait ends with it.

import type { AgentEvent } from '../protocol/messages.js';
import { EXIT_ACK } from '../protocol/messages.js';
import type { EventQueue } from './events.js';
import { forkGuard, type GatedHook } from './forkGuard.js';

export class ExitMonitor {
  private listeners: InvocationListener[] = [];
  /**
   * Every gated hook ever made stays reachable: a thread can be between the native gate
   * and its NativeCallback when a rearm() detaches the listener. A few bytes per load.
   */
  private readonly hooks: GatedHook[] = [];
  private readonly targets: NativePointer[] = [];

  constructor(
    private readonly events: EventQueue,
    private readonly finalSnapshot: () => AgentEvent,
  ) {
    for (const name of ['_exit', '_Exit']) {
      const addr = Module.findGlobalExportByName(name);
      // _Exit is an alias of _exit in glibc: one listener per address.
      if (addr !== null && !this.targets.some((t) => t.equals(addr))) this.targets.push(addr);
    }
    this.rearm();
  }

  /** (Re)attaches after every other listener, so the snapshot sees their effects. */
  rearm(): void {
    this.detach();
    const { events, finalSnapshot } = this;
    // A forked child never gets here (forkGuard): nobody would acknowledge, and entering
    // JS there may wait on a lock held by a thread that only exists in the parent.
    const { callbacks, hook } = forkGuard().exitListener((status) => {
      events.push(finalSnapshot());
      events.push({ type: 'exit', status: status & 0xff });
      events.flush();
      recv(EXIT_ACK, () => undefined).wait();
    });
    this.hooks.push(hook);
    this.listeners = this.targets.map((addr) => Interceptor.attach(addr, callbacks, hook.data));
    // execve() ends the agent with the old image: the last chance for the maps, as at exit.
    const execve = Module.findGlobalExportByName('execve');
    if (execve !== null) {
      const exec = forkGuard().execListener((path) => {
        events.push(finalSnapshot());
        events.push({ type: 'exec', path: path.isNull() ? '' : (path.readUtf8String() ?? '') });
        events.flush();
        recv(EXIT_ACK, () => undefined).wait();
      });
      this.hooks.push(exec.hook);
      this.listeners.push(Interceptor.attach(execve, exec.callbacks, exec.hook.data));
    }
  }

  detach(): void {
    for (const l of this.listeners.splice(0)) l.detach();
  }
}
