// UPROBE, URETPROBE and UPROBE_OVERRIDE on Frida's Interceptor, after bpftime's
// frida_uprobe_attach_impl: entry and return probes are invocation listeners, an override
// is a replacement that runs the program first and calls the original only when the
// program did not override the return value.

import {
  AttachError,
  type AttachImpl,
  type AttachPrivateData,
  type AttachServices,
  type AttachType,
  type EbpfRunCallback,
} from '../../runtime/AttachImpl.js';
import { findModule, resolveTarget, TargetError } from './resolveTarget.js';
import { PT_REGS_SIZE } from './ptRegs.js';
import { ptRegsFill } from './ptRegsFill.js';
import { UprobePrivateData } from './UprobePrivateData.js';
import { forkGuard, type GatedHook } from '../../forkGuard.js';
import { NativeProbe } from './nativeProbe.js';
import { trapSites } from './trapSites.js';
import { attachInline, kindOf } from './inlineHook.js';
import type { InlineProbe } from '../../hooks/inlineProbe.js';
import { PlacementError } from '../../hooks/instructions.js';
import { PatchError } from '../../hooks/codePatcher.js';
import { commitInterceptor, redirectCheck } from '../../interceptorCommit.js';

interface Entry {
  type: AttachType;
  data: UprobePrivateData;
  callback: EbpfRunCallback;
  address: NativePointer | null;
  listener: InvocationListener | null;
  replaced: boolean;
  /** The native gate and its callback; reachable for the agent's lifetime once made (see below). */
  hook: GatedHook | null;
  /** Set when the program runs from a native listener (nativeProbe.ts). */
  probe: NativeProbe | null;
  /** The USDT semaphore raised while this hook is in (trap hooks). */
  semaphore: NativePointer | null;
  /** Set when the hook is the inline engine's (--hooks inline). */
  inline: InlineProbe | null;
}

type ArgTypes = ['uint64', 'uint64', 'uint64', 'uint64', 'uint64', 'uint64'];
const ARGS: ArgTypes = ['uint64', 'uint64', 'uint64', 'uint64', 'uint64', 'uint64'];

/**
 * Gated hooks of removed attaches: a thread can be between the native gate and the JS
 * callback when the hook is removed, so the callback must outlive it. A few bytes each.
 */
const retiredHooks: GatedHook[] = [];

function toBig(p: NativePointer): bigint {
  return BigInt(p.toString());
}

export class UprobeAttachImpl implements AttachImpl {
  readonly name = 'uprobe';
  readonly attachTypes: readonly AttachType[] = ['uprobe', 'uretprobe', 'uprobe_override'];
  private services!: AttachServices;
  private nextId = 1;
  private readonly entries = new Map<number, Entry>();
  /** Addresses already replaced: Interceptor allows one replacement per function. */
  private readonly replaced = new Map<string, number>();
  private moduleObserver: ModuleObserver | null = null;

  init(services: AttachServices): void {
    this.services = services;
  }

  createPrivateData(spec: Parameters<typeof UprobePrivateData.fromSpec>[0]): AttachPrivateData {
    return UprobePrivateData.fromSpec(spec);
  }

  createAttach(callback: EbpfRunCallback, data: AttachPrivateData, type: AttachType): number {
    if (!(data instanceof UprobePrivateData)) throw new AttachError(`uprobe attach given foreign private data (${data.description})`);
    const entry: Entry = { type, data, callback, address: null, listener: null, replaced: false, hook: null, probe: null, semaphore: null, inline: null };
    const module = data.target.module;
    if (module !== undefined && data.target.address === undefined && findModule(module) === null) {
      // Not loaded yet: hooked when it appears (dlopen). A typo shows up as a warning at the end.
      const id = this.nextId++;
      this.entries.set(id, entry);
      this.watchModules();
      return id;
    }
    this.install(entry);
    const id = this.nextId++;
    this.entries.set(id, entry);
    return id;
  }

