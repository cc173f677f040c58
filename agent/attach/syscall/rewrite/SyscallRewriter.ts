// The rewrite mechanism: every rewritable syscall site of the loaded code (siteScanner)
// jumps to its own trampoline (trampolines.ts) in immortal memory, whose flag byte says
// whether any program wants that site's syscall number. A module observer rewrites
// libraries loaded later, before dlopen returns; modules that go are forgotten.
// Detach clears `armed` and every flag, waits until no thread is inside the handlers,
// then puts every site's original bytes back. Trampolines and stubs are never freed: a
// thread blocked in a syscall inside one returns through it, and forked children keep
// running the rewritten code (they pass through: the handlers skip them).

import { SYSCALL_SLOTS } from '../../../../protocol/syscalls.js';
import { forkGuard } from '../../../forkGuard.js';
import { CFG, type SyscallFilter } from '../syscallFilter.js';
import { ThreadState, TS } from '../threadState.js';
import { isFridaThread } from '../ThreadFollower.js';
import { createRewriteHandlers, listTasks, ThreadTable, MAX_SITES, SITE, type RewriteHandlers } from './rewriteHandlers.js';
import { scanRange } from './siteScanner.js';
import { canPatch, patch5, withWritable } from './sitePatcher.js';
import { STUB_PAGE, stubPage } from './stubs.js';
import { chunkReaches, jumpBytes, TrampolineChunk } from './trampolines.js';

interface Site {
  at: NativePointer;
  nr: number;
  original: number[];
  /** Null for a site whose number comes in rax: its chunk's nrTable decides. */
  flag: NativePointer | null;
  code: NativePointer;
  module: string;
}

/** Per-module coverage, for diagnostics and the README. */
export interface ModuleCoverage {
  module: string;
  syscalls: number;
  rewritten: number;
  /** Pattern pairs whose syscall is a branch target, or that straddle a cache line. */
  skipped: number;
}

/** Code we must not rewrite: our own VM library and Frida (cloaked, but also by name). */
function excluded(m: Module): boolean {
  if (m.name.startsWith('linux-vdso') || m.name.startsWith('linux-gate')) return true;
  if (/frida|libbpfvm/i.test(m.path)) return true;
  return Cloak.hasRangeContaining(m.base);
}

export class SyscallRewriter {
  private readonly handlers: RewriteHandlers;
  private readonly sites: Site[] = [];
  private readonly chunks: TrampolineChunk[] = [];
  private readonly done = new Set<string>();
  private readonly states = new Map<number, ThreadState>();
  private observer: ModuleObserver | null = null;
  private exitListener: InvocationListener | null = null;
  private readonly endListeners: InvocationListener[] = [];
  private readonly frida = new ThreadTable();
  private readonly app = new ThreadTable();
  /** App threads the thread observer reported (not there at attach). */
  private readonly observed = new Set<number>();
  private threadObserver: ThreadObserver | null = null;
  private refreshTimer: ReturnType<typeof setInterval> | null = null;
  readonly coverage: ModuleCoverage[] = [];
  readonly failures: string[] = [];
  private nextIndex = 0;

  constructor(
    private readonly filter: SyscallFilter,
    onHit: (state: ThreadState, phase: 'enter' | 'exit') => void,
    onNativeFault: (handle: number, status: number) => void,
  ) {
    this.handlers = createRewriteHandlers(filter.cfgBlock, filter.native, forkGuard().state, this.frida.block, this.app.block, (rec, phase) => {
      const tid = rec.add(TS.tid).readS32();
      if (Cloak.hasThread(tid)) {
        this.frida.add(tid); // a Frida thread born after the last refresh
        return;
      }
      let state = this.states.get(tid);
      if (!state) {
        state = new ThreadState(-1, tid);
        this.states.set(tid, state);
      }
      Memory.copy(state.block, rec, TS.size);
      onHit(state, phase === 0 ? 'enter' : 'exit');
      // setOverride wrote these into the state block; the handler reads them from its record.
      rec.add(TS.overrideSet).writeS64(int64(state.view.getBigInt64(TS.overrideSet, true).toString()));
      rec.add(TS.overrideValue).writeS64(int64(state.view.getBigInt64(TS.overrideValue, true).toString()));
    }, onNativeFault);
  }

