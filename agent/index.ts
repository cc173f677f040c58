// Agent entry point: everything that runs inside the target is wired here and exposed to
// the host through rpc.exports (typed by AgentRpc in protocol/messages.ts).

import type { AgentInfo, AgentRpc, AttachResult, HookTarget } from '../protocol/messages.js';
import { EventQueue } from './events.js';
import { monitorExit } from './exitMonitor.js';
import { HitCounter } from './hitCounter.js';

const events = new EventQueue();
let counter: HitCounter | null = null;
const exitListeners = monitorExit(events, () => ({ type: 'snapshot', hitCounts: counter?.counts() ?? {} }));

function probeCModule(): boolean {
  try {
    const cm = new CModule('int bpftime_ts_probe (void) { return 42; }');
    return new NativeFunction(cm.bpftime_ts_probe, 'int', [])() === 42;
  } catch {
    return false;
  }
}

const api: AgentRpc = {
  ping(): AgentInfo {
    return {
      pid: Process.id,
      arch: Process.arch,
      runtime: Script.runtime,
      fridaVersion: Frida.version,
      webAssembly: typeof (globalThis as { WebAssembly?: unknown }).WebAssembly === 'object',
      cmodule: probeCModule(),
    };
  },
  countHits(targets: HookTarget[]): AttachResult[] {
    counter ??= new HitCounter(events);
    return counter.add(targets);
  },
  hitCounts(): Record<string, number> {
    return counter?.counts() ?? {};
  },
  detachAll(): void {
    counter?.detachAll();
    for (const l of exitListeners.splice(0)) l.detach();
    Interceptor.flush();
    events.flush();
  },
};

rpc.exports = api as unknown as RpcExports;
