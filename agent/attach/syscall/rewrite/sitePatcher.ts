// Replaces the first 5 bytes of a site while other threads may be executing it. No
// thread may ever fetch a half-written instruction (a torn `mov` immediate would issue
// the wrong syscall; a torn jmp displacement would jump anywhere), so:
// - 5 bytes inside one aligned 8-byte word: one locked 8-byte store;
// - otherwise: a locked 2-byte store of `jmp .` (eb fe) over the first two bytes, so a
//   thread arriving meanwhile spins in place; then the last three bytes; then the first
//   two, again with one locked store, all in one native call (stubs.ts patchSplit5). 2-byte stores crossing a cache line (split locks)
//   are refused: that site is left alone.
// The pages are made writable around a batch and given back their protection after.

import { stubPage } from './stubs.js';

export function canPatch(at: NativePointer): boolean {
  const a = Number(BigInt(at.toString()) & 63n);
  return a !== 63;
}

/** Writes `bytes` (5) at `at`; `at`'s page must be writable. */
export function patch5(at: NativePointer, bytes: number[]): void {
  const stubs = stubPage();
  const addr = BigInt(at.toString());
  const off = Number(addr & 7n);
  if (off <= 3) {
    const word = ptr((addr - BigInt(off)).toString());
    const cur = word.readByteArray(8)!;
    const next = new Uint8Array(cur);
    next.set(bytes, off);
    stubs.xchg64(word, uint64(new DataView(next.buffer).getBigUint64(0, true).toString()));
    return;
  }
  if (!canPatch(at)) throw new Error(`site ${at} straddles a cache line`);
  // One native call: no JS, V8 or libc code may run while the site spins (see patchSplit5).
  stubs.patchSplit5(at, bytes[0] | (bytes[1] << 8), bytes[2] | (bytes[3] << 8) | (bytes[4] << 16));
}

/** Runs `fn` with the pages covering [lo, hi) writable, then restores read+exec. */
export function withWritable(lo: NativePointer, hi: NativePointer, fn: () => void): void {
  const page = BigInt(Process.pageSize);
  const start = BigInt(lo.toString()) & ~(page - 1n);
  const end = (BigInt(hi.toString()) + page - 1n) & ~(page - 1n);
  const base = ptr(start.toString());
  const size = Number(end - start);
  if (!Memory.protect(base, size, 'rwx')) throw new Error(`cannot make ${base} writable`);
  try {
    fn();
  } finally {
    Memory.protect(base, size, 'r-x');
  }
}
