// UPROBE, URETPROBE and UPROBE_OVERRIDE for programs that need no JS (NativeRunner): a
// CModule listener (or replacement) fills pt_regs and runs the program through the VM's
// bpfvm_run_with_ctx (bpfvm_run_with_override for overrides), so a hit never enters JS. It costs Frida's native listener floor plus the run, instead of the ~3 µs of
// a JS entry (bench/uprobe.bench.ts). Each probe has its own block with an active flag and
// an inflight count: detaching clears the flag and waits for threads already inside, so
// the engine library can be unloaded right after.

import { checkLayout, type ExpectedLayout } from '../../cmodules/checkLayout.js';
import { NATIVE_PROBE_C } from '../../cmodules/generated/nativeProbe_c.js';
import type { NativeRunner } from '../../runtime/AttachImpl.js';
import { forkGuard } from '../../forkGuard.js';
import { PT_REGS_SIZE } from './ptRegs.js';

/** Layout of a probe block: Probe in agent/cmodules/nativeProbe.c (checked by PROBE_LAYOUT). */
const P = { run: 0, ctxAddr: 8, enabled: 16, handle: 24, active: 28, inflight: 32, runOverride: 40, original: 48, size: 56 } as const;

/** native_probe_layout's order. */
const PROBE_LAYOUT: ExpectedLayout = [
  ['sizeof (Probe)', P.size],
  ['run', P.run],
  ['ctx_addr', P.ctxAddr],
  ['enabled', P.enabled],
  ['handle', P.handle],
  ['active', P.active],
  ['inflight', P.inflight],
  ['run_override', P.runOverride],
  ['original', P.original],
  ['sizeof (struct pt_regs)', PT_REGS_SIZE],
];

interface ProbeModule {
  cm: CModule;
  quiesce: NativeFunction<void, [NativePointer]>;
  fault: NativeCallback<'void', ['uint', 'int']>;
}

let shared: ProbeModule | null = null;
/** The runner whose faults the shared module reports (one runtime at a time). */
let currentRunner: NativeRunner | null = null;

function module(): ProbeModule {
  if (shared === null) {
    const fault = new NativeCallback((handle: number, status: number) => currentRunner?.fault(handle, status), 'void', ['uint', 'int']);
    const cm = new CModule(NATIVE_PROBE_C, { fork_state: forkGuard().state, js_fault: fault });
    checkLayout(cm, 'native_probe_layout', PROBE_LAYOUT);
    const quiesce = new NativeFunction(cm.quiesce, 'void', ['pointer'], { scheduling: 'exclusive' });
    shared = { cm, quiesce, fault };
  }
  return shared;
}

/** A probe's native block; kept for the agent's lifetime once made (threads may still read it). */
export class NativeProbe {
  private readonly block = Memory.alloc(P.size);
  private static readonly retired: NativeProbe[] = [];

  constructor(runner: NativeRunner, handle: number) {
    currentRunner = runner;
    this.block.add(P.run).writePointer(runner.run);
    this.block.add(P.ctxAddr).writeU64(runner.ctxAddr);
    this.block.add(P.enabled).writePointer(runner.enabled);
    this.block.add(P.handle).writeU32(handle);
    this.block.add(P.active).writeS32(1);
  }

  /** Interceptor.attach(target, callbacks, data) for an entry or a return probe. */
  listener(atReturn: boolean): { callbacks: NativeInvocationListenerCallbacks; data: NativePointer } {
    const cm = module().cm;
    return { callbacks: atReturn ? { onLeave: cm.on_leave } : { onEnter: cm.on_enter }, data: this.block };
  }

  /** Interceptor.replace(target, replacement, data) for an override program. */
  replacement(runner: NativeRunner, target: NativePointer): { replacement: NativePointer; data: NativePointer } {
    this.block.add(P.runOverride).writePointer(runner.runWithOverride);
    this.block.add(P.original).writePointer(target);
    return { replacement: module().cm.on_replace, data: this.block };
  }

  /** After the listener is detached: waits until no thread is still running the program. */
  retire(): void {
    module().quiesce(this.block);
    NativeProbe.retired.push(this);
  }
}