  describeAttach(id: number): string | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    return e.address?.toString();
  }

  waitingFor(id: number): string | undefined {
    const e = this.entries.get(id);
    // Only a hook on a library not loaded yet is deferred (createAttach); the rest have an address.
    return e && e.address === null ? e.data.target.module : undefined;
  }

  detachById(id: number): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    if (e.semaphore) adjustSemaphore(e.semaphore, -1);
    if (e.inline) {
      // Stops the probe, waits for threads inside its program, puts the bytes back with the
      // site's last probe. Its stub stays: a thread may still be in it.
      e.inline.detach();
      return this.afterDetach();
    }
    this.removeInterceptorHook(e, e.address);
    this.afterDetach();
  }

  /** Takes an Interceptor hook out (at `addr`, where it was made). */
  private removeInterceptorHook(e: Entry, addr: NativePointer | null): void {
    // A trap hook first stops sending threads into the trampoline, then Interceptor puts the nop back.
    if (e.data.trap && addr) trapSites().retire(addr);
    if (e.listener) e.listener.detach();
    e.listener = null;
    if (e.replaced && addr) {
      Interceptor.revert(addr);
      this.replaced.delete(addr.toString());
    }
    e.replaced = false;
    if (e.hook) retiredHooks.push(e.hook);
    // After the listener is gone: waits for threads still running the program natively.
    e.probe?.retire();
    Interceptor.flush();
    if (e.data.trap && addr) trapSites().release(addr);
  }

  private afterDetach(): void {
    if (this.moduleObserver && ![...this.entries.values()].some((x) => x.address === null)) {
      this.moduleObserver.detach();
      this.moduleObserver = null;
    }
  }

  private watchModules(): void {
    if (this.moduleObserver) return;
    this.moduleObserver = Process.attachModuleObserver({
      onAdded: (m: Module) => {
        for (const e of this.entries.values()) {
          if (e.address !== null || e.data.target.module === undefined) continue;
          if (findModule(e.data.target.module) === null) continue;
          try {
            this.install(e);
            this.services.log('info', `attached ${e.data.description} in ${m.name} (loaded after attach)`);
          } catch (err) {
            this.services.log('error', `${e.data.description}: ${(err as Error).message}`);
          }
        }
      },
    });
  }

  /** The inline engine's hook; false when it cannot place one here and the Interceptor should. */
  private installInline(e: Entry, addr: NativePointer): boolean {
    const t = e.data.target;
    const boundaryCheck = t.symbol !== undefined || t.offset !== undefined;
    try {
      e.inline = attachInline(addr, kindOf(e.type), e.callback, this.services, e.data.description, boundaryCheck);
    } catch (err) {
      if (err instanceof PlacementError && isUserError(err)) throw new AttachError(err.message);
      if (!(err instanceof PlacementError) && !(err instanceof PatchError)) throw new AttachError(`cannot hook ${e.data.description} at ${addr}: ${(err as Error).message}`);
      this.services.log('warn', `${e.data.description}: inline hook not possible (${err.message}); using Frida's Interceptor`);
      return false;
    }
    e.address = addr;
    return true;
  }

  private install(e: Entry): void {
    let addr: NativePointer;
    try {
      addr = resolveTarget(e.data.target);
    } catch (err) {
      throw new AttachError(err instanceof TargetError ? err.message : String(err));
    }
    const services = this.services;
    const fill = ptRegsFill();
    const cb = e.callback;
    const funcIp = toBig(addr);
    if (e.data.trap && e.type !== 'uprobe') throw new AttachError(`${e.data.description}: a USDT site takes an entry probe only`);
    // The inline engine plants an int3 itself on a site that is not a function's entry (a
    // USDT nop is never one). Through Interceptor instead, Frida's unload waited ~5 s for the
    // site's trampoline at every detach after a hit (README, Known limitations).
    if (services.hookMechanism?.() === 'inline' && this.installInline(e, addr)) {
      this.raiseSemaphore(e);
      return;
    }
    // USDT sites get a 1-byte breakpoint; the site is registered with the SIGTRAP handler
    // while Interceptor writes its redirect, before the int3 can be reached.
    const where: NativePointer | InstrumentationTarget = e.data.trap ? trapSites().target(addr, (t) => trapSites().activate(addr, t)) : addr;
    const written = redirectCheck(addr);
    try {
      const runner = services.nativeRunner();
      // Programs that need no JS run from a native listener; the others from JS behind a
      // native gate, so that a forked child never enters JS (forkGuard.ts).
      // (An entry or return probe cannot override: such a program keeps the JS helper, which says so.)
      if (cb.nativeHandle !== undefined && runner !== null && e.type === 'uprobe_override') {
        const key = addr.toString();
        if (this.replaced.has(key)) {
          throw new AttachError(`${e.data.description} is already overridden by another program (one override per function)`);
        }
        e.probe = new NativeProbe(runner, cb.nativeHandle);
        const { replacement, data } = e.probe.replacement(runner, addr);
        Interceptor.replace(addr, replacement, data);
        e.replaced = true;
        this.replaced.set(key, 1);
      } else if (cb.nativeHandle !== undefined && !cb.nativeOverride && runner !== null && e.type !== 'uprobe_override') {
        e.probe = new NativeProbe(runner, cb.nativeHandle);
        const { callbacks, data } = e.probe.listener(e.type === 'uretprobe');
        e.listener = Interceptor.attach(where, callbacks, data);
      } else if (e.type === 'uprobe' || e.type === 'uretprobe') {
        const atReturn = e.type === 'uretprobe';
        const onHit = (tid: number) => {
          const dst = services.ctxPtr();
          if (dst === null) return;
          const cpu = atReturn ? fill.return(dst) : fill.entry(dst);
          cb({ ctxLen: PT_REGS_SIZE, tid, funcIp, override: null, cpu });
        };
        const { callbacks, hook } = atReturn ? forkGuard().listener(undefined, onHit) : forkGuard().listener(onHit);
        e.hook = hook;
        e.listener = Interceptor.attach(where, callbacks, hook.data);
      } else {
        const key = addr.toString();
        if (this.replaced.has(key)) {
          throw new AttachError(`${e.data.description} is already overridden by another program (one override per function)`);
        }
        const original = new NativeFunction(addr, 'uint64', ARGS);
        let overrideValue: bigint | null = null;
        const setOverride = (v: bigint) => {
          overrideValue = v;
        };
        const { replacement, hook } = forkGuard().replacement(addr, (a0, a1, a2, a3, a4, a5, tid) => {
          const dst = services.ctxPtr();
          overrideValue = null;
          if (dst !== null) {
            const cpu = fill.entry(dst);
            cb({ ctxLen: PT_REGS_SIZE, tid, funcIp, override: setOverride, cpu });
          }
          if (overrideValue !== null) return uint64(BigInt.asUintN(64, overrideValue).toString());
          return original(a0, a1, a2, a3, a4, a5);
        });
        e.hook = hook;
        Interceptor.replace(addr, replacement, hook.data);
        e.replaced = true;
        this.replaced.set(key, 1);
      }
    } catch (err) {
      if (err instanceof AttachError) throw err;
      throw new AttachError(`cannot hook ${e.data.description} at ${addr}: ${(err as Error).message}`);
    }
    // "Installed" is said once the hook is in the code (agent/interceptorCommit.ts).
    if (!commitInterceptor(written)) {
      this.removeInterceptorHook(e, addr);
      throw new AttachError(`cannot hook ${e.data.description} at ${addr}: Frida's Interceptor had not written the hook after 1 s (threads kept entering its JS runtime)`);
    }
    e.address = addr;
    this.raiseSemaphore(e);
  }

  /** A USDT probe with a semaphore: raised while this hook is in (lowered at its detach). */
  private raiseSemaphore(e: Entry): void {
    if (e.data.semaphoreOffset === undefined) return;
    const m = e.data.target.module !== undefined ? findModule(e.data.target.module) : Process.mainModule;
    if (m !== null) {
      e.semaphore = m.base.add(e.data.semaphoreOffset);
      adjustSemaphore(e.semaphore, 1);
    }
  }
}

/** Reasons the inline engine refuses an address outright (the Interceptor would not do better). */
function isUserError(err: PlacementError): boolean {
  return /not an instruction boundary|must be at a function's entry|not ours|relocates/.test(err.message);
}

/**
 * A USDT semaphore is a u16 the program tests before preparing a probe's arguments; the
 * kernel raises it for each uprobe on the probe (ref_ctr_offset) and so do we, per site.
 * Not atomic against another tracer's update of the same counter at the same instant.
 */
function adjustSemaphore(at: NativePointer, delta: number): void {
  try {
    const v = at.readU16();
    at.writeU16(Math.max(0, Math.min(0xffff, v + delta)));
  } catch {
    // unmapped (the library went away): nothing to restore
  }
}
