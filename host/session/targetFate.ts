// What became of a target we have just detached from. A detach must leave it running; if it
// died during the detach or right after (a hook torn down under a thread, a bad restore),
// the CLI must say so and fail, never print "detached" and exit 0. We are not its parent,
// so its status is read from /proc while it is a zombie (exit_code, field 52 of stat); a
// parent that reaps it at once leaves only "gone".

import * as fs from 'fs';
import { agentImages } from './targetLock';

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

/** What a detach still has to finish before the target can be called safe. */
export interface DetachWork {
  /** Settles when the backend is done with the target (Frida's injector cleans up inside it). */
  backendDone: Promise<unknown>;
  /** How many Frida agent images the target had mapped before the detach (ours among them). */
  agentsBefore: number;
  /** Whether ours stays mapped for good (an eternalized script): then there is no unmap to wait for. */
  agentResident: boolean;
}

/** Shortest and longest watch after a detach, in ms. */
export const WATCH_MIN_MS = 300;
export const WATCH_MAX_MS = 3000;

/**
 * Watches `pid` after a detach until the detach's last effects inside the target are over,
 * and returns its fate. A crash the detach causes shows within milliseconds of the step that
 * causes it, and the last steps are Frida's, after our hooks are gone: the injector's remote
 * cleanup (a thread made to munmap, then sent back, the 0x320 crash when it was cut short)
 * and the agent unmapping itself. So the watch lasts until the backend is done and our agent
 * image is gone from the maps, at least WATCH_MIN_MS (the hooks' own restore), at most
 * WATCH_MAX_MS (an unmap that never comes: the report is not held up for it).
 */
export async function watchAfterDetach(pid: number, work?: DetachWork): Promise<TargetFate> {
  const start = Date.now();
  let backendDone = work === undefined;
  // Done either way: a close that fails has nothing more to do in the target either.
  const done = (): void => {
    backendDone = true;
  };
  work?.backendDone.then(done, done);
  const agentGone = (): boolean => !work || work.agentResident || work.agentsBefore === 0 || agentImages(pid) < work.agentsBefore;
  for (;;) {
    const fate = readFate(pid);
    if (fate.kind !== 'running') return fate;
    const elapsed = Date.now() - start;
    if (elapsed >= WATCH_MAX_MS || (elapsed >= WATCH_MIN_MS && backendDone && agentGone())) return fate;
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
