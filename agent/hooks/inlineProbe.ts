// Inline probes: a probe block (hookcore.c's struct probe) per probe, and per hooked
// address (a site) one patch, one entry stub and one site block listing the site's probes
// in attach order, all in immortal pages. The hook core runs the whole list on every hit
// (entries, then return hijacks, then overrides), so probes of any kinds coexist on one
// function whatever order they came in; attach and detach publish a new list. Detaching a
// probe takes it out of the list, clears its `active` and waits for threads inside its
// program; the site's bytes go back when its last probe is gone. Stubs, blocks and lists
// are never freed (a thread may still be in them).

import { PROBE, PROBE_FLAG_JS, PROBE_KIND, PROBE_LIST, SITE, hookCore } from './hookCore.js';
import { ENTRY_STUB_ROOM, agentReturnStub, writeEntryStub } from './probeStub.js';
import { allocNear } from './nearMemory.js';
import { patchCodeLive } from './codePatcher.js';
import { ensureTrapHandler, setTrapSite, trapSiteDest } from './trapHandler.js';
import { rawAlloc } from './rawMemory.js';
import { fetchAdd } from './atomics.js';
import { PlacementError, checkBoundary, functionAt, planSite, setOriginalBytesSource, type SitePlan } from './instructions.js';

export type InlineKind = keyof typeof PROBE_KIND;

/** How a probe runs its program: natively through the VM library, or through a JS callback. */
export type ProbeRunner =
  | {
      native: true;
      run: NativePointer;
      runOverride: NativePointer;
      ctxAddr: number;
      enabled: NativePointer;
      handle: number;
      fault: NativePointer;
    }
  | { native: false; js: NativePointer };

export interface InlineProbeOptions {
  kind: InlineKind;
  runner: ProbeRunner;
  /** forkGuard's state block (session-owned, read only while the probe is active). */
  forkState: NativePointer;
  /** What the user asked for, for error messages. */
  describe: string;
}

interface Site {
  addr: NativePointer;
  plan: SitePlan;
  original: number[];
  /** struct site: the published probe list. */
  block: NativePointer;
  /** The site's entry stub, where the patch leads. */
  stub: NativePointer;
  /** Where the stub goes on (relocated original, or a stub another session left). */
  base: NativePointer;
  /** int3 sites: the trap destination before we came (another session's stub), else NULL. */
  trapBefore: NativePointer;
  /** Probe blocks in attach order: what the published list holds. */
  probes: NativePointer[];
  /** Our patch bytes (jump sites), to tell whether someone else has patched over us since. */
  patch: number[];
}

const sites = new Map<string, Site>();
/** Probes attached and not yet detached, for disposeInlineProbes. */
const live = new Set<InlineProbe>();
setOriginalBytesSource(() => [...sites.values()].map((s) => ({ addr: s.addr, bytes: s.original })));

function rel32(from: NativePointer, to: NativePointer): number[] {
  const d = Number(BigInt(to.toString()) - BigInt(from.toString()));
  return [d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff, (d >>> 24) & 0xff];
}

/**
 * Makes `probes` the site's list. A new list every time, never an edit of the published
 * one: a thread walking the old list (it may be preempted there for any time) finds it
 * whole. Its contents are written before the pointer; x86 keeps stores in order.
 */
function publish(site: Site): void {
  let list = NULL;
  if (site.probes.length > 0) {
    list = rawAlloc(PROBE_LIST.probes + 8 * site.probes.length, 'data', 8);
    list.add(PROBE_LIST.n).writeU32(site.probes.length);
    site.probes.forEach((p, i) => list.add(PROBE_LIST.probes + 8 * i).writePointer(p));
  }
  site.block.add(SITE.list).writePointer(list);
}

/** Copies the site's first `plan.relocated` bytes of instructions and jumps back after them. */
function relocateOriginal(addr: NativePointer, plan: SitePlan): NativePointer {
  const room = 96;
  const out = allocNear(addr, room);
  Memory.patchCode(out, room, (c) => {
    const w = new X86Writer(c, { pc: out });
    const r = new X86Relocator(addr, w);
    let n = 0;
    while (n < plan.relocated) {
      const got = r.readOne();
      if (got === 0) throw new PlacementError(`cannot relocate the instructions at ${addr}`);
      n = got;
    }
    for (let insn = r.peekNextWriteInsn(); insn !== null; insn = r.peekNextWriteInsn()) {
      const op = (insn as X86Instruction).operands[0] as X86Operand | undefined;
      if (insn.mnemonic === 'call' && op?.type === 'imm') {
        // A call in the copy would return into the copy, which has no unwind info: an
        // exception thrown below it (or a backtrace) would stop there. Push the original
        // return address instead, so the callee returns straight into the function.
        const ret = BigInt(insn.next.toString());
        r.skipOne();
        w.putLeaRegRegOffset('rsp', 'rsp', -8); // lea: leaves the flags alone
        w.putMovRegOffsetPtrU32('rsp', 0, Number(ret & 0xffffffffn));
        w.putMovRegOffsetPtrU32('rsp', 4, Number(ret >> 32n));
        w.putJmpAddress(ptr(op.value.toString()));
      } else {
        r.writeOne();
      }
    }
    if (!plan.endsFunction) w.putJmpAddress(addr.add(n));
    w.flush();
  });
  return out;
}

