// The agent runtime, after bpftime's bpf_attach_ctx: handler tables for programs, maps,
// attach points and links; attach implementations are known only through the base
// interface and register themselves with their attach types. Instantiation walks the
// links: program → VM, attach point → private data, link → attach entry whose callback
// runs the program. Detaching everything restores the process.

import { helperName } from '../../protocol/helperNames.js';
import { DEFAULT_HOOK_MECHANISM, type AttachResult, type HookMechanism, type LoadRequest, type MapDump, type ProgramStats, type RecordStats } from '../../protocol/messages.js';
import { PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, type AttachSpec, type MapSpec, type ObjectSpec, type ProgramSpec } from '../../protocol/spec.js';
import { VmFault, VmLoadError } from '../../vm/ts/vm.js';
import { decodeBase64, encodeBase64 } from '../base64.js';
import { Engine } from '../engine/Engine.js';
import { NATIVE_BUILTIN_HELPERS } from '../engine/nativeCore.js';
import type { EventQueue } from '../events.js';
import type { HelperEnv } from '../helpers/HelperEnv.js';
import { registerHelpers, SUPPORTED_HELPERS } from '../helpers/registerHelpers.js';
import { objectRegions } from '../maps/regions.js';
import { HELPERS, helperId } from '../../protocol/helperTable.js';
import { BPF_ANY, type BpfMap } from '../maps/BpfMap.js';
import { createMap } from '../maps/createMap.js';
import { NativeHashMap } from '../maps/NativeHashMap.js';
import { RecordMap } from '../maps/RecordMap.js';
import { StackTraceMap } from '../maps/StackTraceMap.js';
import { round8 } from '../maps/layout.js';
import {
  AttachError,
  attachTypeOf,
  type AttachImpl,
  type AttachServices,
  type AttachType,
  type EbpfRunCallback,
  type HitInfo,
  type NativeRunner,
} from './AttachImpl.js';
import * as proc from './fridaProcessInfo.js';
import { emptyRunContext, type RunContext } from './RunContext.js';

/** Largest context any attach implementation writes (pt_regs is 168 bytes). */
const CTX_AREA_BYTES = 256;
const ARENA_SLACK = 1 << 20;

interface LoadedProgram {
  object: number;
  spec: ProgramSpec;
  handle: number;
  hits: number;
  faults: number;
  disabled: string | null;
  /** May run from native hooks: no helper of it lives in JS (decided in loadProgram). */
  native: boolean;
}

/**
 * Helpers the native VM resolves itself: map lookups (inlined arrays, native hash maps),
 * updates and deletes (native hash maps), bpf_loop, and the helpers its library implements
 * in C (time, task, reads of user memory).
 */
const VM_RESOLVED_HELPERS = new Set([...HELPERS.filter((h) => h.runs === 'vm').map((h) => h.id), ...NATIVE_BUILTIN_HELPERS]);
/** bpf_override_return: resolved by the VM only in runs that carry an override target. */
const OVERRIDE_RETURN = helperId('override_return');
/** bpfvm_run_with_ctx's handle space (BPFVM_MAX_PROGS). */
const MAX_PROGRAMS = 4096;

interface Attachment {
  impl: AttachImpl;
  id: number;
  program: LoadedProgram;
  description: string;
}

/** An array-map key: the index as 4 little-endian bytes. */
function u32Key(index: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, index >>> 0, true);
  return k;
}

/** Arena bytes a map needs (values preallocated, as the kernel does). */
function mapFootprint(spec: MapSpec, cpus: number): number {
  const perCpu = spec.type === 'percpu_array' || spec.type === 'percpu_hash' || spec.type === 'lru_percpu_hash' ? cpus : 1;
  if (spec.type === 'ringbuf') return round8(spec.maxEntries) + 64;
  if (spec.type === 'prog_array' || spec.type === 'perf_event_array' || spec.type === 'bloom_filter') return 64;
  // Stack maps have a power-of-two number of buckets, up to twice max_entries.
  if (spec.type === 'stack_trace') return spec.valueSize * 2 * spec.maxEntries + 64;
  return round8(spec.valueSize) * spec.maxEntries * perCpu + round8(spec.keySize) * spec.maxEntries + 64;
}

