/*
 * Taking and releasing the JS hold (jsHold.h, interceptorCommit.ts). TinyCC has no
 * compare-and-swap, so holders are counted with atomic adds and the deadline is only ever
 * pushed later: two agents holding at once each keep the other's hold alive until they are
 * both done or the later deadline passes.
 */
#include "jsHold.h"

void
js_hold_take (gint tid, gint bound_ms)
{
  volatile gint64 * deadline = (volatile gint64 *) &js_hold[2];
  gint64 until = g_get_monotonic_time () + (gint64) bound_ms * 1000;
  if (*deadline < until)
    *deadline = until;
  js_hold[1] = tid;
  g_atomic_int_add (&js_hold[0], 1);
}

void
js_hold_release (void)
{
  /* A count left above 0 by an agent that died holding only costs a clock read per hit. */
  if (g_atomic_int_add (&js_hold[0], -1) <= 0)
    g_atomic_int_add (&js_hold[0], 1);
}

void
js_hold_layout (guint32 * out)
{
  out[0] = 1;
  out[1] = JS_HOLD_WORDS;
}
