import {
  BackendError,
  BackendErrorCode,
  CrashInfo,
  DetachReason,
  FridaBackend,
  FridaScript,
  FridaSession,
  ProcessInfo,
  ScriptMessage,
  ScriptRuntime,
  SpawnOptions,
} from './FridaBackend';

// The npm binding's types are not a dependency (it does not install here), so the small
// surface we use is described structurally.
interface Signal<F extends (...args: never[]) => void> {
  connect(handler: F): void;
}
interface NpmScript {
  load(): Promise<void>;
  unload(): Promise<void>;
  eternalize(): Promise<void>;
  post(message: unknown, data?: Buffer | null): void;
  exports: Record<string, (...args: unknown[]) => Promise<unknown>>;
  message: Signal<(message: ScriptMessage, data: Buffer | null) => void>;
  destroyed: Signal<() => void>;
  logHandler: (level: string, text: string) => void;
}
interface NpmSession {
  pid: number;
  createScript(source: string, opts: { name?: string; runtime?: unknown }): Promise<NpmScript>;
  detach(): Promise<void>;
  detached: Signal<(reason: string, crash: CrashInfo | null) => void>;
}
interface NpmDevice {
  enumerateProcesses(): Promise<ProcessInfo[]>;
  spawn(argv: string[], opts: { env?: Record<string, string>; cwd?: string; stdio?: string }): Promise<number>;
  resume(pid: number): Promise<void>;
  kill(pid: number): Promise<void>;
  attach(pid: number): Promise<NpmSession>;
  output: Signal<(pid: number, fd: number, data: Buffer) => void>;
  lost: Signal<() => void>;
}
interface NpmFrida {
  getLocalDevice(): Promise<NpmDevice>;
  ScriptRuntime: { V8: unknown; QJS: unknown };
}

/** Maps the binding's error messages to our codes; its error classes are not exported as such. */
function classify(err: unknown): BackendError {
  const message = err instanceof Error ? err.message : String(err);
  let code: BackendErrorCode = 'frida';
  if (/unable to find process|process not found/i.test(message)) code = 'process-not-found';
  else if (/permission|not permitted|system restrictions/i.test(message)) code = 'permission-denied';
  else if (/unable to find executable|no such file/i.test(message)) code = 'executable-not-found';
  return new BackendError(message, code);
}

async function wrap<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw classify(err);
  }
}

/** Drives Frida in-process through the npm `frida` binding, where it installs. */
export class NpmFridaBackend implements FridaBackend {
  readonly name = 'npm-frida';
  private lostHandlers: ((why: string) => void)[] = [];

  private constructor(
    private readonly frida: NpmFrida,
    private readonly device: NpmDevice,
    readonly fridaVersion: string,
  ) {
    device.lost.connect(() => this.lostHandlers.forEach((h) => h('the Frida device was lost')));
  }

  /** Null when the binding is not installed. */
  static async tryStart(): Promise<NpmFridaBackend | null> {
    let frida: NpmFrida;
    let version = 'unknown';
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      frida = require('frida') as NpmFrida;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      version = (require('frida/package.json') as { version: string }).version;
    } catch {
      return null;
    }
    return new NpmFridaBackend(frida, await frida.getLocalDevice(), version);
  }

  enumerateProcesses(): Promise<ProcessInfo[]> {
    return wrap(this.device.enumerateProcesses()).then((ps) => ps.map((p) => ({ pid: p.pid, name: p.name })));
  }

  async getProcess(pid: number): Promise<ProcessInfo | null> {
    return (await this.enumerateProcesses()).find((p) => p.pid === pid) ?? null;
  }

  spawn(opts: SpawnOptions): Promise<number> {
    return wrap(this.device.spawn(opts.argv, { env: opts.env, cwd: opts.cwd, stdio: opts.stdio }));
  }

  resume(pid: number): Promise<void> {
    return wrap(this.device.resume(pid));
  }

  kill(pid: number): Promise<void> {
    return wrap(this.device.kill(pid));
  }

  async attach(pid: number): Promise<FridaSession> {
    const session = await wrap(this.device.attach(pid));
    return new NpmSessionAdapter(this.frida, session);
  }

  onOutput(handler: (pid: number, fd: number, data: Buffer) => void): void {
    this.device.output.connect(handler);
  }

  onLost(handler: (why: string) => void): void {
    this.lostHandlers.push(handler);
  }

  async close(): Promise<void> {
    // Sessions are detached by their owners; the binding keeps no process of its own.
  }
}

class NpmSessionAdapter implements FridaSession {
  constructor(
    private readonly frida: NpmFrida,
    private readonly session: NpmSession,
  ) {}

  get pid(): number {
    return this.session.pid;
  }

  async createScript(source: string, opts: { runtime: ScriptRuntime; name?: string }): Promise<FridaScript> {
    const runtime = opts.runtime === 'v8' ? this.frida.ScriptRuntime.V8 : this.frida.ScriptRuntime.QJS;
    return new NpmScriptAdapter(await wrap(this.session.createScript(source, { name: opts.name, runtime })));
  }

  detach(): Promise<void> {
    return wrap(this.session.detach());
  }

  onDetached(handler: (reason: DetachReason, crash: CrashInfo | null) => void): void {
    this.session.detached.connect((reason, crash) => handler(reason, crash));
  }
}

class NpmScriptAdapter implements FridaScript {
  constructor(private readonly script: NpmScript) {}

  load(): Promise<void> {
    return wrap(this.script.load());
  }

  unload(): Promise<void> {
    return wrap(this.script.unload());
  }

  eternalize(): Promise<void> {
    return wrap(this.script.eternalize());
  }

  async post(message: unknown, data?: Buffer): Promise<void> {
    this.script.post(message, data ?? null);
  }

  async call<T>(method: string, args: unknown[] = []): Promise<T> {
    try {
      return (await this.script.exports[method](...args)) as T;
    } catch (err) {
      throw new BackendError(err instanceof Error ? err.message : String(err), 'rpc');
    }
  }

  onMessage(handler: (message: ScriptMessage, data: Buffer | null) => void): void {
    this.script.message.connect(handler);
  }

  onLog(handler: (level: string, text: string) => void): void {
    this.script.logHandler = handler;
  }

  onDestroyed(handler: () => void): void {
    this.script.destroyed.connect(handler);
  }
}
