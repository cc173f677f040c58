// One run against one target: resolve it, inject the agent, relay events, and detach on
// every exit path (normal end, signal, failure, target death). Nothing here prints; the
// CLI and host/output decide what the user sees.

import { EventEmitter } from 'events';
import * as fs from 'fs';
import { BackendError, FridaBackend, FridaScript, FridaSession } from '../backend/FridaBackend';
import { agentBundle } from '../paths';
import { withTimeout } from '../withTimeout';
import { agentClient, type AgentClient, type AgentMethod } from '../../protocol/agentClient';
import { AgentBatch, AgentEvent, AgentInfo, EXIT_ACK, FinalSnapshot, isAgentBatch } from '../../protocol/messages';
import { resolveProgram } from './resolveProgram';
import { SessionError } from './SessionError';
import { alive, claimSyscalls, TargetClaim } from './targetLock';
import { claimUsdt, refuseSyscallsBesideUsdt } from './int3Lock';

export { SessionError };

export type TargetSpec =
  | { kind: 'spawn'; argv: string[]; env?: Record<string, string>; cwd?: string; stdio?: 'inherit' | 'pipe' }
  | { kind: 'pid'; pid: number };

export interface SessionEnd {
  reason: string;
  /** Exit status when the target called exit(). */
  status: number | null;
  crash: string | null;
  /** Our side failed (sidecar died, connection dropped): the target's fate is unknown. */
  lost: boolean;
  /** The path the target execve()'d, when that is how it left us. */
  exec: string | null;
}

export interface SessionEvents {
  event: (event: AgentEvent) => void;
  dropped: (count: number) => void;
  /** The target is gone (or the backend died); `status` when the target exited normally. */
  ended: (why: SessionEnd) => void;
  log: (level: string, text: string) => void;
  output: (fd: number, data: Buffer) => void;
}

export declare interface Session {
  on<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): this;
  emit<E extends keyof SessionEvents>(event: E, ...args: Parameters<SessionEvents[E]>): boolean;
}

function explain(err: unknown, target: string): SessionError {
  if (err instanceof SessionError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof BackendError) {
    switch (err.code) {
      case 'process-not-found':
        return new SessionError(`${target}: no such process`, 'attach');
      case 'permission-denied':
        return new SessionError(`${target}: not allowed to attach (${message})`, 'attach');
      case 'executable-not-found':
        return new SessionError(`${target}: ${message}`, 'usage');
      case 'lost':
        return new SessionError(message, 'lost');
      default:
        return new SessionError(`${target}: ${message}`, 'attach');
    }
  }
  return new SessionError(`${target}: ${message}`, 'attach');
}

/** How long a detach waits for Frida to unload the agent's script (normally well under 100 ms; more on a loaded machine). */
const UNLOAD_WAIT_MS = 5000;

export class Session extends EventEmitter {
  pid = 0;
  info: AgentInfo | null = null;
  script: FridaScript | null = null;
  private fridaSession: FridaSession | null = null;
  /** This CLI's claim on the target: one Frida runtime per process (targetLock.ts). */
  private claim: TargetClaim | null = null;
  /** Held while this session's syscall tracepoints are attached (targetLock.ts). */
  private syscallLock: { close(): void } | null = null;
  private usdtMarker: { close(): void } | null = null;
  private spawned = false;
  private resumed = false;
  private exitStatus: number | null = null;
  /** The program the target execve()'d into, if it did (the agent went with the old one). */
  private execPath: string | null = null;
  private endedFlag = false;
  private endInfo: SessionEnd | null = null;
  private detaching: Promise<void> | null = null;
  /** What the agent said at detach, once its hooks were off (null if it could not answer). */
  finalSnapshot: FinalSnapshot | null = null;
  /** The wasm engine ran, so the script was eternalized: Frida's agent stays in the target. */
  agentResident = false;
  /** Ring-buffer/perf records received, by "object:map": the delivered count of each map. */
  readonly delivered = new Map<string, number>();
  /** The first uncaught agent exception before it answered ping: why it did not start. */
  private startupError: string | null = null;
  /** The agent's rpc.exports, typed by AgentRpc; calls reject with a SessionError. */
  readonly agent: AgentClient = agentClient((method, args) => this.callAgent(method, args));