export class Runtime {
  private readonly impls = new Map<AttachType, AttachImpl>();
  private engine: Engine | null = null;
  /** Set at detach: a hit that was already waiting for the JS lock must not touch a freed VM. */
  private disposed = false;
  private objects: ObjectSpec[] = [];
  /** maps[object][index] */
  private maps: BpfMap[][] = [];
  private readonly mapsByHandle = new Map<bigint, BpfMap>();
  private readonly programs = new Map<string, LoadedProgram>();
  private readonly programsByHandle = new Map<number, LoadedProgram>();
  private attachments: Attachment[] = [];
  private readonly run: RunContext = emptyRunContext();
  private ctxAddr = 0;
  private ctxPtr: NativePointer | null = null;
  private ctxView: DataView | null = null;
  private ctxBuffer: ArrayBufferLike | null = null;
  /** Map handles whose lookups the VM resolves (inlineIfArray). */
  private readonly inlinedMaps = new Set<bigint>();
  /** Map handles whose lookups, updates and deletes the VM resolves (NativeHashMap). */
  private readonly nativeHashMaps = new Set<bigint>();
  private runner: NativeRunner | null = null;
  private hooks: HookMechanism = DEFAULT_HOOK_MECHANISM;
  droppedRecords = 0;
  /** Programs whose hooks detachAll removed: still in the final stats. */
  private readonly detachedPrograms = new Set<unknown>();

  constructor(private readonly events: EventQueue) {}

  registerAttachImpl(impl: AttachImpl): void {
    for (const t of impl.attachTypes) this.impls.set(t, impl);
  }

  private services(): AttachServices {
    return {
      ctxAddr: this.ctxAddr,
      ctxView: () => {
        if (this.disposed) return null;
        const mem = this.engine!.vm.memory();
        if (this.ctxBuffer !== mem.buffer) {
          this.ctxBuffer = mem.buffer;
          this.ctxView = new DataView(mem.buffer);
        }
        return this.ctxView!;
      },
      ctxPtr: () => (this.disposed ? null : (this.ctxPtr ??= this.engine!.hostPtr(this.ctxAddr))),
      nativeRunner: () => (this.disposed ? null : this.runner),
      hookMechanism: () => this.hooks,
      log: (level, text) => {
        this.events.push({ type: 'log', level, text });
        this.events.flush();
      },
    };
  }

