// A detach we chose (a signal, --duration, a closed stdout), and what became of the target.
// The steps and their order are what keeps a detach both fast and honest:
//  1. the fallback dumps are asked for together, so their round trips overlap;
//  2. a spawned target is taken off our pipes, so a pipeline can end after we go;
//  3. the detach itself, whose final snapshot replaces the fallback;
//  4. for a target we attached to, the sidecar shuts down while the target is watched for a
//     crash (one after the other made a detach under syscall load take ~1 s); a spawned one
//     is the sidecar's child, so the sidecar stays up until the watch ends and a crash still
//     shows its signal. The watch lasts until Frida's own cleanup in the target is over
//     (targetFate.ts, watchAfterDetach), not a fixed time.
// The caller's own cleanup (runSession.ts, finally) detaches and closes again; both are no-ops
// by then.

import * as fs from 'fs';
import type { FridaBackend } from '../backend/FridaBackend';
import type { Reporter } from '../output/Reporter';
import type { ChildRescuer } from './childRescue';
import type { RunOutcome } from './runOutcome';
import type { RunResults } from './runResults';
import type { RunStops } from './runStops';
import type { Session } from './Session';
import { signalName, watchAfterDetach, type DetachWork, type TargetFate } from './targetFate';
import { agentImages } from './targetLock';

export interface DetachContext {
  session: Session;
  backend: FridaBackend;
  results: RunResults;
  stops: RunStops;
  reporter: Reporter;
  /** Frees children Frida's exit hook holds; swept once more after a clean detach. */
  rescuer: ChildRescuer | null;
  /** Whether objects were loaded (maps and stats exist), not just --count functions. */
  withObjects: boolean;
}

/** Detaches, watches the target, says what became of it and prints the results (except on a closed stdout). */
export async function detachAndWatch(c: DetachContext): Promise<RunOutcome> {
  const { session: s, backend, results, reporter } = c;
  const target = s.target;
  // A fallback for a detach that brings no snapshot back (an agent that hangs or dies in
  // it): asked together, so the round trips overlap instead of adding up.
  const [counts, maps, stats] = await Promise.all([
    s.agent.hitCounts().catch(() => results.counts),
    c.withObjects ? s.agent.mapDump().catch(() => results.maps) : results.maps,
    c.withObjects ? s.agent.stats().catch(() => results.stats) : results.stats,
  ]);
  results.counts = counts;
  results.maps = maps;
  results.stats = stats;
  if (target.kind === 'spawn' && (target.stdio ?? 'inherit') === 'inherit') await releasePipes(s, reporter);
  const agentsBefore = agentImages(s.pid);
  await s.detach();
  // The agent's own snapshot, taken once no hook could run any more: exact.
  if (s.finalSnapshot) results.final(s.finalSnapshot, c.withObjects);
  const closing = target.kind === 'spawn' ? null : backend.close();
  const fate = await detachedFate(s, { backendDone: closing ?? Promise.resolve(), agentsBefore, agentResident: s.agentResident });
  await closing;
  if (fate.kind === 'running') await c.rescuer?.afterDetach();
  if (c.stops.stdoutClosed && (fate.kind === 'running' || fate.kind === 'exited')) return { kind: 'broken-pipe' };
  if (fate.kind === 'running') reporter.status(`detached from pid ${s.pid}`);
  else if (fate.kind === 'exited') reporter.status(`${s.label} exited with status ${fate.status} as we detached`);
  else {
    results.print(s.delivered);
    const reason =
      fate.kind === 'killed'
        ? `${s.label} was killed by ${signalName(fate.signal)} during or right after the detach`
        : fate.kind === 'crashed'
          ? `${s.label} crashed during the detach: ${fate.summary}`
          : `${s.label} ended during or right after the detach (its exit status is not known)`;
    reporter.error(reason);
    return { kind: 'lost', reason };
  }
  if (s.agentResident) {
    reporter.status(`pid ${s.pid} keeps Frida's agent, idle, for good: a script that ran the wasm engine cannot be unloaded safely (each such session adds one; the native engine leaves nothing)`);
  }
  results.print(s.delivered);
  // A spawned target that exited as we detached ends the run with its own status, as one
  // the run waited for does (runSession.ts, targetEnded): `spawn` passes the status through.
  if (fate.kind === 'exited' && target.kind === 'spawn') return { kind: 'target-exited', status: fate.status };
  return { kind: 'ok' };
}

/** The target's fate after a detach we asked for: Frida's own report of a crash first, then /proc. */
async function detachedFate(s: Session, work: DetachWork): Promise<TargetFate | { kind: 'crashed'; summary: string }> {
  const fate = await watchAfterDetach(s.pid, work);
  const end = s.endInfoOrNull;
  if (end?.crash) return { kind: 'crashed', summary: end.crash };
  return fate;
}

/**
 * A spawned target inherited our stdout/stderr. Left on a pipe, it keeps the pipeline open
 * after we detach (`bpftime-ts spawn --duration 1 prog | cat` never ended), so those go to
 * /dev/null; a terminal or a file stays as it is (nothing waits on them).
 */
async function releasePipes(s: Session, reporter: Reporter): Promise<void> {
  const pipes = [1, 2].filter((fd) => {
    try {
      return fs.fstatSync(fd).isFIFO() || fs.fstatSync(fd).isSocket();
    } catch {
      return false;
    }
  });
  if (!pipes.length) return;
  const done = await s.agent.releaseStdio(pipes).catch(() => [] as number[]);
  const names = done.map((fd) => (fd === 1 ? 'stdout' : 'stderr'));
  if (names.length) reporter.status(`pid ${s.pid} runs on with its ${names.join(' and ')} on /dev/null (it was this pipeline's)`);
}
