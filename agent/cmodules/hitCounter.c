/* `--count` (hitCounter.ts): one atomic increment per hit, counters[i] for the i-th function. */
#include <gum/guminterceptor.h>

extern volatile gint counters[];

void
on_enter (GumInvocationContext * ic)
{
  guint idx = GPOINTER_TO_UINT (gum_invocation_context_get_listener_function_data (ic));
  g_atomic_int_add (&counters[idx], 1);
}

/* What hitCounter.ts relies on: out[0] = words that follow. */
void
hit_counter_layout (guint32 * out)
{
  out[0] = 1;
  out[1] = sizeof (gint);
}
