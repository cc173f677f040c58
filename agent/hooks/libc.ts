// The few libc entry points the hook engine calls from JS. They are resolved once per
// agent; none of them is on a hit path (hits run in immortal code that calls nothing here).

const EXCLUSIVE = { scheduling: 'exclusive', exceptions: 'propagate' } as const;

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
/** Linux >= 4.17: fail with EEXIST instead of replacing a mapping at the hint. */
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_FAILED = ptr('0xffffffffffffffff');
export const PAGE_SIZE = 4096;

type Mmap = NativeFunction<NativePointer, [NativePointerValue, number | UInt64, number, number, number, number | Int64]>;
type Syscall = NativeFunction<Int64, [number, NativePointerValue | number, NativePointerValue | number, NativePointerValue | number, NativePointerValue | number]>;

let mmapFn: Mmap | null = null;
let munmapFn: NativeFunction<number, [NativePointerValue, number]> | null = null;
let syscallFn: Syscall | null = null;

export function mmap(addr: NativePointerValue, length: number, prot: number, flags: number, fd = -1, offset = 0): NativePointer {
  mmapFn ??= new NativeFunction(Module.getGlobalExportByName('mmap'), 'pointer', ['pointer', 'size_t', 'int', 'int', 'int', 'int64'], EXCLUSIVE);
  return mmapFn(addr, length, prot, flags, fd, offset);
}

/** Only for a mapping we made a moment ago at the wrong place (kernels without MAP_FIXED_NOREPLACE). */
export function munmap(addr: NativePointerValue, length: number): number {
  munmapFn ??= new NativeFunction(Module.getGlobalExportByName('munmap'), 'int', ['pointer', 'size_t'], EXCLUSIVE);
  return munmapFn(addr, length);
}

/** syscall(nr, a, b, c, d): the raw kernel interface, past any wrapper Frida put on libc's. */
export function syscall4(nr: number, a: NativePointerValue | number, b: NativePointerValue | number, c: NativePointerValue | number, d: NativePointerValue | number): number {
  syscallFn ??= new NativeFunction(Module.getGlobalExportByName('syscall'), 'int64', ['long', 'pointer', 'pointer', 'pointer', 'pointer'], EXCLUSIVE) as unknown as Syscall;
  const arg = (v: NativePointerValue | number): NativePointerValue => (typeof v === 'number' ? ptr(v) : v);
  return (syscallFn as unknown as (...a: unknown[]) => Int64)(nr, arg(a), arg(b), arg(c), arg(d)).toNumber();
}
