// The life of one spawn/attach/run: start the backend, inject, load and attach, let the
// target run until it ends, a signal, or --duration; then detach and report. Every path
// out of here detaches and closes the backend. It says how the run ended (runOutcome.ts)
// and leaves the exit status to host/cli: one table there maps outcomes to numbers.

import * as fs from 'fs';
import { performance } from 'perf_hooks';
import type { AttachResult } from '../../protocol/messages';
import { syscallName } from '../../protocol/syscalls';
import { createBackend } from '../backend/createBackend';
import type { FridaBackend } from '../backend/FridaBackend';
import { MetricsConfigError } from '../metrics/metricsConfig';
import { MetricsServer } from '../metrics/MetricsServer';
import { EventPrinter } from '../output/EventPrinter';
import { Reporter } from '../output/Reporter';
import { ChildRescuer } from './childRescue';
import { detachAndWatch } from './detachAndWatch';
import { refuseMixedPlan } from './int3Lock';
import type { RunOutcome } from './runOutcome';
import type { RunPlan } from './runPlan';
import { RunResults } from './runResults';
import { RunStops } from './runStops';
import { Session } from './Session';
import { SessionError } from './SessionError';

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export async function runSession(plan: RunPlan): Promise<RunOutcome> {
  const { target, output } = plan;
  const reporter = new Reporter({ json: output.json, verbose: output.verbose });
  const printer = new EventPrinter({
    objects: plan.objects,
    json: output.json,
    histograms: output.histograms,
    records: output.records,
    syscalls: output.syscalls,
    maps: output.maps,
    timestamps: output.timestamps,
  });
  const stops = new RunStops(reporter);
  const results = new RunResults(plan.count.length > 0, reporter, printer);

  let backend: FridaBackend | null = null;
  let session: Session | null = null;
  let interval: NodeJS.Timeout | null = null;
  let metrics: MetricsServer | null = null;
  let rescuer: ChildRescuer | null = null;
  try {
    if (plan.metrics) {
      // Bound before anything is spawned or attached: a port in use fails with the target untouched.
      metrics = new MetricsServer({
        config: plan.metrics,
        objects: plan.objects,
        print: { histograms: output.histograms, syscalls: output.syscalls },
        syscallName,
        warn: (text) => reporter.warn(text),
      });
      const where = await metrics.listen();
      reporter.status(`metrics on http://${where.host.includes(':') ? `[${where.host}]` : where.host}:${where.port}/metrics`);
    }
    backend = await createBackend({ verbose: output.verbose });
    reporter.debug(`backend ${backend.name}, Frida ${backend.fridaVersion}`);
    session = new Session(backend, target);
    const s = session;
    wireEvents(s, reporter, printer, results, stops);

    for (const w of plan.warnings ?? []) reporter.warn(w);
    // A test and diagnostic knob: a small agent-side queue makes drops easy to provoke.
    const capacity = Number(process.env.BPFTIME_TS_EVENT_QUEUE ?? '');
    if (plan.load && Number.isInteger(capacity) && capacity > 0) plan.load.queueCapacity = capacity;
    const hasSyscalls = plan.load?.links.some((l) => l.attach.kind === 'syscall') ?? false;
    const hasUsdt = plan.load?.links.some((l) => l.attach.kind === 'uprobe' && l.attach.trap === true) ?? false;
    refuseMixedPlan(s.label, hasUsdt, hasSyscalls, plan.load?.syscalls);
    reporter.status(`attaching to ${s.label}`);
    // Frida's injection can leave a child forked meanwhile held in Frida's exit hook: free it,
    // from the start of the injection where the pid is known already (its parent waits).
    const rescue = (pid: number): ChildRescuer => {
      const r = new ChildRescuer(pid, (c) =>
        reporter.warn(`child pid ${c.pid} of pid ${pid}, forked while Frida's agent was loading or unloading, was held by Frida's exit hook; resumed its call (${c.fn}) without the hook`),
      );
      r.start();
      return r;
    };
    if (target.kind === 'pid' && Number.isInteger(target.pid) && target.pid > 0) rescuer = rescue(target.pid);
    await s.start();
    rescuer ??= rescue(s.pid);
    reporter.debug(`agent up in pid ${s.pid}: ${s.info?.runtime}, Frida ${s.info?.fridaVersion}`);
    if (stops.signalled) return { kind: 'interrupted', signal: stops.signalled };

    const attached: AttachResult[] = [];
    if (plan.count.length) attached.push(...(await s.agent.countHits(plan.count)));
    if (hasSyscalls) await s.claimSyscalls();
    if (hasUsdt) await s.claimUsdt();
    if (plan.load) attached.push(...(await s.agent.load(plan.load)));
    let failed = 0;
    for (const r of attached) {
      if (r.state === 'failed') {
        reporter.error(`${r.target}: ${r.error}`);
        failed++;
      }
    }
    if (failed) return { kind: 'attach-failed', failed };
    for (const r of attached) {
      if (r.state === 'pending') reporter.warn(`${r.target}: pending: waiting for ${r.waitingFor} to be loaded`);
      else if (r.state === 'attached') reporter.debug(`${r.target} at ${r.where ?? '?'}`);
    }
    if (attached.length) reporter.status(`${plural(attached.length, 'hook')} installed in pid ${s.pid}`);
    if (stops.signalled) return { kind: 'interrupted', signal: stops.signalled };
    if (metrics && plan.load) {
      metrics.attach(
        {
          maps: () => s.agent.mapDump(),
          stats: () => s.agent.stats(),
          symbolize: (addresses) => s.agent.symbolize(addresses.map((a) => `0x${a.toString(16)}`)),
        },
        { pid: s.pid, comm: targetComm(s.pid) },
      );
    }
    await s.resume();

    if (plan.load && output.interval) {
      interval = setInterval(() => {
        void s.agent
          .mapDump()
          .then((dumps) => printer.maps(dumps, new Date().toISOString().slice(11, 19)))
          .catch(() => undefined);
      }, output.interval * 1000);
    }
    let timer: NodeJS.Timeout | null = null;
    if (plan.durationSec !== undefined) timer = setTimeout(() => stops.stop({ kind: 'duration' }), plan.durationSec * 1000);
    const why = await stops.stopped;
    if (timer) clearTimeout(timer);
    if (interval) clearInterval(interval);
    metrics?.detach();

    if (why.kind !== 'ended') return await detachAndWatch({ session: s, backend, results, stops, reporter, rescuer, withObjects: !!plan.load });
    results.print(s.delivered);
    return await targetEnded(s, reporter, stops);
  } catch (err) {
    reporter.error(err instanceof Error ? err.message : String(err));
    // Errors of the user's making (a bad --metrics, a SessionError) are their one line; only a
    // bug of ours gets its stack, and only with -v.
    const ours = err instanceof Error && !(err instanceof SessionError) && !(err instanceof MetricsConfigError);
    if (output.verbose && ours) process.stderr.write(`${(err as Error).stack}\n`);
    return { kind: 'error', error: err };
  } finally {
    rescuer?.stop();
    if (interval) clearInterval(interval);
    stops.release();
    if (session) await session.detach();
    if (backend) await backend.close();
    if (metrics) await metrics.close();
  }
}

