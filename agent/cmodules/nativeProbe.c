/*
 * Native uprobe listeners and replacements (nativeProbe.ts): fill pt_regs and run the
 * program through the VM's bpfvm_run_with_ctx / bpfvm_run_with_override without entering
 * JS. Each probe has its own Probe block with an active flag and an inflight count, so a
 * detach can wait for the threads already inside before the engine library goes.
 */
#include <gum/guminterceptor.h>
#include "forkGuard.h"
#include "ptRegsFill.h"

typedef gint32 (* RunFn) (guint32 handle, guint64 ctx, const void * src, guint64 len);
typedef gint32 (* RunOverrideFn) (guint32 handle, guint64 ctx, const void * src, guint64 len, gint64 * override);
typedef guint64 (* Fn6) (guint64, guint64, guint64, guint64, guint64, guint64);

/* Written by nativeProbe.ts at the offsets native_probe_layout reports. */
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
  guint64 regs[PT_REGS_WORDS];
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
  guint64 regs[PT_REGS_WORDS];
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

/* What nativeProbe.ts relies on, in the order of its PROBE_LAYOUT: out[0] = words that follow. */
void
native_probe_layout (guint32 * out)
{
  out[0] = 10;
  out[1] = sizeof (Probe);
  out[2] = G_STRUCT_OFFSET (Probe, run);
  out[3] = G_STRUCT_OFFSET (Probe, ctx_addr);
  out[4] = G_STRUCT_OFFSET (Probe, enabled);
  out[5] = G_STRUCT_OFFSET (Probe, handle);
  out[6] = G_STRUCT_OFFSET (Probe, active);
  out[7] = G_STRUCT_OFFSET (Probe, inflight);
  out[8] = G_STRUCT_OFFSET (Probe, run_override);
  out[9] = G_STRUCT_OFFSET (Probe, original);
  out[10] = PT_REGS_WORDS * sizeof (guint64);
}
