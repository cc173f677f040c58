// A spawned target's exit status is reaped by Frida's helper, not by us, so the agent
// reports it from inside, with the final counts and maps, since nobody can ask for them
// afterwards. It listens on _exit (every normal exit ends there, exit() included, after
// the atexit handlers) and must be the last listener there: the syscall implementation's
// sys_enter_exit_group programs run from a listener on _exit too, and their map updates
// belong in the snapshot. rearm() moves it back to the end after other hooks are added.
// Frida does not hold the process back until queued messages are delivered (measured:
// the last batch was lost in 3 of 5 exits), so the exiting thread waits for the host to
// acknowledge. The host acknowledges every exit event it receives; if it is gone, the
// agent is unloaded with the session and the wait ends with it.

import type { AgentEvent } from '../protocol/messages.js';
import { EXIT_ACK } from '../protocol/messages.js';
import type { EventQueue } from './events.js';

const getpidFn = new NativeFunction(Module.getGlobalExportByName('getpid'), 'int', [], { scheduling: 'exclusive', exceptions: 'propagate' });
/** The real pid (a syscall): Process.id is the agent's, and a forked child inherits it. */
const getpid = (): number => getpidFn() as number;

export class ExitMonitor {
  private listeners: InvocationListener[] = [];
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

  /** The process this agent was loaded into; a forked child copies the hooks but is not it. */
  private readonly pid = getpid();

  /** (Re)attaches after every other listener, so the snapshot sees their effects. */
  rearm(): void {
    this.detach();
    const { events, finalSnapshot, pid } = this;
    this.listeners = this.targets.map((addr) =>
      Interceptor.attach(addr, {
        onEnter(args) {
          // In a forked child nobody would ever acknowledge: waiting would hang it forever.
          if (getpid() !== pid) return;
          events.push(finalSnapshot());
          events.push({ type: 'exit', status: args[0].toInt32() & 0xff });
          events.flush();
          recv(EXIT_ACK, () => undefined).wait();
        },
      }),
    );
  }

  detach(): void {
    for (const l of this.listeners.splice(0)) l.detach();
  }
}
