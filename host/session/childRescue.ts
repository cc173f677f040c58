// Frees forked children of the target that Frida's own exit hook holds for good.
// A child forked while Frida's agent is being injected or torn down inherits an agent that
// does not know it runs in a child; when the child exits, Frida's exit listener waits
// (sched_yield, forever) for the agent's main thread, which exists only in the parent, and
// a parent waiting for the child hangs too. Measured with plain Frida and an empty script:
// one held child per attach and per detach of a process that forks every ~1 ms (Frida
// 17.25.2 and 17.26.2). This is Frida's bug; what we can do is notice such a child and
// resume the call it was making without the hook (host/native/childRescue.c, which checks
// the child exactly before it changes anything).
// A held child is single-threaded, still has Frida's agent mapped (it never exec'd) and
// burns CPU; only those are looked at with ptrace, each at most every RECHECK_MS.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../paths';
import { fridaAgentMapped } from './targetLock';

const RECHECK_MS = 2000;

export const childRescueBinary = (): string => path.join(repoRoot(), 'host', 'native', 'build', 'child-rescue');

export interface FreedChild {
  pid: number;
  /** The function the child was calling when Frida's hook held it (hex address). */
  fn: string;
}

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Direct children of every thread of `pid`. */
function childrenOf(pid: number): number[] {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out = new Set<number>();
  for (const t of tids) {
    for (const c of (read(`/proc/${pid}/task/${t}/children`) ?? '').split(' ')) if (/^\d+$/.test(c)) out.add(Number(c));
  }
  return [...out];
}

/** utime + stime in clock ticks, for a single-threaded child with Frida's agent mapped; null otherwise. */
function suspectTicks(pid: number): number | null {
  const status = read(`/proc/${pid}/status`);
  if (!status || !/^Threads:\s+1$/m.test(status)) return null;
  if (!fridaAgentMapped(pid)) return null;
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return null;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (f[0] !== 'R') return null;
  return Number(f[11]) + Number(f[12]); // fields 14 and 15 of stat
}

export class ChildRescuer {
  /** Ticks seen at the last sweep, per suspect child. */
  private readonly ticks = new Map<number, number>();
  /** When each child was last checked with the helper. */
  private readonly checked = new Map<number, number>();
  private readonly freed = new Set<number>();
  /** Whether the target had a child at any sweep. */
  private sawChildren = false;
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;

  constructor(
    private readonly target: number,
    private readonly onFreed: (c: FreedChild) => void,
    private readonly helper = childRescueBinary(),
  ) {}

  /**
   * Sweeps until stop(): every `fastMs` for the first `fastForMs` (the injection, when a held
   * child keeps its parent waiting), every `slowMs` after.
   */
  start(fastMs = 150, fastForMs = 4000, slowMs = 500): void {
    if (this.timer || !fs.existsSync(this.helper)) return;
    const fastUntil = Date.now() + fastForMs;
    const next = (): void => {
      this.timer = setTimeout(() => {
        void this.sweep().finally(() => {
          if (this.timer) next();
        });
      }, Date.now() < fastUntil ? fastMs : slowMs);
      this.timer.unref();
    };
    next();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * After the detach: Frida's teardown can still hold a child forked meanwhile. A target
   * that has not forked while we watched is not kept waiting for (detach stays fast).
   */
  async afterDetach(forMs = 600, everyMs = 150): Promise<void> {
    this.stop();
    if (!fs.existsSync(this.helper)) return;
    if (!this.sawChildren && childrenOf(this.target).length === 0) return;
    const end = Date.now() + forMs;
    while (Date.now() < end) {
      await this.sweep();
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await this.sweep();
  }

  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const now = Date.now();
    const live = new Set<number>();
    const children = childrenOf(this.target);
    if (children.length) this.sawChildren = true;
    for (const c of children) {
      const t = suspectTicks(c);
      if (t === null || this.freed.has(c)) continue;
      live.add(c);
      const before = this.ticks.get(c);
      this.ticks.set(c, t);
      // Spinning since the last sweep, and not looked at lately.
      if (before === undefined || t <= before || now - (this.checked.get(c) ?? 0) < RECHECK_MS) continue;
      this.checked.set(c, now);
      const fn = await this.runHelper(c);
      if (fn) {
        this.freed.add(c);
        this.onFreed({ pid: c, fn });
      }
    }
    for (const c of [...this.ticks.keys()]) if (!live.has(c)) this.ticks.delete(c);
  }

  private runHelper(pid: number): Promise<string | null> {
    return new Promise((resolve) => {
      execFile(this.helper, [String(pid)], { timeout: 3000 }, (err, stdout) => resolve(err ? null : stdout.trim() || null));
    });
  }
}
