// One Frida runtime per traced process. Every bpftime-ts CLI drives its own Frida (its own
// sidecar or npm binding), and each injects its own copy of frida-agent. Two copies in one
// process each patch the same functions with their own Interceptor, one over the other; as
// soon as one of them restores "its" original bytes the other's trampolines are gone or
// restored over (measured: two CLIs on one pid killed the target 5 of 6 runs, whatever the
// detach order). One Frida runtime serves any number of sessions, though: so the first
// bpftime-ts on a target owns it, and its sidecar shares the runtime on a Unix socket;
// later CLIs join through that socket (SidecarBackend.join) and get sessions of their own
// on the same runtime. A backend that cannot share (the npm binding) refuses a second
// session with one clear line before anything is injected, never a crash.
//
// The claim is a file per target (pid + start time, so a reused pid is another target)
// created with O_EXCL, holding the owner's pid (the sharing sidecar, or the CLI) and the
// socket; a claim whose owner is gone is stale and taken over. A sharing sidecar removes
// its claim when its last client leaves. A foreign Frida agent (frida, frida-trace, another
// checkout) is seen in /proc/PID/maps; one still being unmapped after a detach gets a moment.

import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { SessionError } from './SessionError';

/** How long a Frida agent left by a finished session may take to leave the target. */
const AGENT_UNMAP_WAIT_MS = 3000;

function startTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The process exists (EPERM: it does, and is another user's). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A Frida agent mapped in `pid` (ours from an earlier session, or another tool's). */
export function fridaAgentMapped(pid: number): boolean {
  return agentImages(pid) > 0;
}

/** How many distinct Frida agent images `pid` has mapped (one per live agent; 0 if unreadable). */
export function agentImages(pid: number): number {
  let maps: string;
  try {
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return 0;
  }
  const inodes = new Set<string>();
  for (const line of maps.split('\n')) {
    if (!line.includes('frida-agent')) continue;
    const f = line.split(/\s+/);
    inodes.add(`${f[3]}:${f[4]}`); // device:inode, shared by the image's mappings
  }
  return inodes.size;
}

export function claimDir(): string {
  return process.env.BPFTIME_TS_CLAIM_DIR ?? path.join(os.tmpdir(), 'bpftime-ts-claims');
}

export interface ClaimOwner {
  /** The process whose life the claim follows: a sharing sidecar, or this CLI. */
  pid: number;
  canShare: boolean;
}

export class TargetClaim {
  /** Once the owner's sidecar shares the target, the claim is the sidecar's to remove. */
  shared = false;

  private constructor(
    readonly file: string,
    private readonly owner: number,
    /** Set when another bpftime-ts owns the target: join its session through this socket. */
    readonly joinSocket: string | null,
  ) {}

  /** For a joining claim: the owner named in it is still the owner, and alive. */
  ownerStillThere(): boolean {
    const [ownerText] = readOr(this.file, '').trim().split(' ');
    return ownerText === String(this.owner) && alive(this.owner);
  }

  /** Where the owner of this target shares it. */
  get socket(): string {
    return `${this.file}.sock`;
  }

  /**
   * Records that our idle agent stays in the target for good (an eternalized wasm-engine
   * script, Session.detach): the next session may attach beside it, since it hooks nothing.
   */
  markResident(): void {
    try {
      fs.writeFileSync(`${this.file}.resident`, `${process.pid}\n`);
    } catch {
      /* the next session then waits for the agent and refuses: safe */
    }
  }

  /**
   * Claims `pid` for `owner`, or finds the bpftime-ts that owns it and can share it, or
   * throws the SessionError the CLI shows (exit 3). Waits for the agent of a session that
   * just ended to leave; refuses a foreign one.
   */
  static async acquire(pid: number, owner: ClaimOwner = { pid: process.pid, canShare: false }): Promise<TargetClaim> {
    const started = startTime(pid);
    if (started === null) throw new SessionError(`pid ${pid}: no such process`, 'attach');
    const dir = claimDir();
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      try {
        fs.chmodSync(dir, 0o1777); // every user's sessions claim their targets here (umask aside)
      } catch {
        /* another user's directory: writable to us, or the claim below says so */
      }
    }
    const file = path.join(dir, `pid-${pid}-${started}`);
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(file, `${owner.pid}${owner.canShare ? ` ${file}.sock` : ''}\n`, { flag: 'wx', mode: 0o644 });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 3) throw claimError(pid, e);
        const [ownerText, socket] = readOr(file, '').trim().split(' ');
        const current = Number.parseInt(ownerText ?? '', 10);
        if (Number.isInteger(current) && current > 0 && current !== owner.pid && alive(current)) {
          if (socket && owner.canShare) return new TargetClaim(file, current, socket);
          throw new SessionError(
            `pid ${pid}: already traced by another bpftime-ts (pid ${current}); one session per process — ` +
              'stop that one first, or load several objects in one session (-o a.bpf.o -o b.bpf.o)',
            'attach',
          );
        }
        try {
          fs.unlinkSync(file); // stale: its owner died without releasing it
        } catch {
          /* someone else took it over first: try again */
        }
      }
    }
    const claim = new TargetClaim(file, owner.pid, null);
    const end = Date.now() + AGENT_UNMAP_WAIT_MS;
    const residentOk = fs.existsSync(`${file}.resident`);
    while (!residentOk && fridaAgentMapped(pid)) {
      if (Date.now() >= end) {
        claim.release();
        throw new SessionError(
          `pid ${pid}: another Frida agent is loaded in it (frida, frida-trace or another bpftime-ts checkout?); ` +
            'two Frida runtimes patching one process corrupt each other, so bpftime-ts does not attach',
          'attach',
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return claim;
  }

  /** Gives the target up (unless a sharing sidecar now holds it); safe to call more than once. */
  release(): void {
    if (this.joinSocket !== null || this.shared) return;
    try {
      if (readOr(this.file, '').trim().split(' ')[0] === String(this.owner)) fs.unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function claimError(pid: number, e: unknown): SessionError {
  return new SessionError(`pid ${pid}: cannot claim it in ${claimDir()}: ${(e as Error).message}`, 'attach');
}

/** A target as the locks name it: pid and start time (a reused pid is another target). */
export function targetKey(pid: number): string {
  return `${pid}-${startTime(pid) ?? 0}`;
}

/** The abstract socket the session tracing `pid`'s syscalls holds (claimSyscalls). */
export function syscallLockName(pid: number): string {
  return `\0bpftime-ts-syscalls-${targetKey(pid)}`;
}

/**
 * Syscall tracepoints cannot be shared between sessions in one process: each session's
 * agent would follow every thread with its own Stalker (or rewrite the same syscall sites),
 * and the second one kills the target (measured: 1 of 1). So the first session with syscall
 * programs holds a lock for the target: an abstract Unix socket (it exists only while this
 * CLI lives, so a crashed CLI never leaves it behind), and later ones are refused.
 */
export async function claimSyscalls(pid: number): Promise<net.Server> {
  const name = syscallLockName(pid);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EADDRINUSE') reject(new SessionError(`pid ${pid}: cannot lock its syscall tracepoints: ${e.message}`, 'attach'));
      else
        reject(
          new SessionError(
            `pid ${pid}: another bpftime-ts session traces its syscalls; syscall tracepoints cannot be shared between ` +
              'sessions (each thread is followed once) — stop that one first, or load both objects in one session (-o a.bpf.o -o b.bpf.o)',
            'attach',
          ),
        );
    });
    server.listen({ path: name }, () => resolve());
  });
  server.unref();
  return server;
}
