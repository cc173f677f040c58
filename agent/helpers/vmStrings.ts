// Byte-level string access shared by the helpers. Formatting works on "byte strings"
// (one JS char per byte, 0..255) so snprintf can write exactly the bytes it formatted and
// only printk events pay for UTF-8 decoding.

import { decodeUtf8, type BpfVm } from '../../vm/ts/vm.js';
import type { TargetMemory } from './HelperEnv.js';

/** Bytes of a NUL-terminated string in VM memory (without the NUL), at most `max` bytes, or null when unreadable. */
export function vmCString(vm: BpfVm, addr: bigint, max: number): Uint8Array | null {
  if (!vm.isAccessible(addr, 1, false)) return null;
  const a = Number(addr);
  const end = Math.min(vm.bounds.rwHi, a + max);
  const m = vm.memory();
  let i = a;
  while (i < end && m[i] !== 0) i++;
  return m.slice(a, i);
}

/**
 * A string argument (%s, strncmp): VM memory when the address is inside the VM arena
 * (rodata, stack, map values), else the target's memory. Without its NUL; null on fault.
 */
export function anyCString(vm: BpfVm, memory: TargetMemory, addr: bigint, max: number): Uint8Array | null {
  if (vm.isAccessible(addr, 1, false)) return vmCString(vm, addr, max);
  if (addr === 0n) return null;
  const b = memory.readCString(addr, max);
  return b === null ? null : stripNul(b);
}

/** TargetMemory.readCString may or may not include the terminator: cut at the first NUL. */
export function stripNul(b: Uint8Array): Uint8Array {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/** Bytes from VM or target memory (for %pI4 and friends). */
export function anyBytes(vm: BpfVm, memory: TargetMemory, addr: bigint, len: number): Uint8Array | null {
  if (vm.isAccessible(addr, len, false)) return vm.read(addr, len);
  return addr === 0n ? null : memory.read(addr, len);
}

export function bytesToLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

export function latin1ToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A byte string's UTF-8 text; ASCII (the common case) needs no decoding. */
export function latin1ToText(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return decodeUtf8(latin1ToBytes(s));
  return s;
}

/** UTF-8 bytes of a JS string (for comm, which the environment gives as a string). */
export function encodeUtf8(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
