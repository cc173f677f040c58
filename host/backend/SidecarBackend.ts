import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as readline from 'readline';
import { sidecarScript, venvPython } from '../paths';
import { withTimeout } from '../withTimeout';
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

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  op: string;
}

type SidecarEvent = { event: string; [k: string]: unknown };

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
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Map<string, Set<(ev: SidecarEvent) => void>>();
  private outputHandlers: ((pid: number, fd: number, data: Buffer) => void)[] = [];
  private lostHandlers: ((why: string) => void)[] = [];
  private stderrTail: string[] = [];
  private closing = false;
  private lostReason: string | null = null;

  private constructor(private readonly verbose: boolean) {}

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
    lines.on('line', (line) => this.onLine(line));
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
      this.once('ready', onReady);
      this.child.on('error', (err) => reject(new BackendError(`cannot start the Frida sidecar: ${err.message}`, 'unavailable')));
      this.child.on('exit', (code, signal) => {
        const why =
          `the Frida sidecar exited unexpectedly (${signal ? `signal ${signal}` : `status ${code}`})` +
          (this.stderrTail.length ? `: ${this.stderrTail[this.stderrTail.length - 1]}` : '');
        if (!this.closing) reject(new BackendError(why, 'lost'));
        this.markLost(this.closing ? 'the Frida sidecar has been closed' : why);
      });
    });
  }

  private markLost(why: string): void {
    if (this.lostReason) return;
    this.lostReason = why;
    for (const p of this.pending.values()) p.reject(new BackendError(why, 'lost'));
    this.pending.clear();
    if (!this.closing) for (const h of this.lostHandlers) h(why);
  }

  private onLine(line: string): void {
    let msg: { id?: number; ok?: boolean; result?: unknown; error?: string; code?: BackendErrorCode; event?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      if (this.verbose) process.stderr.write(`[sidecar] non-protocol line: ${line}\n`);
      return;
    }
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new BackendError(msg.error ?? `${p.op} failed`, msg.code ?? 'frida'));
      return;
    }
    if (typeof msg.event === 'string') {
      const ev = msg as SidecarEvent;
      if (ev.event === 'output') {
        const data = Buffer.from(String(ev.data ?? ''), 'base64');
        for (const h of this.outputHandlers) h(Number(ev.pid), Number(ev.fd), data);
      } else if (ev.event === 'device-lost') {
        this.markLost('the Frida device was lost');
      }
      for (const h of [...(this.listeners.get(ev.event) ?? [])]) h(ev);
    }
  }

  on(event: string, handler: (ev: SidecarEvent) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  private once(event: string, handler: (ev: SidecarEvent) => void): void {
    const off = this.on(event, (ev) => {
      off();
      handler(ev);
    });
  }

  request<T>(op: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.lostReason) return Promise.reject(new BackendError(this.lostReason, 'lost'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, op });
      this.child.stdin!.write(JSON.stringify({ id, op, ...params }) + '\n');
    });
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

  async attach(pid: number): Promise<FridaSession> {
    const { session } = await this.request<{ session: number }>('attach', { pid });
    return new SidecarSession(this, session, pid);
  }

  onOutput(handler: (pid: number, fd: number, data: Buffer) => void): void {
    this.outputHandlers.push(handler);
  }

  onLost(handler: (why: string) => void): void {
    this.lostHandlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.lostReason) {
      await withTimeout(this.request('shutdown').catch(() => undefined), 3000);
    }
    this.child.stdin!.end();
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    await withTimeout(exited, 3000);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}


class SidecarSession implements FridaSession {
  constructor(
    private readonly backend: SidecarBackend,
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
    private readonly backend: SidecarBackend,
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
