// Memory that outlives the agent: trampolines and stubs that a thread may still be
// executing (or be blocked in a syscall inside) after detach, or that a forked child
// inherited. Mapped with a raw mmap and never unmapped, so neither Frida's heap nor the
// script's teardown ever frees it. Near allocations land within ±2 GB of a given
// address, so a 5-byte rel32 jmp from a rewritten site reaches them.

const PROT_RWX = 7;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_FIXED_NOREPLACE = 0x100000;
const MAP_FAILED = ptr('0xffffffffffffffff');
const REACH = 0x7fff0000; // a little under 2 GB: the whole chunk must be in rel32 reach
const STEP = 0x100000;

let mmapFn: NativeFunction<NativePointer, [NativePointer, number | UInt64, number, number, number, number | UInt64]> | null = null;

function mmap(hint: NativePointer, size: number, flags: number): NativePointer | null {
  mmapFn ??= new NativeFunction(Module.getGlobalExportByName('mmap'), 'pointer', ['pointer', 'uint64', 'int', 'int', 'int', 'uint64']);
  const p = mmapFn(hint, size, PROT_RWX, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  return p.equals(MAP_FAILED) ? null : p;
}

/** RWX pages anywhere, never freed. */
export function immortalPages(size: number): NativePointer {
  const p = mmap(NULL, size, 0);
  if (p === null) throw new Error(`cannot map ${size} bytes of trampoline memory`);
  return p;
}

/**
 * RWX pages, never freed, such that every byte of [lo, hi) can reach every byte of the
 * chunk with a rel32 displacement; null when no free gap is found.
 */
export function immortalPagesNear(lo: NativePointer, hi: NativePointer, size: number): NativePointer | null {
  const loN = BigInt(lo.toString());
  const hiN = BigInt(hi.toString());
  const ok = (p: bigint) => p + BigInt(size) - loN < BigInt(REACH) && hiN - p < BigInt(REACH);
  // Try just above the range first (where ld.so leaves room), then below.
  const start = (hiN + 0xffffn) & ~0xffffn;
  for (let i = 0; i < 2048; i++) {
    for (const cand of [start + BigInt(i * STEP), ((loN - BigInt(size)) & ~0xffffn) - BigInt(i * STEP)]) {
      if (cand <= 0x10000n || !ok(cand)) continue;
      const p = mmap(ptr(cand.toString()), size, MAP_FIXED_NOREPLACE);
      if (p === null) continue;
      if (ok(BigInt(p.toString()))) return p;
      // An old kernel that ignored NOREPLACE put it elsewhere: leave it (never freed), try on.
    }
  }
  return null;
}