  load(req: LoadRequest): AttachResult[] {
    if (this.engine) throw new Error('objects are already loaded in this process; detach first');
    const cpus = proc.cpuCount();
    this.objects = req.objects;
    this.hooks = req.hooks ?? DEFAULT_HOOK_MECHANISM;
    let rw = CTX_AREA_BYTES + ARENA_SLACK;
    let ro = 64 * 1024;
    for (const o of req.objects) {
      for (const m of o.maps) {
        if (m.readOnly) ro += round8(m.valueSize) + 64;
        else rw += mapFootprint(m, cpus);
      }
    }
    this.engine = new Engine(req.engine, { rwArenaBytes: rw, roArenaBytes: ro });
    const vm = this.engine.vm;
    this.ctxAddr = vm.allocRw(CTX_AREA_BYTES, 16);
    const nativeRun = this.engine.nativeRun;
    if (nativeRun !== null) {
      this.runner = {
        run: nativeRun,
        runWithOverride: this.engine.nativeRunWithOverride!,
        ctxAddr: vm.allocRw(CTX_AREA_BYTES, 16),
        enabled: Memory.alloc(MAX_PROGRAMS),
        fault: (handle, status) => this.nativeFault(handle, status),
      };
    }
    const services = this.services();
    for (const impl of new Set(this.impls.values())) impl.init(services);

    let nextHandle = 1n;
    this.maps = req.objects.map((o) =>
      o.maps.map((spec) => {
        // On the native engine plain hash maps live in the VM library, which resolves their
        // helpers itself (NativeHashMap.ts); createMap stays free of Frida for Node's tests.
        const nativeHash = spec.type === 'hash' ? this.engine!.nativeHash : null;
        const map = nativeHash ? new NativeHashMap(vm, spec, nextHandle++, nativeHash) : createMap(vm, spec, nextHandle++, cpus);
        this.mapsByHandle.set(map.handle, map);
        if (nativeHash) this.nativeHashMaps.add(map.handle);
        return map;
      }),
    );
    for (const maps of this.maps) for (const m of maps) this.inlineIfArray(m);
    for (const init of req.mapInit) {
      const map = this.maps[init.object]?.[init.map];
      if (!map) throw new Error(`initial value for unknown map ${init.object}/${init.map}`);
      const rc = map.update(decodeBase64(init.key), decodeBase64(init.value), BPF_ANY, 'all');
      if (rc < 0) throw new Error(`cannot set initial value of map ${map.spec.name}: error ${rc}`);
    }

    const env: HelperEnv = {
      vm,
      memory: proc.targetMemory,
      events: this.events,
      run: this.run,
      mapByHandle: (h) => this.mapsByHandle.get(h),
      programHandleForTailCall: (map, index) => this.tailCallTarget(map, index),
      monotonicNs: proc.monotonicNs,
      boottimeNs: proc.boottimeNs,
      pid: () => Process.id,
      uid: proc.uid,
      gid: proc.gid,
      comm: () => proc.threadComm(this.run.tid),
      cpuCount: proc.cpuCount,
    };
    registerHelpers(env);
    for (const impl of new Set(this.impls.values())) {
      impl.registerCustomHelpers?.((id, _name, fn) => vm.registerHelper(id, fn));
    }

    const results: AttachResult[] = [];
    // Tail-call targets are loaded now, not on their first bpf_tail_call in the middle of a run.
    for (const init of req.mapInit) {
      const map = this.maps[init.object]?.[init.map];
      if (map?.spec.type !== 'prog_array') continue;
      const slot = decodeBase64(init.value);
      const spec = req.objects[init.object]?.programs[new DataView(slot.buffer, slot.byteOffset, 4).getUint32(0, true)];
      if (!spec) continue;
      try {
        this.loadProgram(init.object, spec.name);
      } catch (e) {
        results.push({ state: 'failed', target: `${spec.name} (in prog_array ${map.spec.name})`, error: e instanceof Error ? e.message : String(e) });
      }
    }
    for (const link of req.links) {
      const obj = req.objects[link.object];
      const label = `${link.program}`;
      try {
        const program = this.loadProgram(link.object, link.program);
        const type = attachTypeOf(link.attach);
        const impl = this.impls.get(type);
        if (!impl) throw new AttachError(`no attach implementation for ${type} in this agent`);
        const data = impl.createPrivateData(link.attach, type);
        const cookie = link.cookie !== undefined ? BigInt(link.cookie) : 0n;
        const id = impl.createAttach(this.makeCallback(program, cookie, link.attach), data, type);
        this.attachments.push({ impl, id, program, description: data.description });
        const target = `${label} → ${data.description}`;
        const waitingFor = impl.waitingFor?.(id);
        results.push(waitingFor !== undefined ? { state: 'pending', target, waitingFor } : { state: 'attached', target, where: impl.describeAttach?.(id) });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        results.push({ state: 'failed', target: `${label}${obj ? '' : ' (unknown object)'}`, error: msg });
      }
    }
    return results;
  }

  /** Plain array maps (and global data) get their lookups resolved inside the VM. */
  private inlineIfArray(map: BpfMap): void {
    if (map.spec.type !== 'array' || map.spec.maxEntries < 1) return;
    const n = map.spec.maxEntries;
    const base = map.lookupAddr(u32Key(0), 0);
    const stride = n > 1 ? map.lookupAddr(u32Key(1), 0) - base : round8(map.spec.valueSize);
    // Only when the layout really is base + i * stride (checked at the last index too).
    if (base === 0 || stride < map.spec.valueSize || map.lookupAddr(u32Key(n - 1), 0) !== base + (n - 1) * stride) return;
    this.engine!.vm.inlineArrayMap(map.handle, base, stride, n);
    this.inlinedMaps.add(map.handle);
  }

