// The life of one spawn/attach/run: start the backend, inject, load and attach, let the
// target run until it ends, a signal, or --duration; then detach and report. Every path
// out of here detaches and closes the backend.

import * as fs from 'fs';
import { performance } from 'perf_hooks';
import type { AgentStats, AttachResult, HookTarget, LoadRequest, MapDump } from '../../protocol/messages';
import type { ObjectSpec } from '../../protocol/spec';
import { createBackend } from '../backend/createBackend';
import { FridaBackend } from '../backend/FridaBackend';
import { EventPrinter } from '../output/EventPrinter';
import { Reporter } from '../output/Reporter';
import { Session, TargetSpec } from '../session/Session';
import { refuseMixedPlan } from '../session/int3Lock';
import { SessionError } from '../session/SessionError';
import { syscallName } from '../../protocol/syscalls';
import type { MetricsConfig } from '../metrics/metricsConfig';
import { MetricsConfigError } from '../metrics/metricsConfig';
import { MetricsServer } from '../metrics/MetricsServer';
import { EXIT } from './exitCodes';
import { signalName, watchAfterDetach, type TargetFate } from '../session/targetFate';
import { ChildRescuer } from '../session/childRescue';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  /** Seconds between map prints while the target runs. */
  interval?: number;
  histograms?: string[];
  records?: Record<string, string>;
  syscalls?: string[];
  /** Only these maps and globals in map prints (--maps). */
  maps?: string[];
  timestamps?: boolean;
}

export interface RunPlan {
  target: TargetSpec;
  /** `--count` functions (no eBPF). */
  count: HookTarget[];
  objects: ObjectSpec[];
  /** What to load into the agent; null when no objects were given. */
  load: LoadRequest | null;
  output: OutputOptions;
  durationSec?: number;
  /** Prometheus endpoint to serve while attached; null when not asked for. */
  metrics?: MetricsConfig | null;
  /** Said before attaching: programs skipped, overrides an attach type ignores (host/loader/refusals.ts). */
  warnings?: string[];
}

type StopReason = { kind: 'signal'; signal: string } | { kind: 'duration' } | { kind: 'ended' };

