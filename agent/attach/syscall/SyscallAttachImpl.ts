// SYSCALL_TRACEPOINT on Frida's Stalker, after bpftime's syscall_trace_attach_impl:
// per-syscall enter/exit callback sets plus the raw_syscalls (any syscall) sets, run
// around every `syscall` instruction of every thread. bpftime rewrites the instructions
// in place (zpoline); we let Stalker recompile the code with callouts instead, which
// needs no page 0 and also catches code generated later.

import {
  AttachError,
  type AttachImpl,
  type AttachPrivateData,
  type AttachServices,
  type AttachType,
  type EbpfRunCallback,
} from '../../runtime/AttachImpl.js';
import type { AttachSpec } from '../../../protocol/spec.js';
import { DEFAULT_SYSCALL_MECHANISM, type SyscallMechanism } from '../../../protocol/messages.js';
import { CFG, createSyscallFilter, NATIVE, NATIVE_MAX_PROGS, type SyscallFilter } from './syscallFilter.js';
import { SyscallPrivateData } from './SyscallPrivateData.js';
import { SYSCALL_SLOTS, syscallName } from '../../../protocol/syscalls.js';
import { ThreadFollower } from './ThreadFollower.js';
import { SyscallRewriter } from './rewrite/SyscallRewriter.js';
import { hookProcessExit, NR_EXIT_GROUP } from './exitHooks.js';
import { ENTER_CTX_LEN, EXIT_CTX_LEN, type SyscallHit, type ThreadState } from './threadState.js';

interface Entry {
  data: SyscallPrivateData;
  callback: EbpfRunCallback;
}

const NONE: readonly EbpfRunCallback[] = [];

export class SyscallAttachImpl implements AttachImpl {
  readonly name = 'syscall';
  readonly attachTypes: readonly AttachType[] = ['syscall_tracepoint'];
  private services!: AttachServices;
  private nextId = 1;
  /** Threads left inside a syscall they entered under Stalker when the last attach went (see ThreadFollower.stop). */
  blockedAtDetach = 0;
  private readonly entries = new Map<number, Entry>();
  /** Rebuilt on every attach/detach; index = syscall number. */
  private enterSets: (readonly EbpfRunCallback[])[] = [];
  private exitSets: (readonly EbpfRunCallback[])[] = [];
  private anyEnter: readonly EbpfRunCallback[] = NONE;
  private anyExit: readonly EbpfRunCallback[] = NONE;
  /**
   * Created on first attach and then kept for the agent's lifetime: a thread blocked in a
   * syscall when we detach still returns through the on_exit callout into this module.
   */
  private filter: (SyscallFilter & { keepAlive: unknown[] }) | null = null;
  private follower: ThreadFollower | null = null;
  private readonly retiredFollowers: ThreadFollower[] = [];
  private faultLogged = false;
  private exitListeners: InvocationListener[] = [];
  /** How syscalls are reached: Stalker callouts, or rewritten sites (rewrite/). */
  private mechanism: SyscallMechanism = DEFAULT_SYSCALL_MECHANISM;
  private rewriter: SyscallRewriter | null = null;

  init(services: AttachServices): void {
    this.services = services;
  }

  /** Picks the mechanism for the next first attach (a running one is kept until the last detach). */
  setMechanism(mechanism: SyscallMechanism): void {
    this.mechanism = mechanism;
  }

  createPrivateData(spec: AttachSpec): AttachPrivateData {
    return SyscallPrivateData.fromSpec(spec);
  }

  createAttach(callback: EbpfRunCallback, data: AttachPrivateData, _type: AttachType): number {
    if (!(data instanceof SyscallPrivateData)) throw new AttachError(`syscall attach given foreign private data (${data.description})`);
    const id = this.nextId++;
    this.entries.set(id, { data, callback });
    this.rebuild();
    try {
      this.ensureFollowing();
    } catch (e) {
      this.entries.delete(id);
      this.rebuild();
      throw new AttachError(`cannot trace syscalls: ${(e as Error).message}`);
    }
    return id;
  }