function openSite(addr: NativePointer, describe: string, fnStartKnown: boolean): Site {
  const fn = functionAt(addr);
  if (fn && fnStartKnown) checkBoundary(addr, fn, describe);
  const atEntry = fn !== null && fn.start.equals(addr);
  // Another session's int3 here: chain behind its current stub instead of relocating the int3.
  if (addr.readU8() === 0xcc) {
    const dest = trapSiteDest(addr);
    if (dest.isNull()) throw new PlacementError(`${describe}: ${addr} holds a breakpoint that is not ours (a debugger?)`);
    const plan: SitePlan = { mode: 'int3', relocated: 1, endsFunction: false, patchLen: 1 };
    return { addr, plan, original: [0xcc], block: NULL, stub: NULL, base: dest, trapBefore: dest, probes: [], patch: [] };
  }
  // A jump site's relocated instructions run from its stub's copy, so a site inside them
  // would be overwritten (the first 5 bytes) or skipped (the rest).
  for (const o of sites.values()) {
    if (o.plan.mode !== 'jump') continue;
    const d = Number(BigInt(addr.toString()) - BigInt(o.addr.toString()));
    if (d > 0 && d < o.plan.relocated) throw new PlacementError(`${describe}: ${addr} is inside the instructions the inline hook at ${o.addr} relocates; hook it before that one, or use --hooks interceptor for neither`);
  }
  let plan = planSite(addr, fn, atEntry);
  if (plan.mode === 'jump') {
    const inside = [...sites.values()].find((o) => {
      const d = Number(BigInt(o.addr.toString()) - BigInt(addr.toString()));
      return d > 0 && d < plan.relocated;
    });
    if (inside) plan = { ...planSite(addr, null, false), why: `the hook at ${inside.addr} is inside its first instructions` };
  }
  const original = Array.from(new Uint8Array(addr.readByteArray(plan.patchLen)!));
  const reloc = relocateOriginal(addr, plan);
  return { addr, plan, original, block: NULL, stub: NULL, base: reloc, trapBefore: NULL, probes: [], patch: [] };
}

/**
 * A site's first probe: its block, list and stub, then the patch that sends threads there
 * (nothing reaches the stub before, so the list may be published first). On failure the
 * probe is left inactive and the site unregistered.
 */
function installSite(site: Site, first: NativePointer, threads: NativePointer): void {
  const addr = site.addr;
  site.block = rawAlloc(SITE.size, 'data', 64);
  site.block.add(SITE.threads).writePointer(threads);
  site.probes = [first];
  publish(site);
  site.stub = allocNear(addr, ENTRY_STUB_ROOM);
  writeEntryStub(site.stub, ENTRY_STUB_ROOM, site.block, addr, site.base);
  try {
    if (site.plan.mode === 'jump') {
      const jmp = [0xe9, ...rel32(addr.add(5), site.stub)];
      patchCodeLive(addr, jmp, site.stub);
      site.patch = jmp;
    } else {
      ensureTrapHandler();
      setTrapSite(addr, site.stub);
      if (addr.readU8() !== 0xcc) patchCodeLive(addr, [0xcc], site.stub);
    }
  } catch (e) {
    first.add(PROBE.active).writeS32(0);
    throw e;
  }
}

function addToSite(site: Site, fresh: boolean, block: NativePointer, threads: NativePointer): void {
  if (fresh) {
    installSite(site, block, threads);
    sites.set(site.addr.toString(), site);
  } else {
    site.probes.push(block);
    publish(site);
  }
}

export class InlineProbe {
  readonly block: NativePointer;
  private attached = true;

  private constructor(
    private readonly site: Site,
    block: NativePointer,
  ) {
    this.block = block;
  }

  get mode(): 'jump' | 'int3' {
    return this.site.plan.mode;
  }

  get address(): NativePointer {
    return this.site.addr;
  }

