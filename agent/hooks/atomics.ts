// Locked read-modify-write on memory other threads use, from JS (which has no atomics on
// native memory): a 4-byte `lock xadd` written once into immortal code. A locked
// instruction is also a full fence, which Dekker-style handshakes (active/inflight) need.

import { rawAlloc } from './rawMemory.js';

let xadd: NativeFunction<number, [NativePointer, number]> | null = null;

/** Atomically adds `n` to the s32 at `p`; returns the old value. */
export function fetchAdd(p: NativePointer, n: number): number {
  if (!xadd) {
    const code = rawAlloc(16, 'code');
    Memory.patchCode(code, 16, (c) => {
      const w = new X86Writer(c, { pc: code });
      w.putMovRegReg('eax', 'esi');
      w.putLockXaddRegPtrReg('rdi', 'eax');
      w.putRet();
      w.flush();
    });
    xadd = new NativeFunction(code, 'int', ['pointer', 'int'], { scheduling: 'exclusive' });
  }
  return xadd(p, n);
}
