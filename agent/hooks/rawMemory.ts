// Immortal memory: pages from a raw mmap that nothing ever unmaps. Everything a target
// thread can execute or read on a hook's hit path lives here (stubs, relocated
// instructions, probe blocks, shadow stacks), because a thread preempted inside that code
// may resume long after the agent that wrote it is gone: Memory.alloc and CModule memory
// die with the script (frida-hooks.md §2), these pages never do. The price is a few hundred
// bytes per probe, leaked on purpose.
//
// Code arenas are mapped RWX (Frida itself relies on RWX on Linux), so stubs are written in
// place without a protection flip; data arenas are RW.

import { MAP_ANONYMOUS, MAP_FAILED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, mmap, munmap } from './libc.js';

export type MemoryKind = 'code' | 'data';

/** Bytes an arena maps at once; bigger requests get an arena of their own. */
export const ARENA_SIZE = 64 * 1024;

function protOf(kind: MemoryKind): number {
  return kind === 'code' ? PROT_READ | PROT_WRITE | PROT_EXEC : PROT_READ | PROT_WRITE;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/**
 * Maps `size` bytes of fresh zeroed pages. With `at`, only exactly there (null when that
 * range is taken); without, wherever the kernel likes. Throws when the kernel refuses.
 */
export function mapPages(size: number, kind: MemoryKind, at?: NativePointer): NativePointer | null {
  const len = roundUp(size, PAGE_SIZE);
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0);
  const p = mmap(at ?? NULL, len, protOf(kind), flags);
  if (p.equals(MAP_FAILED)) {
    if (at) return null;
    throw new Error(`mmap of ${len} bytes (${kind}) failed`);
  }
  if (at && !p.equals(at)) {
    // A kernel older than 4.17 took MAP_FIXED_NOREPLACE as a hint: this mapping is ours
    // and unused, so giving it back is safe.
    munmap(p, len);
    return null;
  }
  return p;
}

/** A bump allocator over one immortal mapping. */
export class RawArena {
  private used = 0;

  constructor(
    readonly base: NativePointer,
    readonly size: number,
    readonly kind: MemoryKind,
  ) {}

  /** `size` bytes aligned to `align` (a power of two), or null when the arena is full. */
  alloc(size: number, align = 16): NativePointer | null {
    const start = roundUp(this.used, align);
    if (start + size > this.size) return null;
    this.used = start + size;
    return this.base.add(start);
  }

  get free(): number {
    return this.size - this.used;
  }

  contains(p: NativePointer): boolean {
    return p.compare(this.base) >= 0 && p.compare(this.base.add(this.size)) < 0;
  }
}

const arenas: Record<MemoryKind, RawArena[]> = { code: [], data: [] };
let leaked = 0;

/** Immortal bytes anywhere in the address space (for code that needs no rel32 reach). */
export function rawAlloc(size: number, kind: MemoryKind, align = 16): NativePointer {
  for (const a of arenas[kind]) {
    const p = a.alloc(size, align);
    if (p) return account(p, size);
  }
  const len = Math.max(ARENA_SIZE, roundUp(size, PAGE_SIZE));
  const arena = new RawArena(mapPages(len, kind)!, len, kind);
  arenas[kind].push(arena);
  return account(arena.alloc(size, align)!, size);
}

function account(p: NativePointer, size: number): NativePointer {
  leaked += size;
  return p;
}

/** Bytes handed out by this agent's allocators so far (all of it stays mapped for good). */
export function rawBytesHandedOut(): number {
  return leaked;
}

/** For nearMemory: counts bytes it hands out of its own arenas. */
export function noteHandedOut(size: number): void {
  leaked += size;
}
