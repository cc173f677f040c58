// The life of one spawn/attach run: start the backend, inject, install hooks, let the
// target run until it ends, a signal, or --duration; then detach and report. Every path
// out of here detaches and closes the backend.

import { performance } from 'perf_hooks';
import type { AttachResult, HookTarget } from '../../protocol/messages';
import { createBackend } from '../backend/createBackend';
import { FridaBackend } from '../backend/FridaBackend';
import { Reporter } from '../output/Reporter';
import { Session, TargetSpec } from '../session/Session';
import { SessionError } from '../session/SessionError';
import { EXIT } from './exitCodes';

export interface RunOptions {
  count: HookTarget[];
  json: boolean;
  verbose: boolean;
  durationSec?: number;
}

type StopReason = { kind: 'signal'; signal: string } | { kind: 'duration' } | { kind: 'ended' };

function failureCode(err: unknown): number {
  if (err instanceof SessionError) return err.kind === 'usage' ? EXIT.USAGE : err.kind === 'lost' ? EXIT.LOST : EXIT.ATTACH;
  return EXIT.FAILURE;
}

export async function runTarget(target: TargetSpec, opts: RunOptions): Promise<number> {
  const reporter = new Reporter({ json: opts.json, verbose: opts.verbose });
  let stop!: (why: StopReason) => void;
  const stopped = new Promise<StopReason>((resolve) => (stop = resolve));
  let signalled: string | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    signalled ??= signal;
    reporter.status(`${signal}: detaching`);
    stop({ kind: 'signal', signal });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let backend: FridaBackend | null = null;
  let session: Session | null = null;
  let counts: Record<string, number> = {};
  try {
    backend = await createBackend({ verbose: opts.verbose });
    reporter.debug(`backend ${backend.name}, Frida ${backend.fridaVersion}`);
    session = new Session(backend, target);
    const s = session;
    s.on('event', (ev) => {
      if (ev.type === 'first-hit') reporter.firstHit(ev, performance.now());
      else if (ev.type === 'snapshot') counts = ev.hitCounts;
      else if (ev.type === 'log') reporter.debug(`agent: ${ev.text}`);
    });
    s.on('log', (level, text) => reporter.debug(`agent ${level}: ${text}`));
    s.on('output', (fd, data) => (fd === 2 ? process.stderr : process.stdout).write(data));
    s.on('ended', () => stop({ kind: 'ended' }));

    reporter.status(`attaching to ${s.label}`);
    await s.start();
    reporter.debug(`agent up in pid ${s.pid}: ${s.info?.runtime}, Frida ${s.info?.fridaVersion}`);
    if (signalled) return EXIT.INTERRUPTED;

    if (opts.count.length) {
      const results = await s.call<AttachResult[]>('countHits', [opts.count]);
      const failed = results.filter((r) => !r.ok);
      for (const f of failed) reporter.error(`${f.target}: ${f.error}`);
      if (failed.length) return EXIT.ATTACH;
      reporter.status(`${results.length} hook${results.length === 1 ? '' : 's'} installed in pid ${s.pid}`);
    }
    if (signalled) return EXIT.INTERRUPTED;
    await s.resume();

    let timer: NodeJS.Timeout | null = null;
    if (opts.durationSec !== undefined) timer = setTimeout(() => stop({ kind: 'duration' }), opts.durationSec * 1000);
    const why = await stopped;
    if (timer) clearTimeout(timer);

    if (why.kind !== 'ended') {
      counts = await s.call<Record<string, number>>('hitCounts').catch(() => counts);
      await s.detach();
      reporter.status(`detached from pid ${s.pid}`);
    }
    if (opts.count.length) reporter.hitCounts(counts);

    if (why.kind === 'ended') {
      const end = await s.waitForEnd();
      if (end.lost) {
        reporter.error(end.reason);
        return EXIT.LOST;
      }
      if (end.crash) {
        reporter.error(`${s.label} crashed: ${end.crash}`);
        return EXIT.LOST;
      }
      if (target.kind === 'spawn') return end.status ?? EXIT.OK;
      reporter.status(`pid ${s.pid} exited`);
    }
    return EXIT.OK;
  } catch (err) {
    reporter.error(err instanceof Error ? err.message : String(err));
    if (opts.verbose && err instanceof Error && !(err instanceof SessionError)) process.stderr.write(`${err.stack}\n`);
    return failureCode(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (session) await session.detach();
    if (backend) await backend.close();
  }
}