/** Agent events to the terminal (or JSON lines), and the snapshots into the results. */
function wireEvents(s: Session, reporter: Reporter, printer: EventPrinter, results: RunResults, stops: RunStops): void {
  s.on('event', (ev) => {
    switch (ev.type) {
      case 'first-hit':
        reporter.firstHit(ev, performance.now());
        break;
      case 'printk':
        printer.printk(ev);
        break;
      case 'record':
        printer.record(ev);
        break;
      case 'fault':
        reporter.fault(ev);
        break;
      case 'snapshot':
        results.snapshot(ev);
        break;
      case 'log':
        if (ev.level === 'info') reporter.status(ev.text);
        else if (ev.level === 'warn') reporter.warn(ev.text);
        else reporter.error(ev.text);
        break;
      default:
        break;
    }
  });
  s.on('dropped', (n) => reporter.warn(`${plural(n, 'event')} dropped: the host could not keep up`));
  s.on('log', (level, text) => reporter.debug(`agent ${level}: ${text}`));
  s.on('output', (fd, data) => (fd === 2 ? process.stderr : process.stdout).write(data));
  s.on('ended', () => stops.stop({ kind: 'ended' }));
}

/** The target ended while we were attached (the results are printed already): how, and what the run makes of it. */
async function targetEnded(s: Session, reporter: Reporter, stops: RunStops): Promise<RunOutcome> {
  const end = await s.waitForEnd();
  const lost = (reason: string): RunOutcome => {
    reporter.error(reason);
    return { kind: 'lost', reason };
  };
  if (end.lost) return lost(end.reason);
  if (end.crash) return lost(`${s.label} crashed: ${end.crash}`);
  if (end.status === null && end.exec !== null) {
    // The agent, its hooks and its maps went with the old program image. The new one
    // runs on untraced; like any spawned target, it is waited for (its output too).
    reporter.status(`${s.label} called execve(${end.exec}): tracing ended with the old program`);
    if (s.target.kind === 'spawn') {
      while (processRuns(s.pid) && !stops.signalled) await new Promise((r) => setTimeout(r, 50));
    }
    return { kind: 'ok' };
  }
  // Every exit(), _exit() and execve() reports through the agent; none did.
  if (end.status === null) return lost(`${s.label} ended without calling exit() (killed by a signal?)`);
  if (s.target.kind === 'spawn') return { kind: 'target-exited', status: end.status };
  reporter.status(`pid ${s.pid} exited`);
  return { kind: 'ok' };
}

/** The target's command name, the `comm` label of every metric. */
function targetComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Whether `pid` still runs (a zombie does not: its parent, Frida's helper, reaps it later). */
function processRuns(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}
