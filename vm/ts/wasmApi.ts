// Minimal typings for the WebAssembly JS API, reached through globalThis so that this code
// compiles both for Node (@types/node declares WebAssembly) and for the Frida agent
// (frida-gum typings, no WebAssembly declarations).

/** An opaque compiled WebAssembly.Module. */
export type WasmModule = object;

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

interface WasmApi {
  Module: (new (bytes: ArrayBuffer | ArrayBufferView) => WasmModule) & { prototype: object };
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}

export function wasmApi(): WasmApi {
  const wa = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wa) throw new Error('WebAssembly is not available in this JavaScript runtime');
  return wa;
}

/** Compiles wasm bytes synchronously (or passes an already compiled module through). */
export function toWasmModule(wasm: ArrayBuffer | ArrayBufferView | WasmModule): WasmModule {
  const wa = wasmApi();
  if (wasm instanceof wa.Module) return wasm;
  return new wa.Module(wasm as ArrayBuffer | ArrayBufferView);
}