  /** The JS-path state of a thread (for reports made outside a site, e.g. process exit). */
  stateOf(tid: number): ThreadState {
    let state = this.states.get(tid);
    if (!state) {
      state = new ThreadState(-1, tid);
      this.states.set(tid, state);
    }
    return state;
  }

  /** Runs JS reached from outside the sites (the _exit hook) so that its own syscalls are not traced. */
  busy(fn: () => void): void {
    this.handlers.busy(fn);
  }

  get siteCount(): number {
    return this.sites.length;
  }

  start(): void {
    const page = stubPage().base;
    page.add(STUB_PAGE.enterFn).writePointer(this.handlers.enter);
    page.add(STUB_PAGE.exitFn).writePointer(this.handlers.exit);
    // Every thread there now is Frida's (cloaked) or the target's; later ones are sorted by
    // the thread observer as they start, and a timer catches Frida threads cloaked late.
    for (const tid of listTasks()) (Cloak.hasThread(tid) ? this.frida : this.app).add(tid);
    this.threadObserver = Process.attachThreadObserver({
      onAdded: (t) =>
        this.handlers.busy(() => {
          if (isFridaThread(t)) this.frida.add(t.id);
          else {
            this.app.add(t.id);
            this.observed.add(t.id);
          }
        }),
      // Not removed here: the observer reports a thread as it starts to end, before its
      // last syscalls (madvise of its stack, exit); the timer below drops ended ones.
    });
    this.refreshTimer = setInterval(() => {
      const live = listTasks();
      const alive = new Set(live);
      for (const tid of this.observed) {
        if (alive.has(tid)) continue;
        this.app.remove(tid);
        this.observed.delete(tid);
      }
      for (const tid of live) {
        if (this.frida.has(tid) || !Cloak.hasThread(tid)) continue;
        // Cloaked since: a thread the observer reported before Gum cloaked or named it. Not
        // the threads there at attach: a spawned main thread is cloaked while it runs
        // Frida's loader, and is the target's again after.
        if (this.app.has(tid) && !this.observed.has(tid)) continue;
        this.app.remove(tid);
        this.frida.add(tid);
      }
    }, 250);
    const ends = new Set<string>();
    for (const name of ['_exit', '_Exit']) {
      const at = Module.findGlobalExportByName(name);
      if (at === null || ends.has(at.toString())) continue;
      ends.add(at.toString());
      this.endListeners.push(Interceptor.attach(at, { onEnter: this.handlers.onProcessEnd }));
    }
    const exit = Module.findGlobalExportByName('exit');
    if (exit !== null) this.exitListener = Interceptor.attach(exit, { onEnter: this.handlers.onExitBegin });
    page.add(STUB_PAGE.armed).writeU32(1);
    for (const m of Process.enumerateModules()) this.rewriteModule(m);
    this.observer = Process.attachModuleObserver({
      // On the thread calling dlopen: its own syscalls while we rewrite are ours, not the target's.
      onAdded: (m) => this.handlers.busy(() => this.rewriteModule(m)),
      onRemoved: (m) => this.forgetModule(m),
    });
    this.refreshFlags();
  }

  /** Sets each site's flag from the enable table: 1 when any program wants its number. */
  refreshFlags(): void {
    this.refreshSome(this.sites);
  }

  /** Restores every site; returns once no thread is inside the handlers (or after ~2 s). */
  stop(): void {
    this.observer?.detach();
    this.observer = null;
    if (this.refreshTimer !== null) clearInterval(this.refreshTimer);
    this.threadObserver?.detach();
    this.threadObserver = null;
    this.exitListener?.detach();
    this.exitListener = null;
    for (const l of this.endListeners.splice(0)) l.detach();
    for (const s of this.sites) s.flag?.writeU8(0);
    for (const c of this.chunks) c.nrTable.writeByteArray(new Array(SYSCALL_SLOTS).fill(0));
    const page = stubPage().base;
    // xchg: a full fence between clearing armed and reading inflight (the stubs do the reverse).
    stubPage().xchg16(page.add(STUB_PAGE.armed), 0);
    const byRange = new Map<string, Site[]>();
    for (const s of this.sites) {
      const key = s.module;
      (byRange.get(key) ?? byRange.set(key, []).get(key)!).push(s);
    }
    for (const group of byRange.values()) {
      const lo = group.reduce((a, s) => (s.at.compare(a) < 0 ? s.at : a), group[0].at);
      const hi = group.reduce((a, s) => (s.at.compare(a) > 0 ? s.at : a), group[0].at).add(7);
      try {
        withWritable(lo, hi, () => group.forEach((s) => patch5(s.at, s.original)));
      } catch (e) {
        this.failures.push(`cannot restore ${group[0].module}: ${(e as Error).message}`);
      }
    }
    this.sites.length = 0;
    this.done.clear();
    // Thread.sleep lets go of the JS lock, so a thread on its way into a JS program gets through.
    for (let i = 0; i < 2000 && page.add(STUB_PAGE.inflight).readS32() !== 0; i++) Thread.sleep(0.001);
  }

