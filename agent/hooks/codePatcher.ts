// Writes bytes into code other threads may be executing, the way the kernel's text_poke_bp
// does: an int3 over the first byte, the tail, then the first byte, with every CPU
// serialised between the steps (membarrier SYNC_CORE, what the kernel's IPIs do). While the
// int3 is there, a thread that reaches it is sent by the trap handler to `detour`: immortal
// code that does what the bytes mean, before and after (for a hook: its stub, which with
// `active` cleared runs the original instructions). A thread that was preempted in the
// middle of the bytes being replaced would resume in the middle of the new instruction, so
// before the tail is written every thread must be seen outside them (see awaitOutside).
// Memory.patchCode makes the page writable for the length of each write (RWX on Linux, so
// threads keep executing the page meanwhile).

import { ensureTrapHandler, setTrapSite } from './trapHandler.js';
import { syscall4 } from './libc.js';

const SYS_MEMBARRIER = 324;
const SYS_GETTID = 186;
const MEMBARRIER_CMD_QUERY = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE = 0x20;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 0x40;

/** CPU time (ns) a runnable thread must have had since the int3 landed to count as past the bytes: a few instructions take ns, this is margin for a page fault taken there. */
const RAN_PAST_NS = 200_000;

export class PatchError extends Error {}

export interface PatchOptions {
  /** Give up (and leave the old bytes) when a thread stays inside the range this long. */
  timeoutMs?: number;
}

let syncMode: 'membarrier' | 'sleep' | null = null;

/** Makes every CPU of this process serialise its instruction stream (what cross-modifying code needs between steps). */
export function syncCores(): void {
  if (syncMode === null) {
    const cmds = syscall4(SYS_MEMBARRIER, MEMBARRIER_CMD_QUERY, 0, 0, 0);
    const ok = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) !== 0 && syscall4(SYS_MEMBARRIER, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0, 0) === 0;
    syncMode = ok ? 'membarrier' : 'sleep';
  }
  if (syncMode === 'membarrier') syscall4(SYS_MEMBARRIER, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0, 0);
  // Without membarrier (kernels < 4.16), a scheduler tick on every CPU also serialises: wait for one.
  else Thread.sleep(0.01);
}

export function syncMechanism(): string {
  syncCores();
  return syncMode!;
}

function write(at: NativePointer, bytes: number[]): void {
  Memory.patchCode(at, bytes.length, (w) => w.writeByteArray(bytes));
}

interface ThreadMark {
  tid: number;
  runNs: bigint;
}

function readText(path: string): string | null {
  try {
    return File.readAllText(path);
  } catch {
    return null; // the thread exited
  }
}

function runtimeNs(tid: number): bigint | null {
  const s = readText(`/proc/self/task/${tid}/schedstat`);
  return s === null ? null : BigInt(s.split(' ')[0]);
}

/**
 * Whether thread `tid` is certainly not executing, nor about to resume, inside (lo, hi).
 * A thread blocked in the kernel tells its user pc through /proc/…/syscall; a runnable one
 * must have run RAN_PAST_NS since `mark`: new entries into the range go through the int3
 * at its first byte, so a thread that has run on is past it for good.
 */
function isOutside(m: ThreadMark, lo: bigint, hi: bigint): boolean {
  const stat = readText(`/proc/self/task/${m.tid}/stat`);
  if (stat === null) return true;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'S' || state === 'D' || state === 'T' || state === 't') {
    const sc = readText(`/proc/self/task/${m.tid}/syscall`);
    if (sc !== null && !sc.startsWith('running')) {
      const f = sc.trim().split(' ');
      const pc = BigInt(f[f.length - 1]);
      // Blocked or stopped (ptrace, SIGSTOP, a suspended spawn): it resumes at this pc.
      return pc < lo || pc >= hi;
    }
  }
  const now = runtimeNs(m.tid);
  return now === null || now - m.runNs >= BigInt(RAN_PAST_NS);
}

function threadMarks(): ThreadMark[] {
  const self = syscall4(SYS_GETTID, 0, 0, 0, 0);
  const marks: ThreadMark[] = [];
  for (const tid of taskIds()) {
    if (tid === self) continue;
    const ns = runtimeNs(tid);
    if (ns !== null) marks.push({ tid, runNs: ns });
  }
  return marks;
}

type DirFn = NativeFunction<NativePointer, [NativePointerValue]>;
let dirFns: { open: DirFn; read: DirFn; close: NativeFunction<number, [NativePointerValue]> } | null = null;