  constructor(
    readonly backend: FridaBackend,
    readonly target: TargetSpec,
    /** The agent bundle to inject (tests inject broken ones). */
    private readonly bundle: string = agentBundle(),
  ) {
    super();
  }

  get label(): string {
    return this.target.kind === 'pid' ? `pid ${this.target.pid}` : this.target.argv[0];
  }

  get ended(): boolean {
    return this.endedFlag;
  }

  /** How the session ended, once it has (a detach we asked for ends it too). */
  get endInfoOrNull(): SessionEnd | null {
    return this.endInfo;
  }

  /** Spawns (suspended) or finds the target, injects the agent and checks it answers. */
  async start(): Promise<void> {
    const bundle = this.bundle;
    if (!fs.existsSync(bundle)) throw new SessionError(`agent bundle ${bundle} is missing; run \`npm run build\``, 'usage');
    try {
      if (this.target.kind === 'spawn') {
        const argv = [resolveProgram(this.target.argv[0], this.target.cwd), ...this.target.argv.slice(1)];
        this.backend.onOutput((pid, fd, data) => {
          if (pid === this.pid) this.emit('output', fd, data);
        });
        this.pid = await this.backend.spawn({
          argv,
          env: this.target.env,
          cwd: this.target.cwd,
          stdio: this.target.stdio ?? 'inherit',
        });
        this.spawned = true;
      } else {
        if (!Number.isInteger(this.target.pid) || this.target.pid <= 0 || !alive(this.target.pid)) {
          throw new SessionError(`pid ${this.target.pid}: no such process`, 'attach');
        }
        this.pid = this.target.pid;
      }
      const canShare = this.backend.canShare === true && this.backend.join !== undefined;
      this.backend.onLost((why) => this.end(why, null, true));
      // Join the bpftime-ts that owns the target, or own it; an owner that is just leaving
      // gives the target up, and we claim it again.
      for (let attempt = 0; this.fridaSession === null; attempt++) {
        this.claim = await TargetClaim.acquire(this.pid, { pid: canShare ? this.backend.sidecarPid! : process.pid, canShare });
        if (this.claim.joinSocket === null) {
          this.fridaSession = await this.backend.attach(this.pid, canShare ? { socket: this.claim.socket, claim: this.claim.file } : undefined);
          this.claim.shared = canShare;
        } else {
          this.fridaSession = await joinWhileOwned(this.backend, this.claim, this.pid, attempt >= 4);
        }
      }
      this.fridaSession.onDetached((reason, crash) => {
        const lost = reason === 'connection-terminated' || reason === 'device-lost';
        this.end(lost ? `lost the connection to ${this.label} (${reason})` : reason, crash ? crash.summary : null, lost);
      });
      const script = await this.fridaSession.createScript(fs.readFileSync(bundle, 'utf8'), {
        runtime: 'v8',
        name: 'bpftime-ts',
      });
      script.onMessage((message, _data) => this.onMessage(message));
      script.onLog((level, text) => this.emit('log', level, text));
      await script.load();
      this.script = script;
      this.info = await this.agent.ping();
    } catch (err) {
      await this.detach(); // undo whatever start() got to
      // "unable to find method 'ping'" only means the agent's top level threw: say what threw.
      if (this.startupError !== null) throw new SessionError(`${this.label}: the agent failed to start: ${this.startupError}`, 'attach');
      throw explain(err, this.label);
    }
  }

  private onMessage(message: { type: string; payload?: unknown; description?: string; stack?: string }): void {
    if (message.type === 'send' && isAgentBatch(message.payload)) {
      const batch = message.payload as AgentBatch;
      if (batch.dropped) this.emit('dropped', batch.dropped);
      for (const ev of batch.events) {
        if (ev.type === 'record') {
          const k = `${ev.object}:${ev.map}`;
          this.delivered.set(k, (this.delivered.get(k) ?? 0) + 1);
        }
        if (ev.type === 'exit' || ev.type === 'exec') {
          if (ev.type === 'exit') this.exitStatus = ev.status;
          else this.execPath = ev.path;
          void this.script?.post({ type: EXIT_ACK }).catch(() => undefined);
        }
        this.emit('event', ev);
      }
    } else if (message.type === 'error') {
      // An uncaught exception in the agent: a bug of ours, reported, never fatal to the target.
      if (this.info === null) this.startupError ??= message.description ?? 'unknown error';
      this.emit('log', 'error', `agent error: ${message.description ?? 'unknown'}`);
    }
  }

