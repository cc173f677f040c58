// Agent entry point: everything that runs inside the target is wired here and exposed to
// the host through rpc.exports (typed by AgentRpc in protocol/messages.ts). Attach
// implementations register with the runtime here, so the runtime never imports them.

import type { AgentInfo, AgentRpc, AttachResult, DetachResult, FinalSnapshot, HookTarget, LoadRequest, MapDump } from '../protocol/messages.js';
import { DEFAULT_SYSCALL_MECHANISM } from '../protocol/messages.js';
import { SyscallAttachImpl } from './attach/syscall/SyscallAttachImpl.js';
import { UprobeAttachImpl } from './attach/uprobe/UprobeAttachImpl.js';
import { EventQueue } from './events.js';
import { ExitMonitor } from './exitMonitor.js';
import { HitCounter } from './hitCounter.js';
import { keepHeapSmall } from './heapKeeper.js';
import { drainInterceptor } from './interceptorDrain.js';
import { InlineProbe } from './hooks/inlineProbe.js';
import { stopUnwindGuardWatch } from './hooks/unwindGuard.js';
import { trapSites } from './attach/uprobe/trapSites.js';
import { Runtime } from './runtime/Runtime.js';
import * as proc from './runtime/fridaProcessInfo.js';

const events = new EventQueue();
let counter: HitCounter | null = null;
let runtime: Runtime | null = null;
let syscallImpl: SyscallAttachImpl | null = null;
/** Once wasm ran in this script it must never be unloaded (DetachResult.keepResident). */
let usedWasm = false;

function newRuntime(): Runtime {
  const rt = new Runtime(events);
  rt.registerAttachImpl(new UprobeAttachImpl());
  syscallImpl = new SyscallAttachImpl();
  rt.registerAttachImpl(syscallImpl);
  return rt;
}

/** What the CLI prints at the end: counts, maps and stats, records produced and dropped per map. */
function snapshot(): FinalSnapshot {
  const records = runtime?.recordStats() ?? [];
  return {
    hitCounts: counter?.counts() ?? {},
    maps: runtime?.mapDump() ?? [],
    stats: runtime?.stats() ?? [],
    droppedRecords: records.reduce((n, r) => n + r.dropped, 0),
    pending: runtime?.pending() ?? [],
    records,
  };
}

const exitMonitor = new ExitMonitor(events, () => ({ type: 'snapshot', ...snapshot() }));

// Only hits that ran in JS make garbage; native-path hits are counted by the VM and skipped here.
keepHeapSmall(() => runtime?.jsHits() ?? 0);

function probeCModule(): boolean {
  try {
    const cm = new CModule('int bpftime_ts_probe (void) { return 42; }');
    return new NativeFunction(cm.bpftime_ts_probe, 'int', [])() === 42;
  } catch {
    return false;
  }
}

function requireRuntime(): Runtime {
  if (!runtime) throw new Error('no eBPF objects are loaded');
  return runtime;
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
    const results = counter.add(targets);
    exitMonitor.rearm();
    return results;
  },
  hitCounts(): Record<string, number> {
    return counter?.counts() ?? {};
  },
  load(request: LoadRequest): AttachResult[] {
    runtime ??= newRuntime();
    syscallImpl?.setMechanism(request.syscalls ?? DEFAULT_SYSCALL_MECHANISM);
    if (request.engine.kind === 'wasm') usedWasm = true;
    if (request.batchSize) events.setBatchSize(request.batchSize);
    if (request.queueCapacity) events.setCapacity(request.queueCapacity);
    const results = runtime.load(request);
    exitMonitor.rearm();
    return results;
  },
  mapLookup: (object, map, key) => requireRuntime().mapLookup(object, map, key),
  mapUpdate: (object, map, key, value, flags) => requireRuntime().mapUpdate(object, map, key, value, flags),
  mapDelete: (object, map, key) => requireRuntime().mapDelete(object, map, key),
  mapDump: (): MapDump[] => runtime?.mapDump() ?? [],
  stats: () => {
    const s = snapshot();
    return { programs: s.stats, droppedRecords: s.droppedRecords, pending: s.pending, records: s.records };
  },
  symbolize: (addresses: string[]) => addresses.map((a) => proc.symbolize(BigInt(a))),
  releaseStdio(fds: number[]): number[] {
    const libc = (name: string) => Module.getGlobalExportByName(name);
    const open = new NativeFunction(libc('open'), 'int', ['pointer', 'int']);
    const dup2 = new NativeFunction(libc('dup2'), 'int', ['int', 'int']);
    const close = new NativeFunction(libc('close'), 'int', ['int']);
    const O_WRONLY = 1;
    const devNull = open(Memory.allocUtf8String('/dev/null'), O_WRONLY) as number;
    if (devNull < 0) return [];
    // dup2 swaps a descriptor atomically: a write on another thread lands in one or the other.
    const done = fds.filter((fd) => (dup2(devNull, fd) as number) === fd);
    close(devNull);
    return done;
  },
  detachAll(): DetachResult {
    counter?.detachAll();
    // Taken once no hook can run and before the VM goes: every update made before the
    // detach is in it, and every record queued before it reaches the host first (flush).
    let final: FinalSnapshot | null = null;
    if (runtime) runtime.detachAll(() => (final = snapshot()));
    else if (counter) final = snapshot();
    runtime = null;
    exitMonitor.detach();
    stopUnwindGuardWatch();
    // Our listeners are CModule code, unmapped when the script unloads right after this
    // call: no thread may still be on its way into one (see interceptorDrain.ts).
    drainInterceptor();
    events.flush();
    // Let V8 collect the wasm instance now, while the script is whole (see README: a
    // script torn down with a live wasm instance has crashed the target).
    (globalThis as unknown as { gc?: () => void }).gc?.();
    return { blockedThreads: syscallImpl?.blockedAtDetach ?? 0, final, keepResident: usedWasm };
  },
};

/**
 * Frida calls rpc.exports.dispose when it unloads the script, also when the host died
 * without calling detachAll (sidecar SIGKILLed). Inline stubs outlive the script, but the
 * JS callbacks, VM and fork guard they call do not: take every inline probe out of the
 * program now, synchronously. After a normal detachAll there is nothing left to do.
 */
function onScriptUnload(): void {
  // No host is listening any more to hear about a probe that stayed inactive but patched.
  InlineProbe.detachEverything();
  stopUnwindGuardWatch();
  // Interceptor's USDT trampolines go with the script: their int3s lead past the nop instead.
  trapSites().retireAll();
}

rpc.exports = { ...api, dispose: onScriptUnload } as unknown as RpcExports;
