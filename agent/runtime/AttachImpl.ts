// The base attach interface, after bpftime's base_attach_impl: an implementation turns
// (run callback, private data, attach type) into a hook and hands back a local id; the
// runtime knows implementations only through this file.

import type { AttachSpec } from '../../protocol/spec.js';
import type { HookMechanism } from '../../protocol/messages.js';
import type { Helper } from '../../vm/ts/vm.js';

/** bpftime's attach type numbers, kept so ids in logs mean the same thing. */
export const ATTACH_TYPES = {
  syscall_tracepoint: 2,
  uprobe: 6,
  uretprobe: 7,
  uprobe_override: 1008,
} as const;
export type AttachType = keyof typeof ATTACH_TYPES;

/** Base of every implementation's private data: built once from the attach point description. */
export interface AttachPrivateData {
  /** What the user would call this attach point (`libc.so.6:malloc`, `sys_enter_openat`). */
  readonly description: string;
}

/** What a hook tells the runtime about one hit, beyond the context it wrote. */
export interface HitInfo {
  /** Context length in bytes (written at AttachServices.ctxAddr). */
  ctxLen: number;
  tid: number;
  funcIp: bigint;
  /** Present where bpf_override_return can take effect at this hook. */
  override: ((value: bigint) => void) | null;
  /** CPU of the hit when the hook already knows it (saves the runtime asking). */
  cpu?: number;
  /** Hooks whose context is not pt_regs (syscall tracepoints): the thread's registers, for stack helpers. */
  userRegs?: () => { ip: bigint; sp: bigint; bp: bigint };
}

/**
 * Runs the linked program once on the context the hook wrote; false when the program is
 * disabled (it faulted earlier, or just now). r0 is not returned: no attach type here
 * uses it (overrides go through bpf_override_return), and reading it costs a call.
 * `nativeHandle` is set when the program may also be run from native code through the
 * NativeRunner (it calls no helper that lives in JS).
 */
export type EbpfRunCallback = ((hit: HitInfo) => boolean) & {
  readonly nativeHandle?: number;
  /** The program calls bpf_override_return: a native run needs runWithOverride and a target. */
  readonly nativeOverride?: boolean;
};

/**
 * Running programs from a hook's native code, without entering JS (about 4 µs per entry):
 * only with the native engine, and only for callbacks that carry a nativeHandle.
 */
export interface NativeRunner {
  /** `int32 bpfvm_run_with_ctx(uint32 handle, uint64 ctxVaddr, const void *src, uint64 len)`: copies the context and runs, under the VM's run lock. */
  readonly run: NativePointer;
  /** `int32 bpfvm_run_with_override(handle, ctxVaddr, src, len, int64 *override)`: run, where bpf_override_return stores {1, value} at `override`. */
  readonly runWithOverride: NativePointer;
  /** `int32 bpfvm_thread_in_run(void)`: non-zero while the calling thread is inside a run (its helpers included). */
  readonly threadInRun: NativePointer;
  /** VM address of a context area only native runs use (they run one at a time). */
  readonly ctxAddr: number;
  /** One byte per program handle: non-zero while the program may run. */
  readonly enabled: NativePointer;
  /** A native run returned status `status`: call from JS on the thread that made the run. */
  fault(handle: number, status: number): void;
}

/** Runtime services an implementation may use; given once at registration. */
export interface AttachServices {
  /** VM address where hooks write the context before calling the run callback. */
  readonly ctxAddr: number;
  /**
   * A view over the context area (refetch per hit: VM memory may have been replaced), or
   * null once the runtime is detached. A hook must check it before writing anything: a
   * thread that was already inside the trampoline, waiting for the JS lock, runs its
   * callback after detach, when the VM's memory may be gone.
   */
  ctxView(): DataView | null;
  /** The context area's address in this process (same null rule as ctxView), for native fills. */
  ctxPtr(): NativePointer | null;
  /**
   * The native runner, or null (wasm engine, or detached). A hook that uses it must stop
   * before its detachById returns: the engine is unloaded right after.
   */
  nativeRunner(): NativeRunner | null;
  /** How uprobe-family hooks are made (the load request's `hooks`). */
  hookMechanism?(): HookMechanism;
  /** Tell the host something asynchronous happened (late attach of a dlopen'ed library, errors). */
  log(level: 'info' | 'warn' | 'error', text: string): void;
}

export class AttachError extends Error {}

export interface AttachImpl {
  readonly name: string;
  readonly attachTypes: readonly AttachType[];
  init(services: AttachServices): void;
  /** Throws AttachError naming what is wrong with the description. */
  createPrivateData(spec: AttachSpec, type: AttachType): AttachPrivateData;
  /**
   * Installs the hook; returns a local attach id. May defer the hook (a library not yet
   * loaded) and report through AttachServices.log when it lands. Throws AttachError.
   */
  createAttach(callback: EbpfRunCallback, data: AttachPrivateData, type: AttachType): number;
  detachById(id: number): void;
  /** Helpers only this implementation can provide. */
  registerCustomHelpers?(register: (id: number, name: string, fn: Helper) => void): void;
  /** Describes where an attach id actually landed (address), once installed. */
  describeAttach?(id: number): string | undefined;
  /** What a deferred attach id still waits for (a library's name); undefined once it is installed. */
  waitingFor?(id: number): string | undefined;
}

/** Which attach type a spec asks for. */
export function attachTypeOf(spec: AttachSpec): AttachType {
  if (spec.kind === 'syscall') return 'syscall_tracepoint';
  if (spec.kind === 'usdt') throw new AttachError(`USDT ${spec.provider}:${spec.name} reached the agent unresolved (the host turns it into uprobes)`);
  return spec.mode === 'entry' ? 'uprobe' : spec.mode === 'return' ? 'uretprobe' : 'uprobe_override';
}