  private loadProgram(object: number, name: string): LoadedProgram {
    const key = `${object}/${name}`;
    const existing = this.programs.get(key);
    if (existing) return existing;
    const obj = this.objects[object];
    const spec = obj?.programs.find((p) => p.name === name);
    if (!obj || !spec) throw new AttachError(`program ${name} not found in object ${object}`);
    const unsupported = spec.helpers.filter((h) => !SUPPORTED_HELPERS.has(h));
    if (unsupported.length) {
      const names = unsupported.map((h) => `${helperName(h)} (#${h})`).join(', ');
      throw new AttachError(`program ${name} calls ${names}, which bpftime-ts does not provide`);
    }
    if (spec.unresolvedExterns?.length) throw new AttachError(`program ${name}: ${spec.unresolvedExterns.map((e) => e.reason).join('; ')}`);
    const maps = this.maps[object];
    let handle: number;
    // Native runs call no JS: every helper is resolved in the VM (bpf_override_return too,
    // for hooks that pass a target: NativeRunner.runWithOverride), and every map the program
    // names is a native hash map, or an inlined array map when it only looks entries up.
    let native = this.runner !== null && spec.helpers.every((h) => VM_RESOLVED_HELPERS.has(h) || h === OVERRIDE_RETURN);
    let usesArray = false;
    try {
      handle = this.engine!.loadProgram(decodeBase64(spec.code), {
        name,
        // Isolation: the program reaches its own object's maps only, and never writes its context.
        regions: objectRegions(maps),
        ctxReadOnly: true,
        resolvePseudo: (src, imm, nextImm, pc) => {
          const map = maps[imm];
          if (!map) throw new VmLoadError(pc, `reference to map #${imm}, which the object does not define`);
          if (src === PSEUDO_MAP_FD) {
            // Updates and deletes are resolved for native hash maps only.
            if (this.inlinedMaps.has(map.handle)) usesArray = true;
            else if (!this.nativeHashMaps.has(map.handle)) native = false;
            return map.handle;
          }
          if (src === PSEUDO_MAP_VALUE) {
            const base = map.lookupAddr(new Uint8Array(4), 0);
            if (base === 0) throw new VmLoadError(pc, `map ${map.spec.name} has no value to point into`);
            return BigInt(base + nextImm);
          }
          throw new VmLoadError(pc, `unsupported lddw source ${src}`);
        },
      });
    } catch (e) {
      throw new AttachError(`program ${name} (${spec.section}): ${e instanceof Error ? e.message : String(e)}`);
    }
    native &&= handle < MAX_PROGRAMS && !(usesArray && spec.helpers.some((h) => h === helperId('map_update_elem') || h === helperId('map_delete_elem')));
    const program: LoadedProgram = { object, spec, handle, hits: 0, faults: 0, disabled: null, native };
    if (native) this.runner!.enabled.add(handle).writeU8(1);
    this.programs.set(key, program);
    this.programsByHandle.set(handle, program);
    return program;
  }

