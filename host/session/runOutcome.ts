// How one run ended, in the run's own terms. By the time runSession() returns one of these it
// has told the user everything there is to say; only the number the process exits with is
// left, and that is the CLI's decision (host/cli/exitCodes.ts, exitCodeFor), made in one place.

export type RunOutcome =
  /** Detached and the target runs on; or a target we attached to ended on its own; or it execve()'d. */
  | { kind: 'ok' }
  /** A spawned target exited on its own: its status is the run's (`spawn` passes it through). */
  | { kind: 'target-exited'; status: number }
  /** SIGINT or SIGTERM came before attaching finished; nothing was resumed after it. */
  | { kind: 'interrupted'; signal: string }
  /** Our stdout was closed (`… | head -1`): detached without another word, the target unharmed. */
  | { kind: 'broken-pipe' }
  /** The agent failed `failed` of the hooks asked for (each one was reported on its own line). */
  | { kind: 'attach-failed'; failed: number }
  /** The target died under us (crash, signal, no exit() seen) while attached or at the detach. */
  | { kind: 'lost'; reason: string }
  /** Something threw and its message was printed; what the error is decides the exit status. */
  | { kind: 'error'; error: unknown };
