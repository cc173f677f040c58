// One Frida runtime per traced process. Every bpftime-ts CLI drives its own Frida (its own
// sidecar or npm binding), and each injects its own copy of frida-agent. Two copies in one
// process each patch the same functions with their own Interceptor, one over the other; as
// soon as one of them restores "its" original bytes the other's trampolines are gone or
// restored over (measured: two CLIs on one pid killed the target 5 of 6 runs, whatever the
// detach order). Until sessions share one Frida runtime, a second session is refused with
// one clear line before anything is injected, never a crash.
//
// The claim is a file per target (pid + start time, so a reused pid is another target)
// created with O_EXCL, holding the CLI's pid; a claim whose owner is gone is stale and
// taken over. A foreign Frida agent (frida, frida-trace, another checkout) is seen in
// /proc/PID/maps; one that is still being unmapped after a detach gets a moment to go.

import * as fs from 'fs';
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A Frida agent mapped in `pid` (ours from an earlier session, or another tool's). */
export function fridaAgentMapped(pid: number): boolean {
  try {
    return /frida-agent/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return false;
  }
}

export function claimDir(): string {
  return process.env.BPFTIME_TS_CLAIM_DIR ?? path.join(os.tmpdir(), 'bpftime-ts-claims');
}

export class TargetClaim {
  private constructor(private readonly file: string) {}

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
   * Claims `pid` for this process, or throws the SessionError the CLI shows (exit 3).
   * Waits for the agent of a session that just ended to leave; refuses a live one.
   */
  static async acquire(pid: number): Promise<TargetClaim> {
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
        fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 3) throw claimError(pid, e);
        const owner = Number.parseInt(readOr(file, ''), 10);
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
          throw new SessionError(
            `pid ${pid}: already traced by another bpftime-ts (pid ${owner}); one session per process — ` +
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
    const claim = new TargetClaim(file);
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

  /** Gives the target up; safe to call more than once. */
  release(): void {
    try {
      if (readOr(this.file, '').trim() === String(process.pid)) fs.unlinkSync(this.file);
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
