// The host↔agent protocol: the one definition both sides import.
// Host → agent goes through rpc.exports (request/response with errors);
// agent → host goes through send() as batched events, so a busy hook costs one
// message per batch rather than one per hit (the frida-tools tracer does the same).

import type { AttachSpec, ObjectSpec } from './spec.js';

/** What the agent reports about the runtime it landed in. */
export interface AgentInfo {
  pid: number;
  arch: string;
  runtime: string;
  fridaVersion: string;
  webAssembly: boolean;
  cmodule: boolean;
}

/** A place to hook: `binary:symbol` style description, resolved by the agent. */
export interface HookTarget {
  /** Module name or path (`libc.so.6`, `./victim`); absent = search the main program, then all modules. */
  module?: string;
  symbol?: string;
  offset?: number;
  address?: string;
}

/**
 * What became of one attach request. `attached`: the hook is in (`where`: the resolved
 * address in hex, or the implementation's own description of where it landed).
 * `pending`: the hook waits for a library the target has not loaded yet and lands when it
 * is loaded. `failed`: nothing was hooked, `error` says why.
 */
export type AttachResult =
  | { state: 'attached'; target: string; where?: string }
  | { state: 'pending'; target: string; waitingFor: string }
  | { state: 'failed'; target: string; error: string };

/** One map's contents as the host receives them (keys and values base64, raw bytes). */
export interface MapDump {
  object: number;
  map: number;
  name: string;
  /** Per-CPU maps give one value per CPU, in CPU order. */
  entries: { key: string; value: string | string[] }[];
  /** Stack-trace maps: each address in them (`0x...`) as the target symbolised it when dumped. */
  symbols?: Record<string, string>;
}

/** Per-program counters, for the stats line. */
export interface ProgramStats {
  object: number;
  program: string;
  hits: number;
  faults: number;
  /** Set when a fault disabled the program. */
  disabled?: string;
}

/** The runtime's view of one program to attach: which object, which program, and where. */
export interface ProgramLink {
  object: number;
  program: string;
  attach: AttachSpec;
  /** Opaque to the runtime; the uprobe implementation reads it back through bpf_get_attach_cookie. */
  cookie?: string;
}

/**
 * Which build of the interpreter runs programs in the target: the native one (a shared
 * library the agent loads from `library`, a path valid inside the target) or wasm.
 */
export type EngineSpec = { kind: 'native'; library: string } | { kind: 'wasm' };

/**
 * How uprobes hook functions: Frida's Interceptor, or the agent's own inline hooks
 * (agent/hooks: immortal stubs, any function, no teardown race), which fall back to the
 * Interceptor for what they cannot hook.
 */
export type HookMechanism = 'interceptor' | 'inline';
export const HOOK_MECHANISMS: readonly HookMechanism[] = ['interceptor', 'inline'];
export const DEFAULT_HOOK_MECHANISM: HookMechanism = 'inline';

export interface LoadRequest {
  engine: EngineSpec;
  /** Absent: DEFAULT_HOOK_MECHANISM. */
  hooks?: HookMechanism;
  objects: ObjectSpec[];
  links: ProgramLink[];
  /** Initial map contents set by the host (manifest `maps`/`rodata`), base64 keys and values. */
  mapInit: { object: number; map: number; key: string; value: string }[];
  /** Maximum events per batch before the agent flushes early. */
  batchSize?: number;
  /** Events the agent holds for the host before it drops (and counts) more; tests make it small. */
  queueCapacity?: number;
  /** How syscall tracepoints reach the syscalls (DEFAULT_SYSCALL_MECHANISM when not said). */
  syscalls?: SyscallMechanism;
}

/** How syscall tracepoints reach the syscalls: Stalker callouts or rewritten syscall sites. */
export type SyscallMechanism = 'rewrite' | 'stalker';
/** The mechanism when neither --syscalls nor the manifest says: the host and the agent both read it. */
export const DEFAULT_SYSCALL_MECHANISM: SyscallMechanism = 'rewrite';