  private end(reason: string, crash: string | null, lost = false): void {
    if (this.endedFlag) return;
    this.endedFlag = true;
    this.endInfo = { reason, status: this.exitStatus, crash, lost, exec: this.execPath };
    this.emit('ended', this.endInfo);
  }

  private async callAgent(method: AgentMethod, args: unknown[]): Promise<unknown> {
    if (!this.script) throw new SessionError('the agent is not loaded', 'lost');
    try {
      return await this.script.call(method, args);
    } catch (err) {
      throw explain(err, this.label);
    }
  }

  /** Before syscall programs are loaded: refuses if another session traces this target's syscalls. */
  async claimSyscalls(): Promise<void> {
    refuseSyscallsBesideUsdt(this.pid);
    this.syscallLock ??= await claimSyscalls(this.pid);
  }

  /** Before USDT sites are hooked: refuses if another session traces this target's syscalls (int3Lock.ts). */
  async claimUsdt(): Promise<void> {
    // The plan was checked (runSession: refuseMixedPlan): syscalls of this session beside its USDT sites are rewritten ones.
    this.usdtMarker ??= await claimUsdt(this.pid, this.syscallLock !== null);
  }

  async resume(): Promise<void> {
    if (this.spawned && !this.resumed) {
      this.resumed = true;
      await this.backend.resume(this.pid);
    }
  }

  /** Resolves when the target has gone (exit, crash, or detach from its side). */
  waitForEnd(): Promise<SessionEnd> {
    return new Promise((resolve) => {
      if (this.endInfo) resolve(this.endInfo);
      else this.once('ended', resolve);
    });
  }

  /**
   * Removes every hook and leaves the target running. Safe to call more than once and
   * from signal handlers; errors past this point are not the user's to see.
   */
  detach(): Promise<void> {
    this.detaching ??= (async () => {
      let lingering = false;
      if (!this.endedFlag && this.script) {
        const res = await withTimeout(this.agent.detachAll().catch(() => undefined), 5000);
        this.finalSnapshot = res?.final ?? null;
        if (res?.keepResident) {
          // The hooks are gone; the idle script and Frida's agent stay in the target for good.
          await withTimeout(this.script.eternalize().catch(() => undefined), 5000);
          this.agentResident = true;
          this.claim?.markResident();
        }
        // Frida finishes an unload only once every thread has left Stalker's code; one
        // blocked in a syscall it entered while followed leaves when that call returns
        // (the agent said which). The hooks are off already: do not wait for it.
        const unloaded = this.agentResident ? true : await withTimeout(
          this.script.unload().then(
            () => true,
            () => true,
          ),
          (res?.blockedThreads ?? 0) > 0 ? 100 : UNLOAD_WAIT_MS,
        );
        lingering = unloaded === undefined;
      }
      if (this.fridaSession && !this.endedFlag) {
        await withTimeout(this.fridaSession.detach().catch(() => undefined), lingering ? 200 : 5000);
      }
      // A spawned target that never ran is ours to clean up; one that ran keeps running.
      if (this.spawned && !this.resumed && this.pid) {
        await withTimeout(this.backend.kill(this.pid).catch(() => undefined), 3000);
      }
      this.claim?.release();
      this.syscallLock?.close();
      this.usdtMarker?.close();
    })();
    return this.detaching;
  }
}

/**
 * Joins the session that shares `pid`. Its owner claims the target before it attaches and
 * listens only after, so a CLI started right after it may wait a moment; null once the
 * owner has gone (the caller claims the target again), the error itself on the last try.
 */
async function joinWhileOwned(backend: FridaBackend, claim: TargetClaim, pid: number, last: boolean): Promise<FridaSession | null> {
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      return await backend.join!(claim.joinSocket!, pid);
    } catch (e) {
      // Errors of the attach itself (no such process, permissions) are the answer.
      if (e instanceof BackendError && e.code !== 'unavailable' && e.code !== 'lost') throw e;
      if (!claim.ownerStillThere()) {
        if (last) throw e;
        return null;
      }
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
