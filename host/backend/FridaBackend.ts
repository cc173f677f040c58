// The only host-side door to Frida. Two implementations: the Python sidecar (works
// wherever the PyPI wheel installs) and the npm `frida` binding (when it is installed).

export interface ProcessInfo {
  pid: number;
  name: string;
}

export interface SpawnOptions {
  argv: string[];
  /** Laid over the current environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** 'inherit': the child writes straight to our stdout/stderr; 'pipe': its output arrives as 'output' events. */
  stdio: 'inherit' | 'pipe';
}

export type ScriptRuntime = 'v8' | 'qjs';

export type DetachReason =
  | 'application-requested'
  | 'process-replaced'
  | 'process-terminated'
  | 'connection-terminated'
  | 'device-lost'
  | string;

export interface CrashInfo {
  summary: string;
  report: string;
}

export interface ScriptMessage {
  type: 'send' | 'error' | string;
  payload?: unknown;
  description?: string;
  stack?: string;
}

export interface FridaScript {
  load(): Promise<void>;
  unload(): Promise<void>;
  /** Keeps the script (and so Frida's agent) resident forever instead of tearing it down. */
  eternalize(): Promise<void>;
  post(message: unknown, data?: Buffer): Promise<void>;
  /** Calls rpc.exports[method](...args) in the agent; rejects with the agent's error message. */
  call<T = unknown>(method: string, args?: unknown[]): Promise<T>;
  onMessage(handler: (message: ScriptMessage, data: Buffer | null) => void): void;
  onLog(handler: (level: string, text: string) => void): void;
  onDestroyed(handler: () => void): void;
}

export interface FridaSession {
  readonly pid: number;
  createScript(source: string, opts: { runtime: ScriptRuntime; name?: string }): Promise<FridaScript>;
  detach(): Promise<void>;
  onDetached(handler: (reason: DetachReason, crash: CrashInfo | null) => void): void;
}

/** Where a sidecar shares a target with later CLIs (targetLock.ts), and the claim it removes when done. */
export interface ShareSpec {
  socket: string;
  claim: string;
}

export interface FridaBackend {
  readonly name: string;
  readonly fridaVersion: string;
  enumerateProcesses(): Promise<ProcessInfo[]>;
  getProcess(pid: number): Promise<ProcessInfo | null>;
  spawn(opts: SpawnOptions): Promise<number>;
  resume(pid: number): Promise<void>;
  kill(pid: number): Promise<void>;
  attach(pid: number, share?: ShareSpec): Promise<FridaSession>;
  /**
   * Backends that can serve a target to other bpftime-ts CLIs (the sidecar): the process
   * that owns the Frida runtime in the target, and how a later CLI joins it.
   */
  readonly canShare?: boolean;
  readonly sidecarPid?: number;
  join?(socketPath: string, pid: number): Promise<FridaSession>;
  /** Output of children spawned with stdio 'pipe'. */
  onOutput(handler: (pid: number, fd: number, data: Buffer) => void): void;
  /** The backend itself died (sidecar crash, device lost): every pending call has been rejected. */
  onLost(handler: (why: string) => void): void;
  close(): Promise<void>;
}

/** Why a backend call failed, so the CLI can pick a message and exit status. */
export type BackendErrorCode =
  | 'process-not-found'
  | 'permission-denied'
  | 'executable-not-found'
  | 'rpc'
  | 'frida'
  | 'lost'
  | 'protocol'
  | 'internal'
  | 'unavailable';

export class BackendError extends Error {
  constructor(
    message: string,
    readonly code: BackendErrorCode,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}