export type AgentEvent =
  | { type: 'first-hit'; target: string; tid: number; hrtimeMs: number }
  | { type: 'printk'; tid: number; program: string; text: string }
  /** `timeMs`: wall clock (ms since the epoch) when the program produced it. */
  | { type: 'record'; object: number; map: number; cpu: number; data: string; timeMs?: number }
  | { type: 'fault'; object: number; program: string; pc: number; message: string }
  | { type: 'module-hooked'; module: string; results: AttachResult[] }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; text: string }
  /** Final state, sent when the target is about to exit (afterwards nobody can ask). */
  | ({ type: 'snapshot' } & FinalSnapshot)
  /** The target called exit()/_exit(): the only place its exit status can be seen from inside. */
  | { type: 'exit'; status: number }
  /** The target called execve(): the agent, hooks and maps go with the old program image. */
  | { type: 'exec'; path: string };

/** The payload of every agent send(): a batch of events. */
export interface AgentBatch {
  kind: 'bpftime-ts/events';
  events: AgentEvent[];
  /** Records dropped because the host-bound queue was full since the last batch. */
  dropped: number;
}

/** Message type the host posts to release a thread waiting in exit() (see agent/exitMonitor.ts). */
export const EXIT_ACK = 'bpftime-ts/exit-ack';

export function isAgentBatch(payload: unknown): payload is AgentBatch {
  return typeof payload === 'object' && payload !== null && (payload as { kind?: unknown }).kind === 'bpftime-ts/events';
}

/** Ring-buffer / perf-array records of one map: produced = delivered + dropped, exactly. */
export interface RecordStats {
  object: number;
  map: number;
  name: string;
  /** Records the programs emitted (output or submit) or tried to (a reservation that failed). */
  produced: number;
  /** Lost in the target: no room in the ring, or the host-bound queue was full. */
  dropped: number;
}

/** Everything the CLI prints at the end, taken after the hooks are off and before the VM goes. */
export interface FinalSnapshot {
  hitCounts: Record<string, number>;
  maps: MapDump[];
  stats: ProgramStats[];
  droppedRecords: number;
  pending: string[];
  records: RecordStats[];
}

export interface DetachResult {
  blockedThreads: number;
  /**
   * The wasm engine ran: unloading a V8 script that used WebAssembly crashes the target
   * (a use-after-free in Frida's V8 platform), so the host eternalizes it instead.
   */
  keepResident: boolean;
  /** Null when nothing was loaded. */
  final: FinalSnapshot | null;
}

/** The counters the agent reports while it runs. */
export interface AgentStats {
  programs: ProgramStats[];
  droppedRecords: number;
  /** Attach points still waiting for their library to be loaded. */
  pending: string[];
  records: RecordStats[];
}

/**
 * rpc.exports of the agent (agent/index.ts implements it); the host calls it through
 * AgentClient (protocol/agentClient.ts), which is derived from it.
 */
export interface AgentRpc {
  ping(): AgentInfo;
  /** Foundation-level hit counting on named functions (`--count`), no eBPF involved. */
  countHits(targets: HookTarget[]): AttachResult[];
  hitCounts(): Record<string, number>;
  /** Load objects and attach their programs; one result per link. */
  load(request: LoadRequest): AttachResult[];
  /** Map access while the target runs (keys/values base64). */
  mapLookup(object: number, map: number, key: string): string | string[] | null;
  mapUpdate(object: number, map: number, key: string, value: string, flags: number): number;
  mapDelete(object: number, map: number, key: string): number;
  mapDump(): MapDump[];
  stats(): AgentStats;
  /** Each address (hex) as stacks print it: `symbol+offset`, else `module+0xoffset`, else the address. */
  symbolize(addresses: string[]): string[];
  /**
   * Remove every hook this agent installed; idempotent. `blockedThreads`: threads still
   * inside a syscall they entered under Stalker; Frida unloads the agent only once they return.
   */
  detachAll(): DetachResult;
  /**
   * Points the target's `fds` at /dev/null (spawn --duration leaving a pipeline: the target
   * must not hold the pipe open after we are gone). Returns the fds it changed.
   */
  releaseStdio(fds: number[]): number[];
}
