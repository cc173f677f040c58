// The C the stubs call for a rewritten site whose flag is set: decide whether this
// syscall reaches a program, fill the tracepoint record on the stack, run the programs
// natively (nativeDispatch.ts, shared with the Stalker callouts) or through JS, and hand
// an override back to the trampoline through the frame (rax = value, r11 = 1: skip the
// syscall). Every state a syscall needs lives in the frame, so threads need no set-up:
// threads created later, signal handlers and start-up code are traced the moment their
// syscalls go through a rewritten site.
//
// Skipped, in C, before any program runs: Frida's own threads (cloaked), a syscall made
// while this thread is already inside a program (a helper's getpid, a JS helper's
// write), a forked child (forkGuard), and while a fork is under way any thread whose
// process is not the agent's (the child before fork() returns). The JS path also skips the
// agent's own heap growing on a target thread (agentText.ts). The C is
// native/rewriteHandlers.c (built by gcc, loaded as a CModule from its bytes).

import { SYSCALL_SLOTS, syscallNumber } from '../../../../protocol/syscalls.js';
import { HOOK_THREADS } from '../../../hooks/hookCore.js';
import { REG, hookRegistry } from '../../../hooks/hookRegistry.js';
import { checkLayout, type ExpectedLayout } from '../../../cmodules/checkLayout.js';
import { REWRITE_HANDLERS_SO_BASE64 } from './generated/rewriteHandlersSo.js';
import { decodeBase64 } from '../../../base64.js';
import { hotCallback } from '../../../hotCallback.js';
import { CFG } from '../syscallFilter.js';
import { NATIVE_LAYOUT, NATIVE_MAX_PROGS } from '../nativeDispatch.js';
import { THREAD_STATE_LAYOUT } from '../threadState.js';
import { FRAME, stubPage } from './stubs.js';
import { AGENT_TEXT_RANGES, agentTextRanges } from './agentText.js';

/** Site table entry: the site's syscall address (its mov + 5) and number. */
export const SITE = { ip: 0, nr: 8, size: 16 } as const;
export const MAX_SITES = 16384;
const MAX_TIDS = 1024;

/**
 * A set of thread ids in a block the handlers read (CModule cannot reach Frida's cloak):
 * count, then slots; a removed id leaves a 0 slot that the next add reuses. Written only
 * by JS (under the JS lock), read racily by C: a slot changes with one 4-byte store.
 */
export class ThreadTable {
  readonly block = Memory.alloc(4 * (1 + MAX_TIDS));
  private readonly slots = new Map<number, number>();
  private used = 0;

  has(tid: number): boolean {
    return this.slots.has(tid);
  }

  add(tid: number): void {
    if (tid <= 0 || this.slots.has(tid)) return;
    let slot = -1;
    for (let i = 0; i < this.used; i++) if (this.block.add(4 * (1 + i)).readS32() === 0) slot = i;
    if (slot < 0) {
      if (this.used >= MAX_TIDS) return;
      slot = this.used++;
    }
    this.block.add(4 * (1 + slot)).writeS32(tid);
    this.slots.set(tid, slot);
    this.block.writeS32(this.used);
  }

  remove(tid: number): void {
    const slot = this.slots.get(tid);
    if (slot === undefined) return;
    this.block.add(4 * (1 + slot)).writeS32(0);
    this.slots.delete(tid);
  }
}

/** Thread ids from /proc/self/task, read with the agent's own libc calls. */
export function listTasks(): number[] {
  const opendir = new NativeFunction(Module.getGlobalExportByName('opendir'), 'pointer', ['pointer']);
  const readdir = new NativeFunction(Module.getGlobalExportByName('readdir'), 'pointer', ['pointer']);
  const closedir = new NativeFunction(Module.getGlobalExportByName('closedir'), 'int', ['pointer']);
  const dir = opendir(Memory.allocUtf8String('/proc/self/task'));
  if (dir.isNull()) return [];
  const out: number[] = [];
  for (let e = readdir(dir); !e.isNull(); e = readdir(dir)) {
    const tid = Number(e.add(19).readUtf8String() ?? ''); // struct dirent.d_name
    if (tid > 0) out.push(tid);
  }
  closedir(dir);
  return out;
}

/** A syscall's number from the one table (protocol/syscalls.ts); a missing name is a bug here. */
function nr(name: string): number {
  const n = syscallNumber(name);
  if (n === undefined) throw new Error(`no syscall ${name} in protocol/syscalls.ts`);
  return n;
}

/**
 * The handlers' constants, from their one definition (native/constants.h repeats them for
 * gcc; rewrite_handlers_layout reports them and checkLayout compares).
 */
const CONSTANTS: ExpectedLayout = [
  ['MAX_TIDS', MAX_TIDS],
  ['SLOTS', SYSCALL_SLOTS],
  ['CFG_ENTER', CFG.enter],
  ['CFG_EXIT', CFG.exit],
  ['CFG_ANY_ENTER', CFG.anyEnter],
  ['CFG_ANY_EXIT', CFG.anyExit],
  ['CFG_TID_OFFSET', CFG.tidOffset],
  ['NATIVE_MAX_PROGS', NATIVE_MAX_PROGS],
  ['HOOK_THREADS_SLOT0', HOOK_THREADS.slot0],
  ['HOOK_THREAD_SLOTS', HOOK_THREADS.slots],
  ['HOOK_THREAD_STATE_SIZE', HOOK_THREADS.stateSize],
  ['HOOK_THREAD_BUSY', HOOK_THREADS.busy],
  ['HOOK_PROBE_LIMIT', HOOK_THREADS.probeLimit],
  ['AGENT_TEXT_RANGES', AGENT_TEXT_RANGES],
  ['NR_MMAP', nr('mmap')],
  ['NR_MUNMAP', nr('munmap')],
  ['NR_MREMAP', nr('mremap')],
  ['NR_MADVISE', nr('madvise')],
];