  private rewriteModule(m: Module): void {
    const key = `${m.path}@${m.base}`;
    if (this.done.has(key) || excluded(m)) return;
    this.done.add(key);
    const cov: ModuleCoverage = { module: m.name, syscalls: 0, rewritten: 0, skipped: 0 };
    try {
      for (const r of m.enumerateRanges('r-x')) {
        const found = scanRange(r.base, r.size);
        cov.syscalls += found.syscalls;
        cov.skipped += found.cut;
        const todo: Site[] = [];
        for (const f of found.sites) {
          if (!canPatch(f.at) || this.nextIndex >= MAX_SITES) {
            cov.skipped++;
            continue;
          }
          const chunk = this.chunkFor(r.base, r.base.add(r.size));
          if (chunk === null) {
            cov.skipped++;
            continue;
          }
          const index = this.nextIndex++;
          let made: { code: NativePointer; flag: NativePointer | null };
          try {
            made = f.copy === 0 ? chunk.add(f.at, f.nr, index) : { ...chunk.addDynamic(f.at, f.copy, f.run, index), flag: null };
          } catch {
            cov.skipped++; // a rip-relative operand out of the chunk's reach (its slot stays unused)
            continue;
          }
          const { code, flag } = made;
          this.handlers.sites.add(index * SITE.size + SITE.ip).writePointer(f.at.add(f.copy === 0 ? 5 : f.copy));
          this.handlers.sites.add(index * SITE.size + SITE.nr).writeS64(f.nr);
          todo.push({ at: f.at, nr: f.nr, original: [...new Uint8Array(f.at.readByteArray(5)!)], flag, module: key, code });
        }
        if (todo.length === 0) continue;
        this.refreshSome(todo);
        withWritable(r.base, r.base.add(r.size), () => {
          for (const s of todo) patch5(s.at, jumpBytes(s.at, s.code));
        });
        this.sites.push(...todo);
        cov.rewritten += todo.length;
      }
    } catch (e) {
      this.failures.push(`${m.name}: ${(e as Error).message}`);
    }
    this.coverage.push(cov);
  }

  private refreshSome(sites: Site[]): void {
    const cfg = this.filter.cfg;
    // Bit 0: some enter program wants this number, bit 1: some exit program (trampolines.ts).
    const anyEnter = cfg[CFG.anyEnter] !== 0;
    const anyExit = cfg[CFG.anyExit] !== 0;
    const bits = (nr: number) => (anyEnter || cfg[CFG.enter + nr] !== 0 ? 1 : 0) | (anyExit || cfg[CFG.exit + nr] !== 0 ? 2 : 0);
    const table = new Array<number>(SYSCALL_SLOTS);
    for (let nr = 0; nr < SYSCALL_SLOTS; nr++) table[nr] = bits(nr);
    for (const c of this.chunks) c.nrTable.writeByteArray(table);
    for (const s of sites) s.flag?.writeU8(s.nr < SYSCALL_SLOTS ? bits(s.nr) : (anyEnter ? 1 : 0) | (anyExit ? 2 : 0));
  }

  /** Sites of an unloaded module: its memory may be reused, so never write there again. */
  private forgetModule(m: Module): void {
    const key = `${m.path}@${m.base}`;
    this.done.delete(key);
    for (let i = this.sites.length - 1; i >= 0; i--) if (this.sites[i].module === key) this.sites.splice(i, 1);
  }

  private chunkFor(lo: NativePointer, hi: NativePointer): TrampolineChunk | null {
    let chunk = this.chunks.find((c) => !c.full && chunkReaches(c.base, lo, hi)) ?? null;
    if (chunk === null) {
      chunk = TrampolineChunk.near(lo, hi);
      if (chunk !== null) this.chunks.push(chunk);
    }
    return chunk;
  }
}
