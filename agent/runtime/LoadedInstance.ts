// One load request made real in this process: its engine (one VM, one arena), its maps,
// its programs loaded on first use, and the run callbacks that hooks call. It knows
// nothing about attach points (Runtime.ts links them); disposing it releases the engine,
// after which every callback and service answers "gone" instead of touching freed memory.

import { helperName } from '../../protocol/helperNames.js';
import { HELPERS, helperId } from '../../protocol/helperTable.js';
import { DEFAULT_HOOK_MECHANISM, type HookMechanism, type LoadRequest, type ProgramStats } from '../../protocol/messages.js';
import { PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, type AttachSpec, type ObjectSpec, type ProgramSpec } from '../../protocol/spec.js';
import { VmFault, VmLoadError, type Helper } from '../../vm/ts/vm.js';
import { decodeBase64 } from '../base64.js';
import { Engine } from '../engine/Engine.js';
import { NATIVE_BUILTIN_HELPERS } from '../engine/nativeCore.js';
import type { EventQueue } from '../events.js';
import type { HelperEnv } from '../helpers/HelperEnv.js';
import { registerHelpers, SUPPORTED_HELPERS } from '../helpers/registerHelpers.js';
import type { BpfMap } from '../maps/BpfMap.js';
import { round8 } from '../maps/layout.js';
import { objectRegions } from '../maps/regions.js';
import { AttachError, type AttachServices, type EbpfRunCallback, type HitInfo, type NativeRunner } from './AttachImpl.js';
import * as proc from './fridaProcessInfo.js';
import { mapFootprint, MapTable, u32Key } from './MapTable.js';
import { emptyRunContext, type RunContext } from './RunContext.js';

/** Largest context any attach implementation writes (pt_regs is 168 bytes). */
const CTX_AREA_BYTES = 256;
const ARENA_SLACK = 1 << 20;

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

export interface LoadedProgram {
  object: number;
  spec: ProgramSpec;
  handle: number;
  hits: number;
  faults: number;
  disabled: string | null;
  /** May run from native hooks: no helper of it lives in JS (decided in loadProgram). */
  native: boolean;
}

export class LoadedInstance {
  private readonly engine: Engine;
  readonly maps: MapTable;
  private readonly objects: ObjectSpec[];
  private readonly programs = new Map<string, LoadedProgram>();
  private readonly programsByHandle = new Map<number, LoadedProgram>();
  /** Set at dispose: a hit that was already waiting for the JS lock must not touch a freed VM. */
  private disposed = false;
  private readonly run: RunContext = emptyRunContext();
  private readonly ctxAddr: number;
  private ctxPtr: NativePointer | null = null;
  private ctxView: DataView | null = null;
  private ctxBuffer: ArrayBufferLike | null = null;
  private readonly runner: NativeRunner | null = null;
  /** What attach implementations may use of this instance (AttachImpl.init). */
  readonly services: AttachServices;