function failureCode(err: unknown): number {
  if (err instanceof SessionError) return err.kind === 'usage' ? EXIT.USAGE : err.kind === 'lost' ? EXIT.LOST : EXIT.ATTACH;
  return EXIT.FAILURE;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export async function runTarget(plan: RunPlan): Promise<number> {
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
  // `… | head -1`: the reader went away. Stop printing, detach, and end the way a Unix tool
  // killed by SIGPIPE does (status 141, nothing more said). Node ignores SIGPIPE and reports
  // EPIPE on the stream instead; every later write fails too and is dropped here.
  let stdoutClosed = false;
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (stdoutClosed || err.code !== 'EPIPE') return;
    stdoutClosed = true;
    stop({ kind: 'signal', signal: 'SIGPIPE' });
  };
  process.stdout.on('error', onStdoutError);

  let backend: FridaBackend | null = null;
  let session: Session | null = null;
  let counts: Record<string, number> = {};
  let finalMaps: MapDump[] | null = null;
  let finalStats: AgentStats | null = null;
  let interval: NodeJS.Timeout | null = null;
  let metrics: MetricsServer | null = null;
  let printResults: () => void = () => undefined;
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
          counts = ev.hitCounts;
          finalMaps = ev.maps;
          finalStats = { programs: ev.stats, droppedRecords: ev.droppedRecords, pending: ev.pending, records: ev.records };
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
    s.on('ended', () => stop({ kind: 'ended' }));
    let printed = false;
    printResults = () => {
      if (printed) return;
      printed = true;
      if (plan.count.length) reporter.hitCounts(counts);
      if (finalMaps) printer.maps(finalMaps);
      if (finalStats) {
        const records = finalStats.records.map((r) => ({ ...r, delivered: s.delivered.get(`${r.object}:${r.map}`) ?? 0 }));
        printer.stats(finalStats.programs, finalStats.droppedRecords, records);
        for (const p of finalStats.pending) reporter.warn(`${p}: never attached: its library was not loaded while we were attached`);
      }
    };

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
    if (plan.target.kind === 'pid' && Number.isInteger(plan.target.pid) && plan.target.pid > 0) rescuer = rescue(plan.target.pid);
    await s.start();
    rescuer ??= rescue(s.pid);
    reporter.debug(`agent up in pid ${s.pid}: ${s.info?.runtime}, Frida ${s.info?.fridaVersion}`);
    if (signalled) return EXIT.INTERRUPTED;

    const results: AttachResult[] = [];
    if (plan.count.length) results.push(...(await s.agent.countHits(plan.count)));
    if (hasSyscalls) await s.claimSyscalls();
    if (hasUsdt) await s.claimUsdt();
    if (plan.load) results.push(...(await s.agent.load(plan.load)));
    let failed = 0;
    for (const r of results) {
      if (r.state === 'failed') {
        reporter.error(`${r.target}: ${r.error}`);
        failed++;
      }
    }
    if (failed) return EXIT.ATTACH;
    for (const r of results) {
      if (r.state === 'pending') reporter.warn(`${r.target}: pending: waiting for ${r.waitingFor} to be loaded`);
      else if (r.state === 'attached') reporter.debug(`${r.target} at ${r.where ?? '?'}`);
    }
    if (results.length) reporter.status(`${plural(results.length, 'hook')} installed in pid ${s.pid}`);
    if (signalled) return EXIT.INTERRUPTED;
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
    if (plan.durationSec !== undefined) timer = setTimeout(() => stop({ kind: 'duration' }), plan.durationSec * 1000);
    const why = await stopped;
    if (timer) clearTimeout(timer);
    if (interval) clearInterval(interval);
    metrics?.detach();

    if (why.kind !== 'ended') {
      // A fallback for a detach that brings no snapshot back (an agent that hangs or dies in
      // it): asked together, so the round trips overlap instead of adding up.
      const [c, m, st] = await Promise.all([
        s.agent.hitCounts().catch(() => counts),
        plan.load ? s.agent.mapDump().catch(() => finalMaps) : finalMaps,
        plan.load ? s.agent.stats().catch(() => finalStats) : finalStats,
      ]);
      counts = c;
      finalMaps = m;
      finalStats = st;
      if (target.kind === 'spawn' && (target.stdio ?? 'inherit') === 'inherit') await releasePipes(s, reporter);
      await s.detach();
      // The agent's own snapshot, taken once no hook could run any more: exact.
      const last = s.finalSnapshot;
      if (last) {
        counts = last.hitCounts;
        if (plan.load) {
          finalMaps = last.maps;
          finalStats = { programs: last.stats, droppedRecords: last.droppedRecords, pending: last.pending, records: last.records };
        }
      }
      // Our session is detached: the sidecar has nothing left to do for a target we attached
      // to and shuts down while it is watched (the two used to add up). A spawned one is the
      // sidecar's child: it stays up until the watch ends, so a crash still shows its signal.
      const closing = target.kind === 'spawn' ? null : backend.close();
      const fate = await detachedFate(s);
      await closing;
      if (fate.kind === 'running') await rescuer?.afterDetach();
      if (stdoutClosed && (fate.kind === 'running' || fate.kind === 'exited')) return EXIT.BROKEN_PIPE;
      if (fate.kind === 'running') reporter.status(`detached from pid ${s.pid}`);
      else if (fate.kind === 'exited') reporter.status(`${s.label} exited with status ${fate.status} as we detached`);
      else {
        printResults();
        reporter.error(
          fate.kind === 'killed'
            ? `${s.label} was killed by ${signalName(fate.signal)} during or right after the detach`
            : fate.kind === 'crashed'
              ? `${s.label} crashed during the detach: ${fate.summary}`
              : `${s.label} ended during or right after the detach (its exit status is not known)`,
        );
        return EXIT.LOST;
      }
      if (s.agentResident) {
        reporter.status(`pid ${s.pid} keeps Frida's agent, idle, for good: a script that ran the wasm engine cannot be unloaded safely (each such session adds one; the native engine leaves nothing)`);
      }
    }
    printResults();

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
      if (end.status === null && end.exec !== null) {
        // The agent, its hooks and its maps went with the old program image. The new one
        // runs on untraced; like any spawned target, it is waited for (its output too).
        reporter.status(`${s.label} called execve(${end.exec}): tracing ended with the old program`);
        if (target.kind === 'spawn') {
          while (processRuns(s.pid) && !signalled) await new Promise((r) => setTimeout(r, 50));
        }
        return EXIT.OK;
      }
      if (end.status === null) {
        // Every exit(), _exit() and execve() reports through the agent; none did.
        reporter.error(`${s.label} ended without calling exit() (killed by a signal?)`);
        return EXIT.LOST;
      }
      if (target.kind === 'spawn') return end.status;
      reporter.status(`pid ${s.pid} exited`);
    }
    return EXIT.OK;
  } catch (err) {
    reporter.error(err instanceof Error ? err.message : String(err));
    if (err instanceof MetricsConfigError) return EXIT.USAGE;
    if (output.verbose && err instanceof Error && !(err instanceof SessionError)) process.stderr.write(`${err.stack}\n`);
    return failureCode(err);
  } finally {
    rescuer?.stop();
    if (interval) clearInterval(interval);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Not removed: writes still queued in the closed stream fail after we return.
    if (session) await session.detach();
    if (backend) await backend.close();
    if (metrics) await metrics.close();
  }
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

/** The target's fate after a detach we asked for: Frida's own report of a crash first, then /proc. */
async function detachedFate(s: Session): Promise<TargetFate | { kind: 'crashed'; summary: string }> {
  const fate = await watchAfterDetach(s.pid);
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
