// The sidecar's line protocol (host/backend/sidecar/frida_sidecar.py): requests with ids,
// replies matched to them, events to listeners. One per stream: our own sidecar's pipes, or
// a connection to the sidecar of another bpftime-ts that shares its target with us.
import { BackendError, BackendErrorCode } from './FridaBackend';

export type SidecarEvent = { event: string; [k: string]: unknown };

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  op: string;
}

export class SidecarProtocol {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Map<string, Set<(ev: SidecarEvent) => void>>();
  private lostReason: string | null = null;

  constructor(
    private readonly write: (line: string) => void,
    private readonly verbose: boolean,
  ) {}

  get lost(): string | null {
    return this.lostReason;
  }

  /** Fails every request in flight and every later one with `why`; true the first time. */
  markLost(why: string): boolean {
    if (this.lostReason) return false;
    this.lostReason = why;
    for (const p of this.pending.values()) p.reject(new BackendError(why, 'lost'));
    this.pending.clear();
    return true;
  }

  onLine(line: string): void {
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
      for (const h of [...(this.listeners.get(ev.event) ?? [])]) h(ev);
    }
  }

  on(event: string, handler: (ev: SidecarEvent) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  once(event: string, handler: (ev: SidecarEvent) => void): void {
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
      this.write(JSON.stringify({ id, op, ...params }) + '\n');
    });
  }
}
