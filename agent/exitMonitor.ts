// A spawned target's exit status is reaped by Frida's helper, not by us, so the agent
// reports it from inside: exit() and _exit() carry it as their first argument, and the
// final counts and maps go with it, since nobody can ask for them afterwards.
// Frida does not hold the process back until queued messages are delivered (measured:
// the last batch was lost in 3 of 5 exits), so the exiting thread waits for the host
// to acknowledge. The host acknowledges every exit event it receives; if it is gone, the
// agent is unloaded with the session and the wait ends with it.

import type { AgentEvent } from '../protocol/messages.js';
import { EXIT_ACK } from '../protocol/messages.js';
import type { EventQueue } from './events.js';

export function monitorExit(events: EventQueue, finalSnapshot: () => AgentEvent): InvocationListener[] {
  const listeners: InvocationListener[] = [];
  for (const name of ['exit', '_exit', '_Exit']) {
    const addr = Module.findGlobalExportByName(name);
    if (addr === null) continue;
    listeners.push(
      Interceptor.attach(addr, {
        onEnter(args) {
          events.push(finalSnapshot());
          events.push({ type: 'exit', status: args[0].toInt32() & 0xff });
          events.flush();
          recv(EXIT_ACK, () => undefined).wait();
        },
      }),
    );
  }
  return listeners;
}