/** native/rewriteHandlers.c built by gcc (native/Makefile): a shared library Frida loads as a CModule. */
function handlersLibrary(): ArrayBuffer {
  const bytes = decodeBase64(REWRITE_HANDLERS_SO_BASE64);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** rewrite_handlers_layout's order: the shared blocks, then Frame (FRAME in stubs.ts) and Site (SITE). */
const HANDLERS_LAYOUT: ExpectedLayout = [
  ...THREAD_STATE_LAYOUT,
  ...NATIVE_LAYOUT,
  ['Frame.flags', FRAME.flags],
  ['Frame.rbp', FRAME.rbp],
  ['Frame.rbx', FRAME.rbx],
  ['Frame.r11', FRAME.r11],
  ['Frame.rax', FRAME.rax],
  ['Frame.ret', FRAME.ret],
  ['Frame.site', FRAME.site],
  ['sizeof (Frame)', FRAME.size],
  ['Site.ip', SITE.ip],
  ['Site.nr', SITE.nr],
  ['sizeof (Site)', SITE.size],
  ...CONSTANTS,
];

export interface RewriteHandlers {
  readonly enter: NativePointer;
  readonly exit: NativePointer;
  /** The site table (SITE entries, MAX_SITES of them). */
  readonly sites: NativePointer;
  /** Interceptor listener for exit(): JS-path programs stop there (see on_exit_begin). */
  readonly onExitBegin: NativePointer;
  /** Interceptor listener for _exit(): nothing more on that thread is the target's. */
  readonly onProcessEnd: NativePointer;
  /** Runs `fn` with this thread marked as inside a program: its syscalls reach none. */
  busy(fn: () => void): void;
  readonly keepAlive: unknown[];
}

/**
 * Compiles the handlers. `cfg` and `native` are the Stalker filter's blocks (one enable
 * table and one native run table for both mechanisms); `onHit(record, phase)` is the JS
 * path, given a pointer to a thread-state-shaped record (threadState.ts TS) on the
 * thread's stack.
 */
export function createRewriteHandlers(
  cfg: NativePointer,
  native: NativePointer,
  forkState: NativePointer,
  fridaTids: NativePointer,
  appTids: NativePointer,
  onHit: (record: NativePointer, phase: number) => void,
  onNativeFault: (handle: number, status: number) => void,
): RewriteHandlers {
  const sites = Memory.alloc(SITE.size * MAX_SITES);
  const pid = Memory.alloc(4);
  pid.writeS32(Process.id);
  const exiting = Memory.alloc(4);
  const endGate = Memory.alloc(4);
  const key = Memory.alloc(4);
  // AGENT_TEXT_RANGES [lo, hi) pairs of u64 for agent_heap_syscall; unused ones stay [0, 0).
  const agentText = Memory.alloc(16 * AGENT_TEXT_RANGES);
  agentTextRanges(File.readAllText('/proc/self/maps'))
    .slice(0, AGENT_TEXT_RANGES)
    .forEach(([lo, hi], i) => {
      agentText.add(16 * i).writeU64(uint64(lo.toString()));
      agentText.add(16 * i + 8).writeU64(uint64(hi.toString()));
    });
  const keyCreate = new NativeFunction(Module.getGlobalExportByName('pthread_key_create'), 'int', ['pointer', 'pointer']);
  if (keyCreate(key, NULL) !== 0) throw new Error('pthread_key_create failed');
  const jsHit = hotCallback(onHit, 'void', ['pointer', 'int']);
  const jsFault = new NativeCallback(onNativeFault, 'void', ['uint', 'int']);
  const cm = new CModule(handlersLibrary(), {
    cfg,
    sites,
    agent_pid: pid,
    fork_state: forkState,
    native_table: native,
    js_native_fault_cb: jsFault,
    full_save_call: stubPage().fullSaveCall,
    js_hit: jsHit,
    busy_key: key,
    hook_threads_cell: hookRegistry().add(REG.threads),
    exiting,
    end_gate: endGate,
    agent_text: agentText,
    frida_tids: fridaTids,
    app_tids: appTids,
    pthread_self_fn: Module.getGlobalExportByName('pthread_self'),
    pthread_getspecific_fn: Module.getGlobalExportByName('pthread_getspecific'),
    pthread_setspecific_fn: Module.getGlobalExportByName('pthread_setspecific'),
    syscall_fn: stubPage().rawSyscall0,
    sched_getcpu: Module.getGlobalExportByName('sched_getcpu'),
  });
  checkLayout(cm, 'rewrite_handlers_layout', HANDLERS_LAYOUT);
  const setSpecific = new NativeFunction(Module.getGlobalExportByName('pthread_setspecific'), 'int', ['uint', 'pointer']);
  const busy = (fn: () => void) => {
    setSpecific(key.readU32(), ptr(1));
    try {
      fn();
    } finally {
      setSpecific(key.readU32(), NULL);
    }
  };
  return {
    enter: cm.rw_enter,
    exit: cm.rw_exit,
    onExitBegin: cm.on_exit_begin,
    onProcessEnd: cm.on_process_end,
    sites,
    busy,
    keepAlive: [cm, sites, pid, key, exiting, endGate, agentText, jsHit, jsFault],
  };
}