  constructor(
    req: LoadRequest,
    private readonly events: EventQueue,
  ) {
    const cpus = proc.cpuCount();
    this.objects = req.objects;
    let rw = CTX_AREA_BYTES + ARENA_SLACK;
    let ro = 64 * 1024;
    for (const o of req.objects) {
      for (const m of o.maps) {
        if (m.readOnly) ro += round8(m.valueSize) + 64;
        else rw += mapFootprint(m, cpus);
      }
    }
    this.engine = new Engine(req.engine, { rwArenaBytes: rw, roArenaBytes: ro });
    // A request that fails here (a map's initial value, say) leaves nothing loaded behind.
    try {
      const vm = this.engine.vm;
      this.ctxAddr = vm.allocRw(CTX_AREA_BYTES, 16);
      const nativeRun = this.engine.nativeRun;
      if (nativeRun !== null) {
        this.runner = {
          run: nativeRun,
          runWithOverride: this.engine.nativeRunWithOverride!,
          threadInRun: this.engine.nativeThreadInRun!,
          ctxAddr: vm.allocRw(CTX_AREA_BYTES, 16),
          enabled: Memory.alloc(MAX_PROGRAMS),
          fault: (handle, status) => this.nativeFault(handle, status),
        };
      }
      this.services = this.makeServices(req.hooks ?? DEFAULT_HOOK_MECHANISM);
      this.maps = new MapTable(vm, req, this.engine.nativeHash, cpus);

      const env: HelperEnv = {
        vm,
        memory: proc.targetMemory,
        events: this.events,
        run: this.run,
        mapByHandle: (h) => this.maps.byHandleOf(h),
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
    } catch (e) {
      this.engine.dispose();
      throw e;
    }
  }

  private makeServices(hooks: HookMechanism): AttachServices {
    return {
      ctxAddr: this.ctxAddr,
      ctxView: () => {
        if (this.disposed) return null;
        const mem = this.engine.vm.memory();
        if (this.ctxBuffer !== mem.buffer) {
          this.ctxBuffer = mem.buffer;
          this.ctxView = new DataView(mem.buffer);
        }
        return this.ctxView!;
      },
      ctxPtr: () => (this.disposed ? null : (this.ctxPtr ??= this.engine.hostPtr(this.ctxAddr))),
      nativeRunner: () => (this.disposed ? null : this.runner),
      hookMechanism: () => hooks,
      log: (level, text) => {
        this.events.push({ type: 'log', level, text });
        this.events.flush();
      },
    };
  }

  /** A helper only an attach implementation provides (AttachImpl.registerCustomHelpers). */
  registerHelper(id: number, fn: Helper): void {
    this.engine.vm.registerHelper(id, fn);
  }

  /** The program `name` of object `object`, loaded into the VM on first use. Throws AttachError. */
  loadProgram(object: number, name: string): LoadedProgram {
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
    const maps = this.maps.byObject[object];
    let handle: number;
    // Native runs call no JS: every helper is resolved in the VM (bpf_override_return too,
    // for hooks that pass a target: NativeRunner.runWithOverride), and every map the program
    // names is a native hash map, or an inlined array map when it only looks entries up.
    let native = this.runner !== null && spec.helpers.every((h) => VM_RESOLVED_HELPERS.has(h) || h === OVERRIDE_RETURN);
    let usesArray = false;
    try {
      handle = this.engine.loadProgram(decodeBase64(spec.code), {
        name,
        // Isolation: the program reaches its own object's maps only, and never writes its context.
        regions: objectRegions(maps),
        ctxReadOnly: true,
        resolvePseudo: (src, imm, nextImm, pc) => {
          const map = maps[imm];
          if (!map) throw new VmLoadError(pc, `reference to map #${imm}, which the object does not define`);
          if (src === PSEUDO_MAP_FD) {
            // Updates and deletes are resolved for native hash maps only.
            if (this.maps.isInlinedArray(map)) usesArray = true;
            else if (!this.maps.isNativeHash(map)) native = false;
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
    const object = this.maps.objectOf(map);
    const spec = this.objects[object]?.programs[progIndex];
    if (!spec) return undefined;
    try {
      return this.loadProgram(object, spec.name).handle;
    } catch {
      return undefined;
    }
  }

  /** What a hook calls on each hit of `program` at `attach`. */
  callbackFor(program: LoadedProgram, cookie: bigint, attach: AttachSpec): EbpfRunCallback {
    const engine = this.engine;
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
    for (const m of this.maps.byObject[program.object]) m.beginRun?.();
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
    this.disable(program, this.engine.vm.faultFor(handle, status));
  }

  /** Hits that ran on the JS path (native-path hits are counted by the VM instead). */
  jsHits(): number {
    let n = 0;
    for (const p of this.programs.values()) n += p.hits;
    return n;
  }

  /** Counters of the loaded programs that `include` selects, native-path hits included. */
  programStats(include: (p: LoadedProgram) => boolean): ProgramStats[] {
    return [...this.programs.values()].filter(include).map((p) => ({
      object: p.object,
      program: p.spec.name,
      hits: p.hits + (this.disposed ? 0 : this.engine.nativeHits(p.handle)),
      faults: p.faults,
      ...(p.disabled !== null ? { disabled: p.disabled } : {}),
    }));
  }

  /** Releases the engine; call once no hook can run any more. */
  dispose(): void {
    // Native hit counts live in the engine, which goes now: fold them into the totals.
    for (const p of this.programs.values()) p.hits += this.engine.nativeHits(p.handle);
    this.disposed = true;
    this.engine.dispose();
  }
}
