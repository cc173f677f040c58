// C++ exceptions and thread cancellation through frames whose return address a return
// probe has hijacked. The unwinder reads each frame's return address off the stack to find
// its unwind info; our return stub has none, so a throw through such a frame ended in
// std::terminate, and a pthread_cancel in abort. Each of libgcc's unwinder entry points
// gets a permanent inline probe of kind 'unwind': before any unwinding starts on a thread,
// the hook core puts that thread's hijacked returns back (hookcore.c, unwind_restore).
// Those calls' return programs do not run, as after a longjmp.
//
// Guarded once per process, before the first hijack can happen, and never unguarded: a
// thread blocked in a hooked function returns (or unwinds) through its hijacked frame long
// after the session that hijacked it. Which addresses are guarded is kept in immortal
// memory found through the hook registry, so later sessions do not guard them twice.

import { InlineProbe } from './inlineProbe.js';
import { REG, hookRegistry } from './hookRegistry.js';
import { rawAlloc } from './rawMemory.js';

/** Where libgcc's unwinder starts walking a stack: throw, rethrow, resume after a cleanup, forced unwind (pthread_cancel, pthread_exit). */
export const UNWIND_ENTRY_POINTS = ['_Unwind_RaiseException', '_Unwind_Resume', '_Unwind_Resume_or_Rethrow', '_Unwind_ForcedUnwind'] as const;

const TABLE_SLOTS = 63; // u64 count, then addresses: a few per unwinder library
let observer: ModuleObserver | null = null;

function table(): NativePointer {
  const reg = hookRegistry();
  let t = reg.add(REG.unwindGuard).readPointer();
  if (t.isNull()) {
    t = rawAlloc(8 * (TABLE_SLOTS + 1), 'data', 8);
    reg.add(REG.unwindGuard).writePointer(t);
  }
  return t;
}

function guarded(t: NativePointer, addr: NativePointer): boolean {
  const n = t.readU32();
  for (let i = 0; i < n; i++) if (t.add(8 * (i + 1)).readPointer().equals(addr)) return true;
  return false;
}

/** Guards the entry points `m` exports; returns what could not be guarded. */
function guardModule(m: Module): string[] {
  const problems: string[] = [];
  const t = table();
  for (const name of UNWIND_ENTRY_POINTS) {
    const addr = m.findExportByName(name);
    if (addr === null || guarded(t, addr)) continue;
    const n = t.readU32();
    if (n >= TABLE_SLOTS) return [...problems, `${m.name}: too many unwinder entry points to guard`];
    try {
      InlineProbe.attachUnwind(addr, `${m.name}:${name}`);
    } catch (e) {
      problems.push(`${m.name}:${name}: ${(e as Error).message}`);
      continue;
    }
    t.add(8 * (n + 1)).writePointer(addr);
    t.writeU32(n + 1);
  }
  return problems;
}

/**
 * Guards every unwinder loaded now, and (while this agent lives) those loaded later.
 * Called before a return probe's first hijack; `warn` hears what could not be guarded
 * (an exception through that probe's frame would then terminate the target).
 */
export function ensureUnwindGuard(warn: (what: string) => void): void {
  if (observer !== null) return;
  for (const m of Process.enumerateModules()) for (const p of guardModule(m)) warn(`unwinder not guarded (${p})`);
  observer = Process.attachModuleObserver({
    onAdded: (m: Module) => {
      for (const p of guardModule(m)) warn(`unwinder not guarded (${p})`);
    },
  });
}

/** At this agent's detach or unload: stop watching for unwinders loaded later (what is guarded stays). */
export function stopUnwindGuardWatch(): void {
  observer?.detach();
  observer = null;
}
