/* pt_regs for the hit in progress, written straight into the VM arena (ptRegsFill.ts). */
#include <gum/guminterceptor.h>
#include "ptRegsFill.h"

extern int sched_getcpu (void);

/* Entry (and override): ip = the function, ax as found. Returns the CPU. */
gint
pt_regs_fill_entry (guint64 * r)
{
  GumInvocationContext * ic = gum_interceptor_get_current_invocation ();
  fill (r, ic->cpu_context, GPOINTER_TO_SIZE (ic->function), ic->cpu_context->rax);
  return sched_getcpu ();
}

/* Return: ip = the return address, ax = the return value, as in the kernel. */
gint
pt_regs_fill_return (guint64 * r)
{
  GumInvocationContext * ic = gum_interceptor_get_current_invocation ();
  fill (r, ic->cpu_context, GPOINTER_TO_SIZE (gum_invocation_context_get_return_address (ic)), ic->cpu_context->rax);
  return sched_getcpu ();
}

/* What the TS side relies on: out[0] = number of words that follow. */
void
pt_regs_fill_layout (guint32 * out)
{
  out[0] = 1;
  out[1] = PT_REGS_WORDS * sizeof (guint64);
}
