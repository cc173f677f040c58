// UPROBE, URETPROBE and UPROBE_OVERRIDE for programs that need no JS (NativeRunner): a
// CModule listener (or replacement) fills pt_regs and runs the program through the VM's
// bpfvm_run_with_ctx (bpfvm_run_with_override for overrides), so a hit never enters JS. It costs Frida's native listener floor plus the run, instead of the ~3 µs of
// a JS entry (bench/uprobe.bench.ts). Each probe has its own block with an active flag and
// an inflight count: detaching clears the flag and waits for threads already inside, so
// the engine library can be unloaded right after.

import type { NativeRunner } from '../../runtime/AttachImpl.js';
import { FORK_GUARD_C, forkGuard } from '../../forkGuard.js';
import { PT_REGS_FILL_C } from './ptRegsFill.js';
import { PT_REGS_SIZE } from './ptRegs.js';

/** Layout of a probe block (mirrors Probe in the C below). */
const P = { run: 0, ctxAddr: 8, enabled: 16, handle: 24, active: 28, inflight: 32, runOverride: 40, original: 48, size: 56 } as const;

const SOURCE = `
#include <gum/guminterceptor.h>
${FORK_GUARD_C}
${PT_REGS_FILL_C}

typedef gint32 (* RunFn) (guint32 handle, guint64 ctx, const void * src, guint64 len);
typedef gint32 (* RunOverrideFn) (guint32 handle, guint64 ctx, const void * src, guint64 len, gint64 * override);
typedef guint64 (* Fn6) (guint64, guint64, guint64, guint64, guint64, guint64);

typedef struct {
  RunFn run;
  guint64 ctx_addr;
  volatile guint8 * enabled;
  guint32 handle;
  volatile gint active;
  volatile gint inflight;
  RunOverrideFn run_override;
  Fn6 original; /* the target itself: called from its replacement, it runs the original code */
} Probe;

extern void js_fault (guint32 handle, gint32 status);

static void
run_probe (GumInvocationContext * ic, int at_return)
{
  Probe * p = gum_invocation_context_get_listener_function_data (ic);
  guint64 regs[${PT_REGS_SIZE / 8}];
  gint32 st = 0;
  /* Not in a forked child, nor on a thread inside fork() (forkGuard.ts). */
  if (fork_state[0] || (fork_state[1] && js_forbidden ((gint) gum_invocation_context_get_thread_id (ic))))
    return;
  g_atomic_int_add (&p->inflight, 1); /* locked: a full fence before reading active */
  if (p->active && p->enabled[p->handle])
  {
    GumCpuContext * c = ic->cpu_context;
    if (at_return)
      fill (regs, c, GPOINTER_TO_SIZE (gum_invocation_context_get_return_address (ic)), c->rax);
    else
      fill (regs, c, GPOINTER_TO_SIZE (ic->function), c->rax);
    st = p->run (p->handle, p->ctx_addr, regs, sizeof (regs));
  }
  g_atomic_int_add (&p->inflight, -1);
  if (st != 0)
    js_fault (p->handle, st);
}

void
on_enter (GumInvocationContext * ic)
{
  run_probe (ic, 0);
}

void
on_leave (GumInvocationContext * ic)
{
  run_probe (ic, 1);
}

/* UPROBE_OVERRIDE: the program runs first; the original only when it did not override. */
guint64
on_replace (guint64 a0, guint64 a1, guint64 a2, guint64 a3, guint64 a4, guint64 a5)
{
  GumInvocationContext * ic = gum_interceptor_get_current_invocation ();
  Probe * p = gum_invocation_context_get_replacement_data (ic);
  guint64 regs[${PT_REGS_SIZE / 8}];
  gint64 override[2] = { 0, 0 };
  gint32 st = 0;
  if (fork_state[0] || (fork_state[1] && js_forbidden ((gint) gum_invocation_context_get_thread_id (ic))))
    return p->original (a0, a1, a2, a3, a4, a5);
  g_atomic_int_add (&p->inflight, 1);
  if (p->active && p->enabled[p->handle])
  {
    fill (regs, ic->cpu_context, GPOINTER_TO_SIZE (ic->function), ic->cpu_context->rax);
    st = p->run_override (p->handle, p->ctx_addr, regs, sizeof (regs), override);
  }
  g_atomic_int_add (&p->inflight, -1);
  if (st != 0)
    js_fault (p->handle, st);
  if (override[0])
    return (guint64) override[1];
  return p->original (a0, a1, a2, a3, a4, a5);
}

void
quiesce (Probe * p)
{
  if (p->active)
    g_atomic_int_add (&p->active, -1);
  while (p->inflight != 0)
    ;
}
`;

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
    const cm = new CModule(SOURCE, { fork_state: forkGuard().state, js_fault: fault });
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