  /**
   * A prog_array slot holds the index of a program of the same object (4 bytes, set by
   * the host as libbpf users set program fds); the program is loaded on first use.
   */
  private tailCallTarget(map: BpfMap, index: number): number | undefined {
    const value = map.lookup(u32Key(index));
    if (value === null || Array.isArray(value) || value.length < 4) return undefined;
    const progIndex = new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true);
    const object = this.maps.findIndex((ms) => ms.includes(map));
    const spec = this.objects[object]?.programs[progIndex];
    if (!spec) return undefined;
    try {
      return this.loadProgram(object, spec.name).handle;
    } catch {
      return undefined;
    }
  }

  private makeCallback(program: LoadedProgram, cookie: bigint, attach: AttachSpec): EbpfRunCallback {
    const engine = this.engine!;
    const run = this.run;
    const ctxIsPtRegs = attach.kind === 'uprobe';
    // A uprobe on a symbol (not at an offset into it) fires before the function's prologue.
    const atFunctionEntry = attach.kind === 'uprobe' && attach.mode !== 'return' && attach.symbol !== undefined && !attach.offset;
    const callback = (hit: HitInfo): boolean => {
      if (program.disabled !== null || this.disposed) return false;
      run.object = program.object;
      run.program = program.spec.name;
      run.ctxAddr = this.ctxAddr;
      run.ctxLen = hit.ctxLen;
      run.tid = hit.tid;
      run.cpu = hit.cpu ?? proc.currentCpu();
      run.funcIp = hit.funcIp;
      run.cookie = cookie;
      run.override = hit.override;
      run.ctxIsPtRegs = ctxIsPtRegs;
      run.atFunctionEntry = atFunctionEntry;
      run.userRegs = hit.userRegs ?? null;
      program.hits++;
      try {
        engine.run(program.handle, this.ctxAddr, hit.ctxLen);
        return true;
      } catch (e) {
        this.disable(program, e);
        return false;
      }
    };
    if (!program.native) return callback;
    return Object.assign(callback, { nativeHandle: program.handle, nativeOverride: program.spec.helpers.includes(OVERRIDE_RETURN) });
  }

  /** A faulting program is disabled; the target goes on as if it were not hooked. */
  private disable(program: LoadedProgram, e: unknown): void {
    program.faults++;
    if (program.native) this.runner?.enabled.add(program.handle).writeU8(0);
    // A reservation left open by the faulting run would pin its ring buffer's space.
    for (const m of this.maps[program.object]) m.beginRun?.();
    const pc = e instanceof VmFault ? e.pc : -1;
    const message = e instanceof Error ? e.message : String(e);
    program.disabled = message;
    this.events.push({ type: 'fault', object: program.object, program: program.spec.name, pc, message });
    this.events.flush();
  }

  /** A native hook's run failed; the fault registers are this thread's (see NativeRunner.fault). */
  private nativeFault(handle: number, status: number): void {
    const program = this.programsByHandle.get(handle);
    if (!program || program.disabled !== null || this.disposed) return;
    this.disable(program, this.engine!.vm.faultFor(handle, status));
  }

  private map(object: number, index: number): BpfMap {
    const m = this.maps[object]?.[index];
    if (!m) throw new Error(`no map ${index} in object ${object}`);
    return m;
  }

  mapLookup(object: number, index: number, key: string): string | string[] | null {
    const v = this.map(object, index).lookup(decodeBase64(key));
    if (v === null) return null;
    return Array.isArray(v) ? v.map(encodeBase64) : encodeBase64(v);
  }

  mapUpdate(object: number, index: number, key: string, value: string, flags: number): number {
    return this.map(object, index).update(decodeBase64(key), decodeBase64(value), flags, 'all');
  }

  mapDelete(object: number, index: number, key: string): number {
    return this.map(object, index).delete(decodeBase64(key));
  }

  mapDump(): MapDump[] {
    const out: MapDump[] = [];
    this.maps.forEach((maps, object) =>
      maps.forEach((m, map) => {
        if (m.spec.type === 'ringbuf' || m.spec.type === 'perf_event_array' || m.spec.type === 'prog_array') return;
        const dump: MapDump = {
          object,
          map,
          name: m.spec.name,
          entries: m.entries().map((e) => ({
            key: encodeBase64(e.key),
            value: Array.isArray(e.value) ? e.value.map(encodeBase64) : encodeBase64(e.value),
          })),
        };
        if (m instanceof StackTraceMap) dump.symbols = this.symbolizeStacks(m);
        out.push(dump);
      }),
    );
    return out;
  }

  /** Symbols for every address of a stack map, looked up once each (the exit dump pays this, not the hits). */
  private symbolizeStacks(m: StackTraceMap): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of m.entries()) {
      const id = new DataView(e.key.buffer, e.key.byteOffset, 4).getUint32(0, true);
      for (const ip of m.stack(id) ?? []) {
        const k = `0x${ip.toString(16)}`;
        out[k] ??= proc.symbolize(ip);
      }
    }
    return out;
  }

  /** Hits that ran on the JS path (native-path hits are counted by the VM instead). */
  jsHits(): number {
    let n = 0;
    for (const p of this.programs.values()) n += p.hits;
    return n;
  }

  stats(): ProgramStats[] {
    return [...this.programs.values()]
      .filter((p) => this.attachments.some((a) => a.program === p) || this.detachedPrograms.has(p))
      .map((p) => ({
        object: p.object,
        program: p.spec.name,
        hits: p.hits + (this.disposed ? 0 : this.engine!.nativeHits(p.handle)),
        faults: p.faults,
        ...(p.disabled !== null ? { disabled: p.disabled } : {}),
      }));
  }

  /** Attach points still waiting for their library (a typo, or never dlopen'ed). */
  pending(): string[] {
    return this.attachments.filter((a) => a.impl.waitingFor?.(a.id) !== undefined).map((a) => a.description);
  }

  /** Per record map (ring buffer, perf array): produced and dropped so far. */
  recordStats(): RecordStats[] {
    const out: RecordStats[] = [];
    this.maps.forEach((maps, object) =>
      maps.forEach((m, map) => {
        if (m instanceof RecordMap) out.push({ object, map, name: m.spec.name, produced: m.queued + m.drops, dropped: m.drops });
      }),
    );
    return out;
  }

  /** Removes every hook and then releases the engine; `beforeDispose` sees the maps as the hooks left them. */
  detachAll(beforeDispose: () => void = () => undefined): void {
    this.removeHooks();
    try {
      beforeDispose();
    } finally {
      this.dispose();
    }
  }

  private removeHooks(): void {
    for (const a of this.attachments) this.detachedPrograms.add(a.program);
    for (const a of this.attachments.splice(0)) {
      try {
        a.impl.detachById(a.id);
      } catch (e) {
        this.events.push({ type: 'log', level: 'error', text: `detaching ${a.description}: ${(e as Error).message}` });
      }
    }
    Interceptor.flush();
  }

  private dispose(): void {
    // Native hit counts live in the engine, which goes now: fold them into the totals.
    for (const p of this.programs.values()) p.hits += this.engine?.nativeHits(p.handle) ?? 0;
    this.disposed = true;
    this.engine?.dispose();
  }
}
