/*
 * The JS hold (interceptorCommit.ts), for any CModule whose gates enter JS on a target
 * thread. Frida's JS runtime opens an Interceptor transaction for every JS entry *before*
 * it waits for the runtime's lock, and Interceptor writes pending hooks only when the last
 * open transaction closes. With a JS-path hook hot on several threads there is nearly
 * always one waiting, so a hook attached meanwhile stayed unwritten for seconds (measured:
 * counted_add under 4 threads in target_add's JS-path hook, still unwritten 4 s after
 * "installed"). While an agent commits hooks it raises this hold: gated threads wait here,
 * outside JS, until the hooks are written, so no hit is lost, only delayed.
 *
 * js_hold, in gint words, in the process's hook registry page (every agent and script
 * sees the same one): [0] agents holding, [1] the tid of the last one to take the hold
 * (it must not wait for itself), [2..3] a gint64 deadline in g_get_monotonic_time()
 * microseconds after which nobody waits, so an agent that dies while holding delays hits
 * for at most its bound.
 */
#include <glib.h>

#define JS_HOLD_WORDS 4
#define JS_HOLD_POLL_US 50

extern volatile gint js_hold[];

static void
js_hold_wait (gint tid)
{
  while (js_hold[0] > 0 && js_hold[1] != tid && g_get_monotonic_time () < *(volatile gint64 *) &js_hold[2])
    g_usleep (JS_HOLD_POLL_US);
}
