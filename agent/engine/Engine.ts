// The engine that runs programs: one BpfVm (one arena) shared by every program of the
// agent, so maps and globals are shared between programs as in the kernel. Native by
// default (see nativeCore.ts for why); wasm remains selectable for comparison.

import type { EngineSpec } from '../../protocol/messages.js';
import { loadEmbeddedWasm } from '../../vm/ts/embedded.js';
import { BpfVm, type LoadOptions } from '../../vm/ts/vm.js';
import { loadNativeVm, type NativeVm } from './nativeCore.js';
import type { NativeHashApi } from '../maps/NativeHashMap.js';

export interface EngineSizes {
  rwArenaBytes: number;
  roArenaBytes: number;
}

export class Engine {
  readonly vm: BpfVm;
  private readonly native: NativeVm | null;
  private base: NativePointer | null = null;

  constructor(
    readonly spec: EngineSpec,
    sizes: EngineSizes,
  ) {
    if (spec.kind === 'native') {
      this.native = loadNativeVm(spec.library);
      this.vm = BpfVm.withCore(this.native.factory, sizes);
    } else {
      this.native = null;
      this.vm = BpfVm.create(loadEmbeddedWasm(), sizes);
    }
  }

  /** Where VM address `addr` lives in this process (valid until dispose). */
  hostPtr(addr: number): NativePointer {
    if (this.base === null) {
      // The native core's memory view and wasm's linear memory both start at VM address 0.
      this.base = (this.vm.memory().buffer as ArrayBuffer).unwrap();
    }
    return this.base.add(addr);
  }

  loadProgram(code: Uint8Array, opts: LoadOptions): number {
    return this.vm.load(code, opts);
  }

  /** The native core's bpfvm_run_with_ctx, for hooks that run programs without JS; null for wasm. */
  get nativeRun(): NativePointer | null {
    return this.native?.runWithCtx ?? null;
  }

  /** The native core's bpfvm_run_with_override; null for wasm. */
  get nativeRunWithOverride(): NativePointer | null {
    return this.native?.runWithOverride ?? null;
  }

  /** The native core's bpfvm_thread_in_run; null for wasm. */
  get nativeThreadInRun(): NativePointer | null {
    return this.native?.threadInRun ?? null;
  }

  /** Hash maps resolved inside the VM (native engine only). */
  get nativeHash(): NativeHashApi | null {
    return this.native?.hash ?? null;
  }

  /** Runs made through nativeRun for a program (0 for wasm). */
  nativeHits(handle: number): number {
    return this.native?.nativeHits(handle) ?? 0;
  }

  /** Runs a program whose r0 nobody reads (uprobes and tracepoints ignore it, as in the kernel). */
  run(handle: number, ctxAddr: number, ctxLen: number): void {
    this.vm.run(handle, ctxAddr, ctxLen, false);
  }

  /** Releases the engine's memory in the target; only once no hook can run a program. */
  dispose(): void {
    this.native?.unload();
  }
}
