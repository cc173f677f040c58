// One page per process where hook state that outlives a session is found again: the
// SIGTRAP handler and its site table, and whatever else must be process-wide rather than
// per agent (two sessions hooking the same process must share one trap handler, and a
// session that starts after another one ended must find what that one left behind).
// The page is a memfd mapping, so its name shows in /proc/self/maps
// ("/memfd:bpftime-ts-hooks-v1 (deleted)"): that is how a later agent finds it. It is mapped
// MAP_PRIVATE, so a forked child gets its own copy, consistent with its copied address space.
// Never unmapped. Bump the version in the name when the layout below changes.

import { MAP_FAILED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, mmap, syscall4 } from './libc.js';

export const REGISTRY_NAME = 'bpftime-ts-hooks-v1';
const MAGIC = uint64('0x4b4f4f484d495442'); // "BTIMHOOK"

/** Slots of the registry page (byte offsets of u64 values). */
export const REG = {
  magic: 0,
  /** The trap handler's state block (trapHandler.ts), 0 until one is made. */
  trapState: 8,
  /** The trap handler's code. */
  trapHandler: 16,
  /** The sa_restorer the trap handler is installed with. */
  trapRestorer: 24,
  /** The hook core's per-thread table (hookCore.ts): recursion guard and uretprobe shadow stacks. */
  threads: 32,
  /** The JS hold, 16 bytes (agent/cmodules/jsHold.h): one for every script of every agent. */
  jsHold: 40,
  /** The unwinder entry points guarded for return probes (unwindGuard.ts), 0 until one is. */
  unwindGuard: 48,
} as const;

const SYS_CLOSE = 3;
const SYS_FTRUNCATE = 77;
const SYS_MEMFD_CREATE = 319;
const MFD_CLOEXEC = 1;

let page: NativePointer | null = null;

function findMapped(): NativePointer | null {
  const needle = `/memfd:${REGISTRY_NAME}`;
  for (const line of File.readAllText('/proc/self/maps').split('\n')) {
    if (!line.includes(needle)) continue;
    const p = ptr('0x' + line.slice(0, line.indexOf('-')));
    if (p.readU64().equals(MAGIC)) return p;
  }
  return null;
}

function create(): NativePointer {
  const name = Memory.allocUtf8String(REGISTRY_NAME);
  const fd = syscall4(SYS_MEMFD_CREATE, name, MFD_CLOEXEC, 0, 0);
  if (fd < 0) throw new Error(`memfd_create for the hook registry failed (${fd})`);
  try {
    if (syscall4(SYS_FTRUNCATE, fd, PAGE_SIZE, 0, 0) !== 0) throw new Error('ftruncate of the hook registry failed');
    const p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p.equals(MAP_FAILED)) throw new Error('mmap of the hook registry failed');
    p.writeU64(MAGIC);
    return p;
  } finally {
    syscall4(SYS_CLOSE, fd, 0, 0, 0); // the mapping keeps the file
  }
}

/** The process's hook registry page, made by the first agent that asks. */
export function hookRegistry(): NativePointer {
  page ??= findMapped() ?? create();
  return page;
}