  detachById(id: number): void {
    if (!this.entries.delete(id)) return;
    this.rebuild();
    if (this.entries.size === 0 && this.rewriter) {
      this.rewriter.stop();
      for (const f of this.rewriter.failures) this.services.log('warn', `syscall rewrite: ${f}`);
      this.rewriter = null; // its trampolines and stubs stay mapped for good
      for (const l of this.exitListeners.splice(0)) l.detach();
    }
    if (this.entries.size === 0 && this.follower) {
      const blocked = this.follower.stop();
      this.blockedAtDetach += blocked.length;
      for (const b of blocked) {
        this.services.log(
          'warn',
          `thread ${b.tid} is blocked in ${syscallName(b.nr)}(): hooks are off, but Frida's agent stays in the target until that call returns`,
        );
      }
      // Its state blocks must outlive it: a thread that was inside a syscall when it was
      // unfollowed still runs that block's on_exit callout, which reads (and, with an
      // override set, writes rax from) its block. Freed, they gave a victim's getpid and
      // open garbage results at detach (measured: 0xcccccccc). A few hundred bytes a thread.
      this.retiredFollowers.push(this.follower);
      this.follower = null;
      for (const l of this.exitListeners.splice(0)) l.detach();
    }
  }

  describeAttach(id: number): string | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (this.rewriter) {
      const native = e.callback.nativeHandle !== undefined && this.services.nativeRunner() !== null;
      return `${e.data.description} (rewrite, ${this.rewriter.siteCount} sites${native ? ', native path' : ''})`;
    }
    const n = this.follower?.followedTids().length ?? 0;
    // Native when its syscalls' other programs are too (see rebuildNative).
    const native = e.callback.nativeHandle !== undefined && this.services.nativeRunner() !== null;
    return `${e.data.description} (stalker, ${n} thread${n === 1 ? '' : 's'} followed${native ? ', native path' : ''})`;
  }

  /** Per-module site coverage of the rewrite mechanism (for tests and diagnostics). */
  rewriteCoverage(): unknown[] {
    return this.rewriter?.coverage ?? [];
  }

  /** Thread ids currently under Stalker (for tests and diagnostics). */
  followedThreads(): number[] {
    return this.follower?.followedTids() ?? [];
  }

  private ensureFollowing(): void {
    if (this.mechanism === 'rewrite') {
      if (this.rewriter || this.follower) return;
      const rewriter = new SyscallRewriter(this.filterOrCreate(), (state, phase) => this.dispatchState(state, phase), (handle, status) => this.services.nativeRunner()?.fault(handle, status));
      rewriter.start();
      this.rewriter = rewriter;
      // _exit's exit_group is `mov %esi,%eax; syscall`, no rewritable pair: the hook stays.
      this.exitListeners = hookProcessExit(this.filterOrCreate().onProcessExit);
      for (const f of rewriter.failures) this.services.log('warn', `syscall rewrite: ${f}`);
      return;
    }
    if (!this.follower) {
      const filter = this.filterOrCreate();
      this.follower = new ThreadFollower(filter.transform, () => filter.syscallBlocks());
      this.follower.start();
      this.exitListeners = hookProcessExit(this.filterOrCreate().onProcessExit);
      for (const f of this.follower.failures) this.services.log('warn', `syscall tracing misses ${f}`);
    }
  }

  private filterOrCreate(): SyscallFilter {
    this.filter ??= createSyscallFilter(
      (slot) => this.dispatch(slot, 'enter'),
      (slot) => this.dispatch(slot, 'exit'),
      (tid, status) => this.processExit(tid, status),
      (handle, status) => this.services.nativeRunner()?.fault(handle, status),
    );
    return this.filter;
  }

  /** Rebuilds the callback sets and the C enable table from the live entries. */
  private rebuild(): void {
    const enter: EbpfRunCallback[][] = [];
    const exit: EbpfRunCallback[][] = [];
    const anyEnter: EbpfRunCallback[] = [];
    const anyExit: EbpfRunCallback[] = [];
    for (const { data, callback } of this.entries.values()) {
      if (data.nr === null) (data.phase === 'enter' ? anyEnter : anyExit).push(callback);
      else {
        const sets = data.phase === 'enter' ? enter : exit;
        (sets[data.nr] ??= []).push(callback);
      }
    }
    this.enterSets = Array.from({ length: SYSCALL_SLOTS }, (_, i) => enter[i] ?? NONE);
    this.exitSets = Array.from({ length: SYSCALL_SLOTS }, (_, i) => exit[i] ?? NONE);
    this.anyEnter = anyEnter.length ? anyEnter : NONE;
    this.anyExit = anyExit.length ? anyExit : NONE;
    // On first attach the filter is compiled here, so its table is filled before any thread is followed.
    if (!this.filter && this.entries.size === 0) return;
    const cfg = this.filterOrCreate().cfg;
    for (let i = 0; i < SYSCALL_SLOTS; i++) {
      cfg[CFG.enter + i] = this.enterSets[i].length ? 1 : 0;
      cfg[CFG.exit + i] = this.exitSets[i].length ? 1 : 0;
    }
    cfg[CFG.anyEnter] = this.anyEnter.length ? 1 : 0;
    cfg[CFG.anyExit] = this.anyExit.length ? 1 : 0;
    this.rewriter?.refreshFlags();
    this.rebuildNative();
  }

  /**
   * Fills the callouts' native run table: a syscall whose programs (its own set and the raw
   * set) all carry a nativeHandle runs them from C, without entering JS. Quiesced first, so
   * no callout reads a half-written table; left inactive when nothing can run natively,
   * which is also how the last detach leaves it before the engine is unloaded.
   */
  private rebuildNative(): void {
    const filter = this.filter;
    if (!filter) return;
    filter.quiesce();
    const runner = this.services.nativeRunner();
    const block = filter.native;
    // Everything but `active` and `inflight`, which belong to quiesce/activate and the
    // callouts (a callout that came in after quiesce decrements inflight again).
    new Uint8Array(ArrayBuffer.wrap(block.add(NATIVE.progs), NATIVE.size - NATIVE.progs)).fill(0);
    block.add(NATIVE.run).writePointer(NULL);
    block.add(NATIVE.inRun).writePointer(NULL);
    block.add(NATIVE.ctxAddr).writeU64(0);
    block.add(NATIVE.enabled).writePointer(NULL);
    if (runner === null || this.entries.size === 0) return;
    // Always the override variant: enter and exit programs may override (bpf_override_return).
    block.add(NATIVE.run).writePointer(runner.runWithOverride);
    block.add(NATIVE.inRun).writePointer(runner.threadInRun);
    block.add(NATIVE.ctxAddr).writeU64(runner.ctxAddr);
    block.add(NATIVE.enabled).writePointer(runner.enabled);
    const progs = new Uint16Array(ArrayBuffer.wrap(block.add(NATIVE.progs), NATIVE.nativeOnly - NATIVE.progs));
    const nativeOnly = new Uint8Array(ArrayBuffer.wrap(block.add(NATIVE.nativeOnly), 2 * SYSCALL_SLOTS));
    const handles = (set: readonly EbpfRunCallback[]): number[] | null =>
      set.length <= NATIVE_MAX_PROGS && set.every((cb) => cb.nativeHandle !== undefined) ? set.map((cb) => cb.nativeHandle!) : null;
    const writeList = (phase: number, slot: number, list: number[]) =>
      list.forEach((h, i) => (progs[(phase * (SYSCALL_SLOTS + 1) + slot) * NATIVE_MAX_PROGS + i] = h + 1));
    let any = false;
    for (const phase of [0, 1]) {
      const sets = phase === 0 ? this.enterSets : this.exitSets;
      const raw = handles(phase === 0 ? this.anyEnter : this.anyExit);
      if (raw === null) continue;
      writeList(phase, SYSCALL_SLOTS, raw);
      for (let nr = 0; nr < SYSCALL_SLOTS; nr++) {
        const own = handles(sets[nr]);
        if (own === null || own.length + raw.length === 0) continue;
        writeList(phase, nr, own);
        nativeOnly[phase * SYSCALL_SLOTS + nr] = 1;
        any = true;
      }
    }
    if (any) filter.activate();
  }

  /** sys_enter_exit_group from the _exit() hook (see exitHooks.ts). */
  private processExit(tid: number, status: number): void {
    const follower = this.follower ?? this.rewriter;
    if (!follower || (this.enterSets[NR_EXIT_GROUP].length === 0 && this.anyEnter.length === 0)) return;
    const state = follower.stateOf(tid);
    state.fillEnter(NR_EXIT_GROUP, [BigInt(status)]);
    if (this.rewriter) this.rewriter.busy(() => this.dispatchState(state, 'enter'));
    else this.dispatchState(state, 'enter');
  }

  /** Called from the C callouts (under the JS lock) when something is attached to this syscall. */
  private dispatch(slot: number, phase: 'enter' | 'exit'): void {
    const state = this.follower?.states[slot];
    if (state) this.dispatchState(state, phase);
  }

  /** Runs the programs for the syscall recorded in `state` (either mechanism's JS path). */
  private dispatchState(state: ThreadState, phase: 'enter' | 'exit'): void {
    try {
      const nr = state.nr();
      const inRange = nr >= 0 && nr < SYSCALL_SLOTS;
      if (phase === 'enter') this.run(state, inRange ? this.enterSets[nr] : NONE, this.anyEnter, state.enterBytes, ENTER_CTX_LEN);
      else this.run(state, inRange ? this.exitSets[nr] : NONE, this.anyExit, state.exitBytes, EXIT_CTX_LEN);
    } catch (e) {
      // Never let an exception unwind into the callout: it would crash the target.
      if (!this.faultLogged) {
        this.faultLogged = true;
        this.services.log('error', `syscall ${phase} dispatch failed: ${(e as Error).stack ?? e}`);
      }
    }
  }

  private run(state: ThreadState, perSyscall: readonly EbpfRunCallback[], any: readonly EbpfRunCallback[], record: Uint8Array, len: number): void {
    if (perSyscall.length === 0 && any.length === 0) return;
    // One hit descriptor per thread, reused: this runs on every traced syscall.
    const hit = state.hit ??= { ctxLen: 0, tid: state.tid, funcIp: 0n, override: null, cpu: undefined, overridden: false, value: 0n, userRegs: () => state.userRegs() };
    hit.ctxLen = len;
    hit.cpu = state.cpu();
    hit.overridden = false;
    hit.override ??= (v: bigint) => {
      hit.overridden = true;
      hit.value = v;
    };
    if (!this.runSet(perSyscall, hit, record, len) || !this.runSet(any, hit, record, len)) return;
    if (hit.overridden) state.setOverride(hit.value);
  }

  /** False when the runtime went away meanwhile (detached: the VM memory is gone). */
  private runSet(set: readonly EbpfRunCallback[], hit: SyscallHit, record: Uint8Array, len: number): boolean {
    for (let i = 0; i < set.length; i++) {
      // Copied before every program: the area is shared by all programs and hooks.
      const ctx = this.ctxBytes();
      if (ctx === null) return false;
      ctx.set(len === record.length ? record : record.subarray(0, len));
      set[i](hit);
    }
    return true;
  }

  private ctxCache: { view: DataView; bytes: Uint8Array } | null = null;

  /** The context area as bytes, re-derived only when the VM memory view changes. */
  private ctxBytes(): Uint8Array | null {
    const view = this.services.ctxView();
    if (view === null) return null;
    if (this.ctxCache?.view !== view) {
      this.ctxCache = { view, bytes: new Uint8Array(view.buffer, view.byteOffset + this.services.ctxAddr, ENTER_CTX_LEN) };
    }
    return this.ctxCache.bytes;
  }
}
