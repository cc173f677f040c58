// The native program dispatch shared by both syscall mechanisms (the Stalker callouts in
// syscallFilter.ts and the rewritten sites' handlers in rewrite/rewriteHandlers.ts): a
// table, filled by SyscallAttachImpl, of the programs each syscall runs without entering
// JS, and the C that runs them through the VM (agent/cmodules/syscallNativeTable.h and
// syscallNativeDispatch.h, which both modules include). Both CModules are given the same table
// block, so one quiesce/activate (and one inflight count) covers both.

import { SYSCALL_SLOTS } from '../../../protocol/syscalls.js';
import type { ExpectedLayout } from '../../cmodules/checkLayout.js';

/** Programs per syscall (and for the raw set) that the native path runs; more go through JS. */
export const NATIVE_MAX_PROGS = 8;
/**
 * Layout of the native run table (mirrors NativeTable in syscallNativeTable.h): run fn, ctx VM
 * address, enabled-bytes pointer, active, inflight, the VM's thread-in-run fn; then progs[2][SLOTS + 1][MAX] (handle
 * + 1, 0 ends a list; index SLOTS is the raw set), then nativeOnly[2][SLOTS].
 */
export const NATIVE = {
  run: 0,
  ctxAddr: 8,
  enabled: 16,
  active: 24,
  inflight: 28,
  inRun: 32,
  progs: 40,
  nativeOnly: 40 + 2 * (SYSCALL_SLOTS + 1) * NATIVE_MAX_PROGS * 2,
  size: 40 + 2 * (SYSCALL_SLOTS + 1) * NATIVE_MAX_PROGS * 2 + 2 * SYSCALL_SLOTS,
} as const;

/** native_table_layout's order (agent/cmodules/syscallNativeTable.h): NativeTable must match NATIVE. */
export const NATIVE_LAYOUT: ExpectedLayout = [
  ['NativeTable.run', NATIVE.run],
  ['NativeTable.ctx_addr', NATIVE.ctxAddr],
  ['NativeTable.enabled', NATIVE.enabled],
  ['NativeTable.active', NATIVE.active],
  ['NativeTable.inflight', NATIVE.inflight],
  ['NativeTable.in_run', NATIVE.inRun],
  ['NativeTable.progs', NATIVE.progs],
  ['NativeTable.native_only', NATIVE.nativeOnly],
  ['sizeof (NativeTable)', NATIVE.size],
];
