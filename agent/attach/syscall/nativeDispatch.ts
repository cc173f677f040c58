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
 * address, enabled-bytes pointer, active, inflight; then progs[2][SLOTS + 1][MAX] (handle
 * + 1, 0 ends a list; index SLOTS is the raw set), then nativeOnly[2][SLOTS].
 */
export const NATIVE = {
  run: 0,
  ctxAddr: 8,
  enabled: 16,
  active: 24,
  inflight: 28,
  progs: 32,
  nativeOnly: 32 + 2 * (SYSCALL_SLOTS + 1) * NATIVE_MAX_PROGS * 2,
  size: 32 + 2 * (SYSCALL_SLOTS + 1) * NATIVE_MAX_PROGS * 2 + 2 * SYSCALL_SLOTS,
} as const;

/** native_table_layout's order (agent/cmodules/syscallNativeTable.h): NativeTable must match NATIVE. */
export const NATIVE_LAYOUT: ExpectedLayout = [
  ['NativeTable.run', NATIVE.run],
  ['NativeTable.ctx_addr', NATIVE.ctxAddr],
  ['NativeTable.enabled', NATIVE.enabled],
  ['NativeTable.active', NATIVE.active],
  ['NativeTable.inflight', NATIVE.inflight],
  ['NativeTable.progs', NATIVE.progs],
  ['NativeTable.native_only', NATIVE.nativeOnly],
  ['sizeof (NativeTable)', NATIVE.size],
];
