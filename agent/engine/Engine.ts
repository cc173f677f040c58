// The engine that runs programs: one BpfVm (one arena) shared by every program of the
// agent, so maps and globals are shared between programs as in the kernel. Native by
// default (see nativeCore.ts for why); wasm remains selectable for comparison.

import type { EngineSpec } from '../../protocol/messages.js';
import { loadEmbeddedWasm } from '../../vm/ts/embedded.js';
import { BpfVm, type LoadOptions } from '../../vm/ts/vm.js';
import { loadNativeVm, type NativeVm } from './nativeCore.js';

export interface EngineSizes {
  rwArenaBytes: number;
  roArenaBytes: number;
}

export class Engine {
  readonly vm: BpfVm;
  private readonly native: NativeVm | null;

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

  loadProgram(code: Uint8Array, opts: LoadOptions): number {
    return this.vm.load(code, opts);
  }

  run(handle: number, ctxAddr: number, ctxLen: number): bigint {
    return this.vm.run(handle, ctxAddr, ctxLen);
  }

  /** Releases the engine's memory in the target; only once no hook can run a program. */
  dispose(): void {
    this.native?.unload();
  }
}
