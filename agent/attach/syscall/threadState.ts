// Per-thread native state shared between the C callouts (agent/cmodules/syscallFilter.c) and JS. Each
// followed thread gets its own block, passed as the callouts' user data, because callouts
// of different threads run concurrently and only the call into JS is serialised.
// The two records are already in the kernel's tracepoint layout, so JS copies them into
// the VM's context area as they are.

import type { ExpectedLayout } from '../../cmodules/checkLayout.js';
import type { HitInfo } from '../../runtime/AttachImpl.js';

/** struct trace_event_raw_sys_enter: trace_entry (8) + long id + unsigned long args[6]. */
export const ENTER_CTX_LEN = 64;
/** struct trace_event_raw_sys_exit: trace_entry (8) + long id + long ret. */
export const EXIT_CTX_LEN = 24;

/** Byte offsets inside the block; the C struct ThreadState (syscallThreadState.h) must match. */
export const TS = {
  enter: 0,
  exit: 64,
  nr: 88,
  overrideSet: 96,
  overrideValue: 104,
  slot: 112,
  tid: 116,
  /** CPU the callout ran on, taken in C just before entering JS. */
  cpu: 120,
  /** gint32, 1 between the enter and exit callouts: the thread is inside a syscall. */
  inSyscall: 124,
  /** rip (the syscall instruction), rsp and rbp at the syscall, taken with cpu (stack helpers). */
  userIp: 128,
  userSp: 136,
  userBp: 144,
  size: 152,
} as const;

/** thread_state_layout's order (agent/cmodules/syscallThreadState.h): the C struct ThreadState must match TS. */
export const THREAD_STATE_LAYOUT: ExpectedLayout = [
  ['sizeof (EnterRecord)', ENTER_CTX_LEN],
  ['sizeof (ExitRecord)', EXIT_CTX_LEN],
  ['ThreadState.enter', TS.enter],
  ['ThreadState.exit', TS.exit],
  ['ThreadState.nr', TS.nr],
  ['ThreadState.override_set', TS.overrideSet],
  ['ThreadState.override_value', TS.overrideValue],
  ['ThreadState.slot', TS.slot],
  ['ThreadState.tid', TS.tid],
  ['ThreadState.cpu', TS.cpu],
  ['ThreadState.in_syscall', TS.inSyscall],
  ['ThreadState.user_ip', TS.userIp],
  ['ThreadState.user_sp', TS.userSp],
  ['ThreadState.user_bp', TS.userBp],
  ['sizeof (ThreadState)', TS.size],
];

/** The hit descriptor a thread's syscalls reuse (see SyscallAttachImpl.run). */
export interface SyscallHit extends HitInfo {
  overridden: boolean;
  value: bigint;
}

export class ThreadState {
  hit: SyscallHit | null = null;
  /** Keeps the native block alive (Memory.alloc frees it when the handle is collected). */
  readonly block: NativePointer;
  readonly view: DataView;
  readonly enterBytes: Uint8Array;
  readonly exitBytes: Uint8Array;

  constructor(
    readonly slot: number,
    readonly tid: number,
  ) {
    this.block = Memory.alloc(TS.size);
    const buf = ArrayBuffer.wrap(this.block, TS.size);
    this.view = new DataView(buf);
    this.enterBytes = new Uint8Array(buf, TS.enter, ENTER_CTX_LEN);
    this.exitBytes = new Uint8Array(buf, TS.exit, EXIT_CTX_LEN);
    this.view.setInt32(TS.slot, slot, true);
    this.view.setInt32(TS.tid, tid, true);
  }

  /** The CPU the C callout recorded, or undefined when the record was filled from JS. */
  cpu(): number | undefined {
    const cpu = this.view.getInt32(TS.cpu, true);
    return cpu >= 0 ? cpu : undefined;
  }

  /** The registers a user-stack walk starts from, as the C callout saw them (bpf_get_stack). */
  userRegs(): { ip: bigint; sp: bigint; bp: bigint } {
    return { ip: this.view.getBigUint64(TS.userIp, true), sp: this.view.getBigUint64(TS.userSp, true), bp: this.view.getBigUint64(TS.userBp, true) };
  }

  /** Whether the thread is inside a syscall it entered under Stalker (it returns through our code). */
  inSyscall(): boolean {
    return this.view.getInt32(TS.inSyscall, true) !== 0;
  }

  /** The syscall number seen at entry (rax before the `syscall`). */
  nr(): number {
    return Number(this.view.getBigInt64(TS.nr, true));
  }

  /** Fills the enter record from JS, for syscalls reported without a callout (process exit). */
  fillEnter(nr: number, args: readonly bigint[]): void {
    this.view.setInt32(TS.enter + 4, this.tid, true);
    this.view.setBigInt64(TS.enter + 8, BigInt(nr), true);
    for (let i = 0; i < 6; i++) this.view.setBigUint64(TS.enter + 16 + 8 * i, BigInt.asUintN(64, args[i] ?? 0n), true);
    this.view.setBigInt64(TS.nr, BigInt(nr), true);
    this.view.setInt32(TS.cpu, -1, true);
  }

  /** Makes the C exit callout put `value` in rax (the enter callout already skipped the syscall). */
  setOverride(value: bigint): void {
    this.view.setBigInt64(TS.overrideValue, BigInt.asIntN(64, value), true);
    this.view.setBigInt64(TS.overrideSet, 1n, true);
  }
}
