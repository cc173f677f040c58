// Exit statuses of bpftime-ts, and the one place that decides which applies: every command
// hands exitCodeFor() how it ended (a run's outcome, a command's own result, or the error it
// caught) and sets that number. README.md "Exit status" lists the same table
// (test/unit/exitCodes.test.ts holds the two together).

import { CommanderError } from 'commander';
import { LoaderError } from '../loader/errors';
import { ManifestError } from '../manifest/errors';
import { MetricsConfigError } from '../metrics/metricsConfig';
import type { RunOutcome } from '../session/runOutcome';
import { SessionError } from '../session/SessionError';

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
  /** Interrupted by SIGINT before attaching finished (the shell's 128 + 2). */
  INTERRUPTED: 130,
  /** Stopped by SIGTERM before attaching finished (the shell's 128 + 15, as `kill` users expect). */
  TERMINATED: 143,
  /** Our stdout was closed (`| head -1`): detached quietly, as a tool killed by SIGPIPE reports. */
  BROKEN_PIPE: 141,
} as const;

/**
 * How a command other than a run ended without an error: `ok`, or `checks-failed` when it
 * ran to the end but some of what it checked failed (`vm test` with a FAIL line).
 */
export type CommandOutcome = { kind: 'ok' } | { kind: 'checks-failed' };

const OUTCOME_KINDS: ReadonlySet<string> = new Set<(RunOutcome | CommandOutcome)['kind']>([
  'ok',
  'target-exited',
  'interrupted',
  'broken-pipe',
  'attach-failed',
  'lost',
  'error',
  'checks-failed',
]);

function isOutcome(x: unknown): x is RunOutcome | CommandOutcome {
  // An Error is never an outcome, even one with a `kind` (SessionError has one).
  if (typeof x !== 'object' || x === null || x instanceof Error) return false;
  const kind = (x as { kind?: unknown }).kind;
  return typeof kind === 'string' && OUTCOME_KINDS.has(kind);
}

/** The status for an error a command caught (or that reached main): by what the error is. */
function codeForError(err: unknown): number {
  // --help and --version "fail" with exit code 0; every other commander error is a usage error.
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  if (err instanceof SessionError) return err.kind === 'usage' ? EXIT.USAGE : err.kind === 'lost' ? EXIT.LOST : EXIT.ATTACH;
  if (err instanceof ManifestError || err instanceof MetricsConfigError) return EXIT.USAGE;
  if (err instanceof LoaderError) return EXIT.ATTACH;
  // A VM fault or load error in `vm run`, a bug of ours, anything else.
  return EXIT.FAILURE;
}

/** The exit status for how a command ended: a run's outcome, another command's outcome, or an error. */
export function exitCodeFor(what: RunOutcome | CommandOutcome | unknown): number {
  if (!isOutcome(what)) return codeForError(what);
  switch (what.kind) {
    case 'ok':
      return EXIT.OK;
    case 'target-exited':
      return what.status;
    case 'interrupted':
      // 128 + the signal's number, as a shell reports a tool that the signal ended.
      return what.signal === 'SIGTERM' ? EXIT.TERMINATED : EXIT.INTERRUPTED;
    case 'broken-pipe':
      return EXIT.BROKEN_PIPE;
    case 'attach-failed':
      return EXIT.ATTACH;
    case 'lost':
      return EXIT.LOST;
    case 'checks-failed':
      return EXIT.FAILURE;
    case 'error':
      return codeForError(what.error);
    default: {
      const never: never = what;
      return never;
    }
  }
}