  /**
   * Hooks `addr`. `checkBoundary`: the address came from symbol+offset (or an address
   * inside a known function) and must be an instruction boundary. Throws PlacementError.
   */
  static attach(addr: NativePointer, o: InlineProbeOptions, checkBoundaryOfFn = true): InlineProbe {
    const core = hookCore();
    const key = addr.toString();
    let site = sites.get(key);
    const fresh = site === undefined;
    site ??= openSite(addr, o.describe, checkBoundaryOfFn);
    if (o.kind === 'override' && site.plan.mode === 'jump' && functionAt(addr)?.start.equals(addr) !== true) {
      throw new PlacementError(`${o.describe}: an override must be at a function's entry`);
    }
    const block = rawAlloc(PROBE.size, 'data', 64);
    block.add(PROBE.kind).writeU32(PROBE_KIND[o.kind]);
    block.add(PROBE.forkState).writePointer(o.forkState);
    block.add(PROBE.threads).writePointer(core.threads);
    block.add(PROBE.funcIp).writePointer(addr);
    if (o.runner.native) {
      block.add(PROBE.run).writePointer(o.runner.run);
      block.add(PROBE.runOverride).writePointer(o.runner.runOverride);
      block.add(PROBE.ctxAddr).writeU64(o.runner.ctxAddr);
      block.add(PROBE.enabled).writePointer(o.runner.enabled);
      block.add(PROBE.handle).writeU32(o.runner.handle);
      block.add(PROBE.fault).writePointer(o.runner.fault);
    } else {
      // JS path: `enabled[handle]` must read non-zero; the JS side checks its own state.
      const one = rawAlloc(8, 'data');
      one.writeU8(1);
      block.add(PROBE.enabled).writePointer(one);
      block.add(PROBE.js).writePointer(o.runner.js);
      block.add(PROBE.flags).writeU32(PROBE_FLAG_JS);
    }
    if (o.kind === 'return') block.add(PROBE.returnStub).writePointer(agentReturnStub((n) => rawAlloc(n, 'code')));
    block.add(PROBE.active).writeS32(1);
    addToSite(site, fresh, block, core.threads);
    const probe = new InlineProbe(site, block);
    live.add(probe);
    return probe;
  }

  /**
   * An unwinder entry point's probe (unwindGuard.ts). The hook core itself gives hijacked
   * returns back there, so the block holds no session pointer; it is never detached and
   * keeps its site patched for the life of the process: a thread may unwind through a
   * hijacked frame (one blocked in a hooked function) long after every session has gone.
   */
  static attachUnwind(addr: NativePointer, describe: string): void {
    const core = hookCore();
    const site = sites.get(addr.toString());
    const open = site ?? openSite(addr, describe, true);
    const block = rawAlloc(PROBE.size, 'data', 64);
    block.add(PROBE.kind).writeU32(PROBE_KIND.unwind);
    block.add(PROBE.threads).writePointer(core.threads);
    block.add(PROBE.funcIp).writePointer(addr);
    block.add(PROBE.active).writeS32(1);
    addToSite(open, site === undefined, block, core.threads);
  }

  /** Clears `active` (once): from here no thread newly follows the probe's session-owned pointers. */
  private deactivate(): void {
    if (this.block.add(PROBE.active).readS32() > 0) fetchAdd(this.block.add(PROBE.active), -1); // locked: a full fence before reading inflight
  }

  /**
   * Every probe of this agent off at once, then each detached: for a script being unloaded
   * without its session's detach (the host died). Deactivating all first means no thread
   * starts a program of this script while the others are being waited for. Never throws:
   * a probe that cannot be detached stays inactive, which is what keeps the target sound.
   */
  static detachEverything(report: (what: string) => void = () => {}): number {
    const probes = [...live];
    for (const p of probes) p.deactivate();
    for (const p of probes) {
      try {
        p.detach();
      } catch (e) {
        report(`${p.site.addr}: ${(e as Error).message}`);
      }
    }
    return probes.length;
  }

  hits(): number {
    return this.block.add(PROBE.hits).readU64().toNumber();
  }

  /** Stops the probe and waits until no thread runs its program; restores the site's bytes with its last probe. */
  detach(timeoutMs = 5000): void {
    if (!this.attached) return;
    this.attached = false;
    live.delete(this);
    // Out of the list first, so no thread loads it anew; one that loaded the old list meets
    // `active` cleared below (or is waited for).
    this.site.probes = this.site.probes.filter((b) => !b.equals(this.block));
    publish(this.site);
    this.deactivate();
    const end = Date.now() + timeoutMs;
    while (this.block.add(PROBE.inflight).readS32() !== 0) {
      if (Date.now() > end) throw new Error(`a thread stays inside the program of ${this.site.addr} (inflight ${this.block.add(PROBE.inflight).readS32()})`);
      Thread.sleep(0.0005);
    }
    const s = this.site;
    if (s.probes.length > 0) return;
    sites.delete(s.addr.toString());
    if (s.plan.mode === 'jump') {
      // Someone (another session) patched over our jump: leave their bytes; our stubs pass through.
      const now = Array.from(new Uint8Array(s.addr.readByteArray(5)!));
      if (now.every((b, i) => b === s.patch[i])) patchCodeLive(s.addr, s.original, s.stub);
    } else if (trapSiteDest(s.addr).equals(s.stub)) {
      if (!s.trapBefore.isNull()) setTrapSite(s.addr, s.trapBefore); // another session's int3 stays theirs
      else patchCodeLive(s.addr, s.original, s.stub);
    }
  }
}
