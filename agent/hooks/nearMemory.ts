// Immortal memory within rel32 reach of an address: a 5-byte `jmp rel32` written over a
// function can only land within ±2 GiB of it, and the relocated instructions jump back the
// same way. Free gaps come from /proc/self/maps (it also lists Frida's cloaked mappings,
// which Process.enumerateRanges hides); a gap is claimed with MAP_FIXED_NOREPLACE so a
// mapping made meanwhile by another thread is never overwritten.

import { ARENA_SIZE, RawArena, mapPages, noteHandedOut, type MemoryKind } from './rawMemory.js';
import { PAGE_SIZE } from './libc.js';

/** Farthest distance from `near` any byte of a near allocation may be (2 GiB minus slack for the jump's own length and rip-relative operands). */
export const NEAR_REACH = 0x7fff0000;

const nearArenas: Record<MemoryKind, RawArena[]> = { code: [], data: [] };

function reaches(p: NativePointer, size: number, near: NativePointer): boolean {
  const lo = BigInt(p.toString());
  const hi = lo + BigInt(size);
  const at = BigInt(near.toString());
  const reach = BigInt(NEAR_REACH);
  return lo >= at - reach && hi <= at + reach;
}

interface Gap {
  start: bigint;
  end: bigint;
}

/** The unmapped holes of the user address space, from /proc/self/maps. */
function freeGaps(): Gap[] {
  const text = File.readAllText('/proc/self/maps');
  const gaps: Gap[] = [];
  let prevEnd = 0x10000n; // below this, mmap_min_addr and null-pointer guards
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
    if (!m) continue;
    const start = BigInt('0x' + m[1]);
    const end = BigInt('0x' + m[2]);
    if (start > prevEnd) gaps.push({ start: prevEnd, end: start });
    if (end > prevEnd) prevEnd = end;
  }
  const top = 0x7ffffffff000n;
  if (prevEnd < top) gaps.push({ start: prevEnd, end: top });
  return gaps;
}

/** Candidate arena addresses inside each gap, the ones closest to `near` first. */
function candidates(near: NativePointer, len: number): bigint[] {
  const at = BigInt(near.toString());
  const reach = BigInt(NEAR_REACH);
  const size = BigInt(len);
  const page = BigInt(PAGE_SIZE);
  const out: bigint[] = [];
  for (const g of freeGaps()) {
    if (g.end - g.start < size) continue;
    // The gap's ends nearest the address (leave a page of guard to neighbours), and the address itself when inside.
    const lo = g.start + page;
    const hi = g.end - size - page;
    if (hi < lo) continue;
    let c = at < lo ? lo : at > hi ? hi : (at / page) * page;
    c = (c / page) * page;
    if (c >= at - reach && c + size <= at + reach) out.push(c);
  }
  out.sort((a, b) => {
    const da = a > at ? a - at : at - a;
    const db = b > at ? b - at : at - b;
    return da < db ? -1 : da > db ? 1 : 0;
  });
  return out;
}

/**
 * `size` immortal bytes, every one of them within NEAR_REACH of `near`. Throws when no
 * free address range is within reach (an address space packed for ±2 GiB around it).
 */
export function allocNear(near: NativePointer, size: number, kind: MemoryKind = 'code', align = 16): NativePointer {
  for (const a of nearArenas[kind]) {
    if (!reaches(a.base, a.size, near)) continue;
    const p = a.alloc(size, align);
    if (p) {
      noteHandedOut(size);
      return p;
    }
  }
  const len = Math.max(ARENA_SIZE, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE);
  for (let attempt = 0; attempt < 3; attempt++) {
    for (const c of candidates(near, len).slice(0, 8)) {
      const base = mapPages(len, kind, ptr(c.toString()));
      if (!base) continue; // taken since we read the maps
      const arena = new RawArena(base, len, kind);
      nearArenas[kind].push(arena);
      noteHandedOut(size);
      return arena.alloc(size, align)!;
    }
  }
  throw new Error(`no free memory within ±2 GiB of ${near} for a ${size}-byte hook stub`);
}

/** Whether `p` can be the target of a rel32 jump or call placed at `from` (its next instruction). */
export function rel32Reaches(from: NativePointer, p: NativePointer): boolean {
  const d = BigInt(p.toString()) - BigInt(from.toString());
  return d >= -0x80000000n && d <= 0x7fffffffn;
}
