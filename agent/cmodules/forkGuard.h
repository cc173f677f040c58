/*
 * For any CModule that guards a JS entry (forkGuard.ts): the process-wide fork_state and
 * js_forbidden(tid). fork_state, in gint words: [0] forked child, [1] forks in progress,
 * [2 .. 2+MAX_FORKING) their tids, then the slot ticket, then the thread-start guard (see
 * followBegin in forkGuard.ts): threads between follow_begin() and follow_end(),
 * observing on, the ring ticket, and a ring of FORK_GUARD_RING thread ids the observer
 * has reported.
 */
#define FORK_GUARD_MAX_FORKING 16
#define FORK_GUARD_SLOT_TICKET (2 + FORK_GUARD_MAX_FORKING)
#define FORK_GUARD_FOLLOWING (3 + FORK_GUARD_MAX_FORKING)
#define FORK_GUARD_OBSERVING (4 + FORK_GUARD_MAX_FORKING)
#define FORK_GUARD_RING_TICKET (5 + FORK_GUARD_MAX_FORKING)
#define FORK_GUARD_RING_BASE (6 + FORK_GUARD_MAX_FORKING)
#define FORK_GUARD_RING 64
#define FORK_GUARD_WORDS (FORK_GUARD_RING_BASE + FORK_GUARD_RING)

extern volatile gint fork_state[];

static int
js_forbidden (gint tid)
{
  if (fork_state[0])
    return 1;
  if (fork_state[1])
  {
    int i;
    for (i = 0; i < FORK_GUARD_MAX_FORKING; i++)
      if (fork_state[2 + i] == tid)
        return 1;
  }
  return 0;
}
