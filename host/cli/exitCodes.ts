/** Exit statuses of bpftime-ts itself (a spawned target's own status is passed through). */
export const EXIT = {
  OK: 0,
  /** Something failed at run time that is not one of the cases below. */
  FAILURE: 1,
  /** Bad command line, bad manifest, missing files. */
  USAGE: 2,
  /** Loading or attaching failed: bad object, missing symbol, no such pid, not allowed to ptrace. */
  ATTACH: 3,
  /** The target or the Frida backend went away unexpectedly (crash, sidecar death). */
  LOST: 4,
  /** Interrupted before attaching finished (the shell convention for SIGINT). */
  INTERRUPTED: 130,
  /** Our stdout was closed (`| head -1`): detached quietly, as a tool killed by SIGPIPE reports. */
  BROKEN_PIPE: 141,
} as const;
