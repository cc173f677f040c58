// The wasm build of the interpreter as a VmCore: helper arguments travel through a small
// scratch area in linear memory (the import carries only the id), and only as many are
// converted to BigInt as the helper declares (BigInt creation dominates a helper call).

import type { Helper, VmCore, VmCoreFactory } from './vm.js';
import { decodeUtf8 } from './vm.js';
import { wasmApi, type WasmMemory, type WasmModule } from './wasmApi.js';

interface WasmExports extends Omit<VmCore, 'buffer' | 'loadProgram' | 'errorMessage' | 'setLoadEnv'> {
  bpfvm_set_load_env(ptr: number, n: number, ctxSize: number, ctxFlags: number): number;
  memory: WasmMemory;
  bpfvm_scratch(bytes: number): number;
  bpfvm_load(ptr: number, n: number): number;
  bpfvm_err_msg(): number;
  bpfvm_helper_args(): number;
}

export function wasmCore(module: WasmModule): VmCoreFactory {
  return (helpers: readonly (Helper | undefined)[]): VmCore => {
    let exp!: WasmExports;
    let args: BigUint64Array | undefined;
    const callHelper = (id: number): bigint => {
      const fn = helpers[id];
      if (fn === undefined) throw new Error(`helper ${id} is not registered`);
      if (args === undefined || args.length === 0) args = new BigUint64Array(exp.memory.buffer, exp.bpfvm_helper_args(), 5);
      // A helper of 1 or 2 declared parameters gets only those; any other (including rest
      // parameters, length 0) gets all five.
      let v: bigint | number;
      switch (fn.length) {
        case 1: v = (fn as (a: bigint) => bigint | number)(args[0]); break;
        case 2: v = (fn as (a: bigint, b: bigint) => bigint | number)(args[0], args[1]); break;
        default: v = fn(args[0], args[1], args[2], args[3], args[4]);
      }
      return typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
    };
    const instance = new (wasmApi().Instance)(module, { env: { call_helper: callHelper } });
    exp = instance.exports as unknown as WasmExports;
    const core = Object.create(exp) as VmCore;
    core.buffer = () => exp.memory.buffer;
    core.loadProgram = (prog: Uint8Array, n: number): number => {
      const ptr = exp.bpfvm_scratch(Math.max(8, prog.length));
      if (!ptr) return -1;
      new Uint8Array(exp.memory.buffer).set(prog, ptr);
      return exp.bpfvm_load(ptr, n);
    };
    core.setLoadEnv = (regions: Uint8Array, n: number, ctxSize: number, ctxFlags: number): number => {
      const ptr = exp.bpfvm_scratch(Math.max(8, regions.length));
      if (!ptr) return -1;
      new Uint8Array(exp.memory.buffer).set(regions, ptr);
      return exp.bpfvm_set_load_env(ptr, n, ctxSize, ctxFlags);
    };
    core.errorMessage = (): string => {
      const p = exp.bpfvm_err_msg();
      if (!p) return 'out of memory';
      const m = new Uint8Array(exp.memory.buffer);
      let e = p;
      while (m[e] !== 0) e++;
      return decodeUtf8(m.subarray(p, e));
    };
    return core;
  };
}
