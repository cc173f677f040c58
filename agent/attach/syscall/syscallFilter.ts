// The native half of syscall tracing: a Stalker transform that brackets every `syscall`
// instruction with two callouts, and the callouts themselves. They run on every syscall
// of every followed thread, so they decide in C, from a table JS keeps up to date,
// whether anything is attached to this syscall; only then do they fill the tracepoint
// record and call into JS (which takes Frida's JS lock). Unrelated syscalls never leave C.
// The C is agent/cmodules/syscallFilter.c.

import { NR_EXIT_GROUP } from './exitHooks.js';
import { SYSCALL_SLOTS } from '../../../protocol/syscalls.js';
import { cDefines } from '../../cmodules/cDefines.js';
import { checkLayout } from '../../cmodules/checkLayout.js';
import { SYSCALL_FILTER_C } from '../../cmodules/generated/syscallFilter_c.js';
import { forkGuard } from '../../forkGuard.js';
import { hotCallback } from '../../hotCallback.js';
import { NATIVE, NATIVE_LAYOUT, NATIVE_MAX_PROGS } from './nativeDispatch.js';
import { THREAD_STATE_LAYOUT } from './threadState.js';

/** Byte offsets in the shared config block: one enable byte per syscall and phase, then the raw ones. */
export const CFG = {
  enter: 0,
  exit: SYSCALL_SLOTS,
  anyEnter: 2 * SYSCALL_SLOTS,
  anyExit: 2 * SYSCALL_SLOTS + 1,
  /** gint32: offset of the thread id in glibc's struct pthread (found at start-up). */
  tidOffset: 2 * SYSCALL_SLOTS + 4,
  size: 2 * SYSCALL_SLOTS + 8,
} as const;

export { NATIVE, NATIVE_MAX_PROGS } from './nativeDispatch.js';

/** Blocks with a syscall remembered for detach (more are possible only in huge programs; they leave Stalker later). */
export const MAX_SYSCALL_BLOCKS = 4096;

/** agent/cmodules/syscallFilter.c with the constants it needs, from their one definition here. */
const SOURCE =
  cDefines({
    SLOTS: SYSCALL_SLOTS,
    CFG_ENTER: CFG.enter,
    CFG_EXIT: CFG.exit,
    CFG_ANY_ENTER: CFG.anyEnter,
    CFG_ANY_EXIT: CFG.anyExit,
    CFG_TID_OFFSET: CFG.tidOffset,
    NR_EXIT_GROUP,
    MAX_SYSCALL_BLOCKS,
    NATIVE_MAX_PROGS,
  }) + SYSCALL_FILTER_C;

export interface SyscallFilter {
  /** `void transform(GumStalkerIterator*, GumStalkerOutput*, ThreadState*)`. */
  readonly transform: NativePointer;
  /** Enable bytes (see CFG); written by JS, read by every callout. */
  readonly cfg: Uint8Array;
  /** The same block as a pointer (the rewrite mechanism's handlers read it too). */
  readonly cfgBlock: NativePointer;
  /** `void (GumInvocationContext*)` listener for _exit(). */
  readonly onProcessExit: NativePointer;
  /** The native run table (see NATIVE); change it only between quiesce() and activate(). */
  readonly native: NativePointer;
  /** Start addresses of the translated blocks that contain a syscall (for Stalker.invalidate at detach). */
  syscallBlocks(): NativePointer[];
  /** Stops new native runs and waits until no callout is inside one. */
  quiesce(): void;
  /** Lets callouts use the native table again. */
  activate(): void;
}

/**
 * Compiles the filter. The module, the config block and the two callbacks are returned
 * inside one object that must stay reachable for as long as any thread may still run
 * stalked code, since the callouts point into all of them.
 */
export function createSyscallFilter(
  onEnter: (slot: number) => void,
  onExit: (slot: number) => void,
  onProcessExit: (tid: number, status: number) => void,
  onNativeFault: (handle: number, status: number) => void,
): SyscallFilter & { keepAlive: unknown[] } {
  const cfgBlock = Memory.alloc(CFG.size);
  const nativeBlock = Memory.alloc(NATIVE.size);
  const blocksCount = Memory.alloc(8);
  const blocks = Memory.alloc(MAX_SYSCALL_BLOCKS * Process.pointerSize);
  const jsNativeFault = new NativeCallback(onNativeFault, 'void', ['uint', 'int']);
  const jsEnter = hotCallback(onEnter, 'void', ['int']);
  const jsExit = hotCallback(onExit, 'void', ['int']);
  const jsProcessExit = new NativeCallback(onProcessExit, 'void', ['int', 'int']);
  const cm = new CModule(SOURCE, {
    cfg: cfgBlock,
    fork_state: forkGuard().state,
    js_enter: jsEnter,
    js_exit: jsExit,
    js_process_exit: jsProcessExit,
    native_table: nativeBlock,
    js_native_fault: jsNativeFault,
    pthread_self_fn: Module.getGlobalExportByName('pthread_self'),
    sched_getcpu: Module.getGlobalExportByName('sched_getcpu'),
    syscall_blocks_count: blocksCount,
    syscall_blocks: blocks,
  });
  checkLayout(cm, 'syscall_filter_layout', [...THREAD_STATE_LAYOUT, ...NATIVE_LAYOUT]);
  new DataView(ArrayBuffer.wrap(cfgBlock, CFG.size)).setInt32(CFG.tidOffset, findTidOffset(), true);
  // Exclusive: the table is JS's to change while it holds the JS lock.
  const quiesce = new NativeFunction(cm.native_quiesce, 'void', [], { scheduling: 'exclusive' });
  const activate = new NativeFunction(cm.native_activate, 'void', [], { scheduling: 'exclusive' });
  return {
    transform: cm.transform,
    cfg: new Uint8Array(ArrayBuffer.wrap(cfgBlock, CFG.size)),
    cfgBlock,
    onProcessExit: cm.on_process_exit,
    native: nativeBlock,
    syscallBlocks(): NativePointer[] {
      const n = Math.min(blocksCount.readS32(), MAX_SYSCALL_BLOCKS);
      const out: NativePointer[] = [];
      for (let i = 0; i < n; i++) {
        const p = blocks.add(i * Process.pointerSize).readPointer();
        if (!p.isNull()) out.push(p);
      }
      return out;
    },
    quiesce: () => void quiesce(),
    activate: () => void activate(),
    keepAlive: [cm, cfgBlock, nativeBlock, blocksCount, blocks, jsEnter, jsExit, jsProcessExit, jsNativeFault],
  };
}

/**
 * Where glibc keeps the thread id in struct pthread (0x2d0 on current x86-64 glibc): the
 * first 32-bit slot after the TCB header that holds this thread's id. 0 (check disabled)
 * when not found.
 */
export function findTidOffset(): number {
  const self = new NativeFunction(Module.getGlobalExportByName('pthread_self'), 'pointer', [])();
  const tid = Process.getCurrentThreadId();
  for (let off = 0x40; off < 0x800; off += 4) {
    if (self.add(off).readS32() === tid) return off;
  }
  return 0;
}
