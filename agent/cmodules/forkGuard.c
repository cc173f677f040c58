/*
 * The fork guard's native half (forkGuard.ts): listeners on fork() and pthread_create()
 * that mark the forking thread and the forked child in fork_state (forkGuard.h), and the
 * gates through which every JS hook of the agent is entered (and where they wait while
 * an agent commits Interceptor hooks: jsHold.h).
 */
#include <gum/guminterceptor.h>
#include "forkGuard.h"
#include "jsHold.h"

extern volatile gint agent_pid;
extern int getpid_fn (void);

static gint
current_tid (GumInvocationContext * ic)
{
  return (gint) gum_invocation_context_get_thread_id (ic);
}

#define FOLLOWING FORK_GUARD_FOLLOWING
#define OBSERVING FORK_GUARD_OBSERVING
#define RING_TICKET FORK_GUARD_RING_TICKET
#define RING_BASE FORK_GUARD_RING_BASE
#define RING FORK_GUARD_RING
extern volatile gint tid_offset;

void
fork_enter (GumInvocationContext * ic)
{
  /* A ticket picks the slot (TinyCC has no compare-and-swap); only a 17th concurrent fork could reuse a busy one. */
  gint slot = g_atomic_int_add (&fork_state[FORK_GUARD_SLOT_TICKET], 1) % FORK_GUARD_MAX_FORKING;
  fork_state[2 + slot] = current_tid (ic);
  g_atomic_int_add (&fork_state[1], 1); /* locked: a full fence before the read below */
  /* A new thread putting itself under Stalker finishes first (see followBegin). */
  while (fork_state[FOLLOWING] != 0)
    ;
}

static int
was_reported (gint tid)
{
  int i;
  for (i = 0; i < RING; i++)
    if (fork_state[RING_BASE + i] == tid)
      return 1;
  return 0;
}

void
thread_create_enter (GumInvocationContext * ic)
{
  gpointer * out = gum_invocation_context_get_listener_invocation_data (ic, sizeof (gpointer));
  *out = gum_invocation_context_get_nth_argument (ic, 0);
}

/* pthread_create returns once the thread observer has seen the new thread (up to 100 ms). */
void
thread_create_leave (GumInvocationContext * ic)
{
  gpointer * out = gum_invocation_context_get_listener_invocation_data (ic, sizeof (gpointer));
  guint8 * pd;
  gint tid;
  gint64 end;
  if (!fork_state[OBSERVING] || tid_offset <= 0 || gum_invocation_context_get_return_value (ic) != NULL)
    return;
  pd = *(guint8 **) *out;
  tid = *(volatile gint *) (pd + tid_offset);
  end = g_get_monotonic_time () + 100000;
  while (!was_reported (tid) && g_get_monotonic_time () < end)
    g_thread_yield (); /* the new thread needs a CPU to get reported */
}

void
thread_reported (gint tid)
{
  gint i = g_atomic_int_add (&fork_state[RING_TICKET], 1) % RING;
  fork_state[RING_BASE + i] = tid;
}

void
set_observing (gint on)
{
  fork_state[OBSERVING] = on;
}

int
follow_begin (void)
{
  g_atomic_int_add (&fork_state[FOLLOWING], 1);
  if (fork_state[1] == 0)
    return 1;
  g_atomic_int_add (&fork_state[FOLLOWING], -1);
  return 0;
}

void
follow_end (void)
{
  g_atomic_int_add (&fork_state[FOLLOWING], -1);
}

void
fork_leave (GumInvocationContext * ic)
{
  gint tid = current_tid (ic);
  int i;
  if ((gint) GPOINTER_TO_SIZE (gum_invocation_context_get_return_value (ic)) == 0)
    fork_state[0] = 1; /* the child: from now on nothing here enters JS */
  for (i = 0; i < FORK_GUARD_MAX_FORKING; i++)
  {
    if (fork_state[2 + i] == tid)
      fork_state[2 + i] = 0;
  }
  g_atomic_int_add (&fork_state[1], -1);
}

typedef struct {
  void (* on_enter) (gint tid);
  void (* on_leave) (gint tid);
} GatedListener;

static void
gated_call (GumInvocationContext * ic, int leave)
{
  GatedListener * g = gum_invocation_context_get_listener_function_data (ic);
  gint tid = current_tid (ic);
  if (js_forbidden (tid))
    return;
  js_hold_wait (tid);
  (leave ? g->on_leave : g->on_enter) (tid);
}

void
gated_enter (GumInvocationContext * ic)
{
  gated_call (ic, 0);
}

void
gated_leave (GumInvocationContext * ic)
{
  gated_call (ic, 1);
}

typedef guint64 (* Fn6) (guint64, guint64, guint64, guint64, guint64, guint64);
typedef guint64 (* JsReplacement) (guint64, guint64, guint64, guint64, guint64, guint64, gint);

typedef struct {
  Fn6 original;
  JsReplacement js;
} GatedReplacement;

guint64
gated_replacement (guint64 a0, guint64 a1, guint64 a2, guint64 a3, guint64 a4, guint64 a5)
{
  GumInvocationContext * ic = gum_interceptor_get_current_invocation ();
  GatedReplacement * g = gum_invocation_context_get_replacement_data (ic);
  gint tid = current_tid (ic);
  if (js_forbidden (tid))
    return g->original (a0, a1, a2, a3, a4, a5);
  js_hold_wait (tid);
  return g->js (a0, a1, a2, a3, a4, a5, tid);
}

/* execve() in the process the agent was loaded into (not in a vfork/posix_spawn child). */
void
gated_exec (GumInvocationContext * ic)
{
  void (* on_exec) (gpointer path) = *(gpointer *) gum_invocation_context_get_listener_function_data (ic);
  if (js_forbidden (current_tid (ic)) || getpid_fn () != agent_pid)
    return;
  on_exec (gum_invocation_context_get_nth_argument (ic, 0));
}

/* The exit hook also runs in children made without fork() (vfork, posix_spawn), so it compares pids too. */
void
gated_exit (GumInvocationContext * ic)
{
  GatedListener * g = gum_invocation_context_get_listener_function_data (ic);
  if (js_forbidden (current_tid (ic)) || getpid_fn () != agent_pid)
    return;
  g->on_enter ((gint) GPOINTER_TO_SIZE (gum_invocation_context_get_nth_argument (ic, 0)));
}

/* What forkGuard.ts relies on, in the order of its GUARD_LAYOUT: out[0] = words that follow. */
void
fork_guard_layout (guint32 * out)
{
  out[0] = 6;
  out[1] = FORK_GUARD_MAX_FORKING;
  out[2] = FORK_GUARD_WORDS;
  out[3] = sizeof (GatedListener);
  out[4] = G_STRUCT_OFFSET (GatedListener, on_leave);
  out[5] = sizeof (GatedReplacement);
  out[6] = G_STRUCT_OFFSET (GatedReplacement, js);
}
