// Drives the lifecycle victim (test/fixtures/victims/lifecycle.c) through attach/detach
// cycles of one hook kind: each cycle attaches, asks the victim for an exact burst of calls,
// stops the CLI with Ctrl-C right after the burst and times the detach as the target sees
// it (from the SIGINT until no agent or library of ours is mapped in it).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import { CliResult, sleep, startCli, waitForOutput } from './cli';
import { bpfObjectPath, victimPath } from './paths';

export const lifecycleBinary = victimPath('lifecycle');
/** What a detach must take away: Frida's agent and the native VM library. */
export const ours = /frida|libbpfvm/;

export interface LifecycleVictim {
  child: ChildProcess;
  pid: number;
  output: () => string;
  /** Asks for one burst; resolves with the number of exact calls it made (the victim's word). */
  burst: () => Promise<number>;
  /** Ends the victim (its blocked read returns) and resolves with its last line. */
  quit: () => Promise<{ calls: number; bad: number; code: number | null }>;
  stop: () => void;
}

export async function startLifecycle(threads: number, burstSize: number): Promise<LifecycleVictim> {
  const child = spawn(lifecycleBinary, [String(threads), String(burstSize)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitForOutput(child, (t) => /ready \d+/.test(t));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  let bursts = 0;
  let total = 0;
  return {
    child,
    pid: child.pid!,
    output: () => out,
    burst: async () => {
      const want = ++bursts;
      const line = new RegExp(`^burst ${want} total=(\\d+)$`, 'm');
      child.kill('SIGUSR2');
      const end = Date.now() + 20000;
      while (!line.test(out)) {
        if (Date.now() > end) throw new Error(`no burst ${want} from the victim; got: ${out.slice(-300)}`);
        await sleep(5);
      }
      const now = Number(line.exec(out)![1]);
      const made = now - total;
      total = now;
      return made;
    },
    quit: async () => {
      child.stdin!.end('q\n');
      const code = await exited;
      const m = /done calls=(\d+) bad=(\d+)/.exec(out);
      return { calls: Number(m?.[1] ?? -1), bad: Number(m?.[2] ?? -1), code };
    },
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export interface HookKind {
  name: string;
  object: string;
  /** Globals that count the burst's calls: each must equal the victim's count. */
  counters: string[];
  args?: string[];
}

/** Every hook kind the lifecycle victim exercises. */
export const hookKinds: HookKind[] = [
  { name: 'uprobe', object: 'lc_uprobe', counters: ['counted_hits'] },
  { name: 'uretprobe', object: 'lc_uretprobe', counters: ['counted_hits'] },
  { name: 'override', object: 'lc_override', counters: ['counted_hits'] },
  { name: 'uprobe+uretprobe', object: 'lc_both', counters: ['counted_hits', 'counted_returns'] },
  { name: 'JS path (uprobe)', object: 'lc_js', counters: ['counted_hits'] },
  { name: 'USDT', object: 'lc_usdt', counters: ['counted_hits'] },
  { name: 'syscall tracepoint', object: 'lc_sys', counters: ['counted_hits'] },
  { name: 'syscall tracepoint, JS path', object: 'lc_sys_js', counters: ['counted_hits'] },
];

export interface Cycle {
  result: CliResult;
  /** SIGINT → nothing of ours mapped in the target (ms); NaN if it never went. */
  detachMs: number;
  /** SIGINT → the CLI's exit (ms): the detach plus its watch for a crash (host/session/targetFate.ts). */
  exitMs: number;
  /** Each counter's value in the final dump, and the calls the victim made in its burst. */
  counted: Record<string, number>;
  expected: number;
}

function globalValue(stdout: string, name: string): number {
  const m = new RegExp(`^@${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(stdout);
  return m ? Number(m[1]) : NaN;
}

/** `object.bpf.o:counter` when several objects are loaded (how the dump names them then). */
export const counterKey = (kind: HookKind, counter: string): string => `${kind.object}.bpf.o:${counter}`;

/**
 * One attach of `kinds` (one session, one object each), one burst, Ctrl-C: what the detach
 * took and what the final dump said, per counter (keyed by counterKey when several kinds).
 */
export async function lifecycleCycle(v: LifecycleVictim, kinds: HookKind[], hooks: 'inline' | 'interceptor', agentGoneWithinMs = 10000): Promise<Cycle> {
  const objects = kinds.flatMap((k) => ['-o', bpfObjectPath(k.object), ...(k.args ?? [])]);
  const args = ['attach', '--pid', String(v.pid), ...objects, '--hooks', hooks];
  const cli = startCli(args);
  try {
    await waitForOutput(cli, (t) => / installed in pid/.test(t), 30000);
  } catch (e) {
    cli.kill('SIGKILL');
    const r = await cli.result;
    throw new Error(`attach failed (${(e as Error).message.slice(0, 200)}): exit ${r.code}\n${r.stderr}`);
  }
  const expected = await v.burst();
  const stopAt = Date.now();
  cli.kill('SIGINT');
  let detachMs = NaN;
  let exitMs = NaN;
  const exited = cli.result.then((r) => {
    exitMs = Date.now() - stopAt;
    return r;
  });
  for (;;) {
    let maps = '';
    try {
      maps = fs.readFileSync(`/proc/${v.pid}/maps`, 'utf8');
    } catch {
      break; // the target is gone: the caller sees it
    }
    if (!ours.test(maps)) {
      detachMs = Date.now() - stopAt;
      break;
    }
    if (Date.now() - stopAt > agentGoneWithinMs) break;
    await sleep(5);
  }
  const result = await exited;
  const counted: Record<string, number> = {};
  for (const k of kinds) {
    for (const c of k.counters) {
      const value = kinds.length > 1 ? globalValue(result.stdout, counterKey(k, c)) : NaN;
      // A global whose name no other object has is printed without its object's name.
      counted[kinds.length > 1 ? counterKey(k, c) : c] = Number.isNaN(value) ? globalValue(result.stdout, c) : value;
    }
  }
  return { result, detachMs, exitMs, counted, expected };
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
export const taskCount = (pid: number): number => fs.readdirSync(`/proc/${pid}/task`).length;
