// Turns a user's description of a function (module + symbol, module + file offset, or an
// absolute address) into an address in this process, with errors that name what is missing.

import type { HookTarget } from '../../../protocol/messages.js';

export class TargetError extends Error {}

export function describeTarget(t: HookTarget): string {
  if (t.address !== undefined) return t.address;
  const where = t.module ?? '';
  const what = t.symbol ?? (t.offset !== undefined ? `0x${t.offset.toString(16)}` : '?');
  const plus = t.symbol && t.offset ? `+0x${t.offset.toString(16)}` : '';
  return where ? `${where}:${what}${plus}` : `${what}${plus}`;
}

function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

/** A module by exact path first, then by file name (`libc.so.6`), or null when not loaded. */
export function findModule(spec: string): Module | null {
  const modules = Process.enumerateModules();
  const byPath = modules.find((m) => m.path === spec);
  if (byPath) return byPath;
  const name = basename(spec);
  return modules.find((m) => m.name === name) ?? null;
}

/** Maps a file offset (as kernel uprobes take it) to the address where that byte is mapped. */
function fileOffsetToAddress(module: Module, offset: number): NativePointer | null {
  for (const range of Process.enumerateRanges('--x')) {
    const file = range.file;
    if (!file || file.path !== module.path) continue;
    if (offset >= file.offset && offset < file.offset + range.size) return range.base.add(offset - file.offset);
  }
  return null;
}

function findSymbol(module: Module, symbol: string): NativePointer | null {
  return module.findExportByName(symbol) ?? module.findSymbolByName(symbol);
}

export function resolveTarget(t: HookTarget): NativePointer {
  if (t.address !== undefined) {
    const addr = ptr(t.address);
    if (addr.isNull()) throw new TargetError(`address ${t.address} is not valid`);
    return addr;
  }
  let module: Module | null = null;
  if (t.module !== undefined) {
    module = findModule(t.module);
    if (module === null) throw new TargetError(`module ${t.module} is not loaded in process ${Process.id}`);
  }
  if (t.symbol !== undefined) {
    let addr: NativePointer | null = null;
    if (module !== null) addr = findSymbol(module, t.symbol);
    else addr = findSymbol(Process.mainModule, t.symbol) ?? Module.findGlobalExportByName(t.symbol);
    if (addr === null) {
      const where = module ? module.name : `${Process.mainModule.name} or any loaded library`;
      throw new TargetError(`symbol ${t.symbol} not found in ${where}`);
    }
    return t.offset ? addr.add(t.offset) : addr;
  }
  if (t.offset !== undefined) {
    const m = module ?? Process.mainModule;
    const addr = fileOffsetToAddress(m, t.offset);
    if (addr === null) throw new TargetError(`file offset 0x${t.offset.toString(16)} is not in an executable mapping of ${m.name}`);
    return addr;
  }
  throw new TargetError('a target needs a symbol, an offset or an address');
}
