import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as readline from 'readline';
import { sidecarScript, venvPython } from '../paths';
import { withTimeout } from '../withTimeout';
import { SidecarEvent, SidecarProtocol } from './sidecarProtocol';
import {
  BackendError,
  CrashInfo,
  DetachReason,
  FridaBackend,
  FridaScript,
  FridaSession,
  ProcessInfo,
  ScriptMessage,
  ScriptRuntime,
  ShareSpec,
  SpawnOptions,
} from './FridaBackend';

/** A descriptor we can hand to the sidecar only if it is open in this process. */
function openFd(fd: number): number | 'ignore' {
  try {
    fs.fstatSync(fd);
    return fd;
  } catch {
    return 'ignore';
  }
}

/**
 * Drives Frida through `.venv/bin/python frida_sidecar.py`, speaking JSON lines on its
 * stdin/stdout. See the sidecar's docstring for why fds 3–5 carry our own stdio.
 */
export class SidecarBackend implements FridaBackend {
  readonly name = 'python-sidecar';
  fridaVersion = '';
  private child!: ChildProcess;
  private readonly proto: SidecarProtocol;
  /** Set once our sidecar serves a target to other CLIs: it may outlive us (close()). */
  private sharing = false;
  private outputHandlers: ((pid: number, fd: number, data: Buffer) => void)[] = [];
  private lostHandlers: ((why: string) => void)[] = [];
  private stderrTail: string[] = [];
  /** Set by the first close(); every later one returns it. */
  private closed: Promise<void> | null = null;
  private readonly guestConnections: net.Socket[] = [];

  private constructor(private readonly verbose: boolean) {
    this.proto = new SidecarProtocol((line) => this.child.stdin!.write(line), verbose);
    this.proto.on('output', (ev) => {
      const data = Buffer.from(String(ev.data ?? ''), 'base64');
      for (const h of this.outputHandlers) h(Number(ev.pid), Number(ev.fd), data);
    });
    this.proto.on('device-lost', () => this.markLost('the Frida device was lost'));
  }

  /** Our sidecar's pid: the owner named in a shared target's claim. */
  get sidecarPid(): number {
    return this.child.pid ?? 0;
  }

  static async start(opts: { verbose?: boolean; python?: string } = {}): Promise<SidecarBackend> {
    const backend = new SidecarBackend(!!opts.verbose);
    await backend.launch(opts.python ?? venvPython());
    return backend;
  }

  private launch(python: string): Promise<void> {
    if (!fs.existsSync(python)) {
      return Promise.reject(
        new BackendError(`Frida's Python runtime is not installed (${python} missing); run \`npm run setup\``, 'unavailable'),
      );
    }
    this.child = spawn(python, ['-u', sidecarScript()], {
      stdio: ['pipe', 'pipe', 'pipe', openFd(1), openFd(0), openFd(2)],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    const lines = readline.createInterface({ input: this.child.stdout! });
    lines.on('line', (line) => this.proto.onLine(line));
    readline.createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
      if (this.verbose) process.stderr.write(`[sidecar] ${line}\n`);
    });
    // Our end of the pipes must not keep Node alive once everything else is done.
    this.child.stdin!.on('error', () => undefined);

    return new Promise((resolve, reject) => {
      const onReady = (ev: SidecarEvent) => {
        this.fridaVersion = String(ev.frida);
        resolve();
      };
      this.proto.once('ready', onReady);
      this.child.on('error', (err) => reject(new BackendError(`cannot start the Frida sidecar: ${err.message}`, 'unavailable')));
      this.child.on('exit', (code, signal) => {
        const why =
          `the Frida sidecar exited unexpectedly (${signal ? `signal ${signal}` : `status ${code}`})` +
          (this.stderrTail.length ? `: ${this.stderrTail[this.stderrTail.length - 1]}` : '');
        if (!this.isClosing) reject(new BackendError(why, 'lost'));
        this.markLost(this.isClosing ? 'the Frida sidecar has been closed' : why);
      });
    });
  }

  /** One of our streams (our sidecar's, or a joined session's) is gone: its requests fail, the session ends. */
  private markLost(why: string, proto: SidecarProtocol = this.proto): void {
    if (proto.markLost(why) && !this.isClosing) for (const h of this.lostHandlers) h(why);
  }

  request<T>(op: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.proto.request<T>(op, params);
  }

  on(event: string, handler: (ev: SidecarEvent) => void): () => void {
    return this.proto.on(event, handler);
  }

  enumerateProcesses(): Promise<ProcessInfo[]> {
    return this.request('enumerate_processes');
  }

  getProcess(pid: number): Promise<ProcessInfo | null> {
    return this.request('get_process', { pid });
  }

  spawn(opts: SpawnOptions): Promise<number> {
    return this.request('spawn', { argv: opts.argv, env: opts.env, cwd: opts.cwd, stdio: opts.stdio });
  }

  async resume(pid: number): Promise<void> {
    await this.request('resume', { pid });
  }

  async kill(pid: number): Promise<void> {
    await this.request('kill', { pid });
  }

