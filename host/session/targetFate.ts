// What became of a target we have just detached from. A detach must leave it running; if it
// died during the detach or right after (a hook torn down under a thread, a bad restore),
// the CLI must say so and fail, never print "detached" and exit 0. We are not its parent,
// so its status is read from /proc while it is a zombie (exit_code, field 52 of stat); a
// parent that reaps it at once leaves only "gone".

import * as fs from 'fs';

export type TargetFate =
  | { kind: 'running' }
  | { kind: 'exited'; status: number }
  | { kind: 'killed'; signal: number }
  | { kind: 'gone' };

function readFate(pid: number): TargetFate {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { kind: 'gone' };
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state !== 'Z' && state !== 'X') return { kind: 'running' };
  // fields[0] is field 3 of stat, so exit_code (field 52) is fields[49].
  const code = Number(fields[49]);
  if (!Number.isInteger(code)) return { kind: 'gone' };
  if ((code & 0x7f) !== 0) return { kind: 'killed', signal: code & 0x7f };
  return { kind: 'exited', status: (code >> 8) & 0xff };
}

/**
 * Watches `pid` for `ms` after a detach (a crash caused by the detach shows within a few
 * milliseconds of the restore; the window covers a loaded machine) and returns its fate.
 */
export async function watchAfterDetach(pid: number, ms = 300): Promise<TargetFate> {
  const end = Date.now() + ms;
  for (;;) {
    const fate = readFate(pid);
    if (fate.kind !== 'running' || Date.now() >= end) return fate;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS',
  8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM', 31: 'SIGSYS',
};

export function signalName(n: number): string {
  return SIGNALS[n] ?? `signal ${n}`;
}
