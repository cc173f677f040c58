// `--count`: exact per-function hit counts with no eBPF involved. The counting listener is
// native (a CModule onEnter doing one atomic increment) so counting costs little and is
// exact under any number of threads; a one-shot JS listener reports the first hit.

import type { AttachResult, HookTarget } from '../protocol/messages.js';
import { describeTarget, resolveTarget } from './attach/uprobe/resolveTarget.js';
import type { EventQueue } from './events.js';
import { checkLayout } from './cmodules/checkLayout.js';
import { HIT_COUNTER_C } from './cmodules/generated/hitCounter_c.js';
import { forkGuard, type GatedHook } from './forkGuard.js';

const MAX_COUNTERS = 1024;
/** One gint counter per function (counters.add(COUNTER_BYTES * i)). */
const COUNTER_BYTES = 4;

export class HitCounter {
  private readonly counters = Memory.alloc(COUNTER_BYTES * MAX_COUNTERS);
  /** agent/cmodules/hitCounter.c: counters[i] += 1 on each hit of the i-th function. */
  private readonly module = HitCounter.counterModule(this.counters);
  private readonly names: string[] = [];
  private readonly listeners: InvocationListener[] = [];
  /** Kept for the agent's lifetime: a thread may be between a gate and its callback at detach. */
  private readonly hooks: GatedHook[] = [];

  constructor(private readonly events: EventQueue) {}

  private static counterModule(counters: NativePointer): CModule {
    const cm = new CModule(HIT_COUNTER_C, { counters });
    checkLayout(cm, 'hit_counter_layout', [['sizeof (counter)', COUNTER_BYTES]]);
    return cm;
  }

  add(targets: HookTarget[]): AttachResult[] {
    return targets.map((t) => {
      const name = describeTarget(t);
      try {
        if (this.names.length >= MAX_COUNTERS) throw new Error(`at most ${MAX_COUNTERS} counted functions`);
        const addr = resolveTarget(t);
        const idx = this.names.length;
        this.listeners.push(Interceptor.attach(addr, { onEnter: this.module.on_enter }, ptr(idx)));
        let fired = false;
        // Gated: a forked child must not enter JS (forkGuard.ts).
        const { callbacks, hook } = forkGuard().listener((tid) => {
          if (fired) return; // threads racing into the hook before detach takes effect
          fired = true;
          firstHit.detach();
          this.events.push({ type: 'first-hit', target: name, tid, hrtimeMs: Date.now() });
          this.events.flush();
        });
        this.hooks.push(hook);
        const firstHit = Interceptor.attach(addr, callbacks, hook.data);
        this.listeners.push(firstHit);
        this.names.push(name);
        return { state: 'attached', target: name, where: addr.toString() };
      } catch (e) {
        return { state: 'failed', target: name, error: e instanceof Error ? e.message : String(e) };
      }
    });
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    this.names.forEach((name, i) => {
      out[name] = (out[name] ?? 0) + this.counters.add(COUNTER_BYTES * i).readS32();
    });
    return out;
  }

  detachAll(): void {
    for (const l of this.listeners.splice(0)) l.detach();
    Interceptor.flush();
  }
}