  async attach(pid: number, share?: ShareSpec): Promise<FridaSession> {
    const { session } = await this.request<{ session: number }>('attach', { pid, share });
    if (share) this.sharing = true;
    return new SidecarSession(this.proto, session, pid);
  }

  get canShare(): boolean {
    return true;
  }

  /**
   * A session on the Frida runtime that another bpftime-ts's sidecar already has in `pid`,
   * through the socket it shares the target on. The connection is this session's: closing
   * it (or our exit) detaches the session there.
   */
  async join(socketPath: string, pid: number): Promise<FridaSession> {
    const conn = net.connect(socketPath);
    const proto = new SidecarProtocol((line) => conn.write(line), this.verbose);
    const failed = new Promise<never>((_resolve, reject) => {
      conn.once('error', (e) => reject(new BackendError(`cannot join the session sharing pid ${pid}: ${e.message}`, 'unavailable')));
    });
    failed.catch(() => undefined); // an error after we joined: 'close' reports the loss
    conn.on('error', () => undefined);
    const lines = readline.createInterface({ input: conn });
    lines.on('error', () => undefined);
    lines.on('line', (line) => proto.onLine(line));
    await Promise.race([new Promise<void>((resolve) => proto.once('ready', () => resolve())), failed]);
    conn.on('close', () => this.markLost(`lost the bpftime-ts sharing pid ${pid}`, proto));
    this.guestConnections.push(conn);
    const { session } = await proto.request<{ session: number }>('attach', { pid });
    return new SidecarSession(proto, session, pid);
  }

  onOutput(handler: (pid: number, fd: number, data: Buffer) => void): void {
    this.outputHandlers.push(handler);
  }

  onLost(handler: (why: string) => void): void {
    this.lostHandlers.push(handler);
  }

  /** Closes once; a second call waits for the first (the CLI closes early, then in finally). */
  close(): Promise<void> {
    this.closed ??= this.closeOnce();
    return this.closed;
  }

  /** Whether close() was called: a sidecar that ends after that is not lost, only closed. */
  private get isClosing(): boolean {
    return this.closed !== null;
  }

  private async closeOnce(): Promise<void> {
    for (const c of this.guestConnections) {
      c.end();
      c.unref(); // the other sidecar closes its end; we need not wait for it
    }
    if (!this.proto.lost) {
      await withTimeout(this.request('shutdown').catch(() => undefined), 3000);
    }
    this.child.stdin!.end();
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    await withTimeout(exited, 3000);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.sharing) {
      // Still serving other CLIs on the target we shared: it leaves when the last one does.
      this.child.unref();
      for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) (stream as { destroy?: () => void } | null)?.destroy?.();
      return;
    }
    this.child.kill('SIGKILL');
  }
}


class SidecarSession implements FridaSession {
  constructor(
    private readonly backend: SidecarProtocol,
    private readonly id: number,
    readonly pid: number,
  ) {}

  async createScript(source: string, opts: { runtime: ScriptRuntime; name?: string }): Promise<FridaScript> {
    const { script } = await this.backend.request<{ script: number }>('create_script', {
      session: this.id,
      source,
      runtime: opts.runtime,
      name: opts.name,
    });
    return new SidecarScript(this.backend, script);
  }

  async detach(): Promise<void> {
    await this.backend.request('detach', { session: this.id });
  }

  onDetached(handler: (reason: DetachReason, crash: CrashInfo | null) => void): void {
    this.backend.on('detached', (ev) => {
      if (ev.session === this.id) handler(String(ev.reason), (ev.crash as CrashInfo | null) ?? null);
    });
  }
}

class SidecarScript implements FridaScript {
  constructor(
    private readonly backend: SidecarProtocol,
    private readonly id: number,
  ) {}

  async load(): Promise<void> {
    await this.backend.request('load_script', { script: this.id });
  }

  async unload(): Promise<void> {
    await this.backend.request('unload_script', { script: this.id });
  }

  async eternalize(): Promise<void> {
    await this.backend.request('eternalize_script', { script: this.id });
  }

  async post(message: unknown, data?: Buffer): Promise<void> {
    await this.backend.request('post', { script: this.id, message, data: data?.toString('base64') });
  }

  async call<T>(method: string, args: unknown[] = []): Promise<T> {
    const res = await this.backend.request<{ value: T }>('rpc', { script: this.id, method, args });
    return res.value;
  }

  onMessage(handler: (message: ScriptMessage, data: Buffer | null) => void): void {
    this.backend.on('message', (ev) => {
      if (ev.script !== this.id) return;
      handler(ev.message as ScriptMessage, ev.data ? Buffer.from(String(ev.data), 'base64') : null);
    });
  }

  onLog(handler: (level: string, text: string) => void): void {
    this.backend.on('log', (ev) => {
      if (ev.script === this.id) handler(String(ev.level), String(ev.text));
    });
  }

  onDestroyed(handler: () => void): void {
    this.backend.on('destroyed', (ev) => {
      if (ev.script === this.id) handler();
    });
  }
}
