// Per-run state: what a helper may need to know about the program run in progress.
// The runtime fills it before each run; attach implementations add what only they know
// (function address, override hook). Runs never nest (one JS lock), so one instance is
// reused for every run instead of allocating per hit.

export interface RunContext {
  /** Object index and program name, for faults and printk attribution. */
  object: number;
  program: string;
  /** VM address and length of the context (pt_regs, tracepoint record). */
  ctxAddr: number;
  ctxLen: number;
  /** Thread that hit the hook. */
  tid: number;
  /** CPU the hit ran on (sched_getcpu), fixed for the run so per-CPU maps stay consistent. */
  cpu: number;
  /** Address of the hooked function (bpf_get_func_ip). */
  funcIp: bigint;
  /** bpf_get_attach_cookie. */
  cookie: bigint;
  /**
   * Set by attach implementations that can honour bpf_override_return; null where the
   * helper must fail with -EINVAL (e.g. a plain uprobe).
   */
  override: ((value: bigint) => void) | null;
  /**
   * Whether the context is the hit's struct pt_regs (uprobes), from which stack helpers
   * walk the user stack; false where no registers are at hand (syscall tracepoints).
   */
  ctxIsPtRegs: boolean;
  /** The hit is at a function's first instruction: its frame is not set up, the caller's return address is at [sp]. */
  atFunctionEntry: boolean;
  /** Where the context is not pt_regs: the thread's registers, when the hook can tell them. */
  userRegs: (() => { ip: bigint; sp: bigint; bp: bigint }) | null;
}

export function emptyRunContext(): RunContext {
  return { object: 0, program: '', ctxAddr: 0, ctxLen: 0, tid: 0, cpu: 0, funcIp: 0n, cookie: 0n, override: null, ctxIsPtRegs: false, atFunctionEntry: false, userRegs: null };
}