/**
 * Every thread of the process, from /proc/self/task: Frida's enumerateThreads would hide
 * its own (cloaked) threads and stop each thread with ptrace to read its registers.
 */
function taskIds(): number[] {
  const ex = { scheduling: 'exclusive', exceptions: 'propagate' } as const;
  dirFns ??= {
    open: new NativeFunction(Module.getGlobalExportByName('opendir'), 'pointer', ['pointer'], ex),
    read: new NativeFunction(Module.getGlobalExportByName('readdir64'), 'pointer', ['pointer'], ex),
    close: new NativeFunction(Module.getGlobalExportByName('closedir'), 'int', ['pointer'], ex),
  };
  const dir = dirFns.open(Memory.allocUtf8String('/proc/self/task'));
  if (dir.isNull()) throw new PatchError('cannot list /proc/self/task');
  const ids: number[] = [];
  try {
    for (let e = dirFns.read(dir); !e.isNull(); e = dirFns.read(dir)) {
      const name = e.add(19).readUtf8String() ?? ''; // struct dirent64: d_name after ino, off, reclen, type
      if (/^\d+$/.test(name)) ids.push(Number(name));
    }
  } finally {
    dirFns.close(dir);
  }
  return ids;
}

/**
 * Waits until no thread can be inside [addr, addr+len): true when none is, false on timeout.
 * Frida's own threads are included: they call libc functions that may be the ones patched.
 */
function awaitOutside(addr: NativePointer, len: number, timeoutMs: number): boolean {
  const lo = BigInt(addr.toString());
  const hi = lo + BigInt(len);
  let pending = threadMarks();
  const end = Date.now() + timeoutMs;
  for (;;) {
    pending = pending.filter((m) => !isOutside(m, lo, hi));
    if (pending.length === 0) return true;
    if (Date.now() >= end) return false;
    Thread.sleep(0.001);
  }
}

/**
 * Replaces the bytes at `addr` with `bytes` while other threads may be running them.
 * `detour` is where a thread that meets the temporary int3 continues: code equivalent to
 * both the old and the new bytes (for a hook, its stub). Throws PatchError and leaves the
 * old bytes when a thread stays inside the range (blocked or stopped there).
 */
export function patchCodeLive(addr: NativePointer, bytes: number[], detour: NativePointer, opts: PatchOptions = {}): void {
  if (bytes.length === 0) return;
  if (bytes.length === 1) {
    const wasTrap = addr.readU8() === 0xcc;
    write(addr, bytes); // one byte is one atomic store: no window
    syncCores();
    if (wasTrap && bytes[0] !== 0xcc) awaitTrapsDelivered(opts.timeoutMs ?? 2000);
    return;
  }
  const old0 = addr.readU8();
  ensureTrapHandler();
  setTrapSite(addr, detour);
  write(addr, [0xcc]);
  syncCores();
  if (!awaitOutside(addr.add(1), bytes.length - 1, opts.timeoutMs ?? 2000)) {
    write(addr, [old0]);
    syncCores();
    throw new PatchError(`a thread stays inside the ${bytes.length} bytes at ${addr} (blocked or stopped there); not patched`);
  }
  write(addr.add(1), bytes.slice(1));
  syncCores();
  write(addr, [bytes[0]]);
  syncCores();
  if (bytes[0] !== 0xcc) awaitTrapsDelivered(opts.timeoutMs ?? 2000);
}

/**
 * Waits until every thread that met an int3 of ours before it was removed has had its
 * SIGTRAP delivered. The kernel queues the signal at the trap but picks the handler only
 * when the thread next returns to user mode, which under load can be tens of ms later; by
 * then the agent may have unloaded and Frida's exceptor put back the action it found
 * (SIG_DFL), and the late signal kills the process (cored: several victim threads at
 * int3+1 while the agent was unmapping). A thread that has since run on, or sleeps in a
 * syscall, has returned to user mode and taken its signal. A stopped thread (SIGSTOP,
 * ptrace) is not waited for: it takes a pending signal only when continued, which no wait
 * here can bring closer. False when a runnable thread did not run within the timeout.
 */
function awaitTrapsDelivered(timeoutMs: number): boolean {
  let pending = threadMarks();
  const end = Date.now() + timeoutMs;
  for (;;) {
    pending = pending.filter((m) => !isOutside(m, 0n, 0n)); // an empty range: any pc counts as outside
    if (pending.length === 0) return true;
    if (Date.now() >= end) return false;
    Thread.sleep(0.001);
  }
}
