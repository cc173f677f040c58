// The wasm engine: one BpfVm instance (one linear memory) shared by every program of the
// agent, so maps and global data are shared between programs as in the kernel.

import { BpfVm, type LoadOptions } from '../../vm/ts/vm.js';
import { loadEmbeddedWasm } from '../../vm/ts/embedded.js';

export interface EngineSizes {
  rwArenaBytes: number;
  roArenaBytes: number;
}

export class WasmEngine {
  readonly name = 'wasm';
  readonly vm: BpfVm;

  constructor(sizes: EngineSizes) {
    this.vm = BpfVm.create(loadEmbeddedWasm(), sizes);
  }

  loadProgram(code: Uint8Array, opts: LoadOptions): number {
    return this.vm.load(code, opts);
  }

  run(handle: number, ctxAddr: number, ctxLen: number): bigint {
    return this.vm.run(handle, ctxAddr, ctxLen);
  }
}
