// USDT sites are hooked with an int3, and syscall tracepoints follow every thread with
// Stalker: a followed thread that meets one of those int3s is killed (SIGTRAP: Stalker runs
// its copy of the int3, at a pc the trap handler does not know; reproduced with lc_usdt +
// lc_sys on the lifecycle victim). Under --syscalls rewrite the two work in one session
// (what killed the target there, SIGILL, was a syscall made inside a JS-path program's
// helper running a program: syscallNativeDispatch.h in_vm_run; test/e2e/lifecycle.test.ts).
// Refused, with one line: a plan with both on Stalker, before anything is injected; and
// across sessions whatever the mechanism (the other session's is not known here), through
// the syscall lock (targetLock.ts) and a marker every session with USDT sites holds while
// it lives.
// The marker is an abstract Unix socket per session (several USDT sessions may share a
// target), so a crashed CLI never leaves one behind; /proc/net/unix lists the live ones.

import * as fs from 'fs';
import * as net from 'net';
import { DEFAULT_SYSCALL_MECHANISM, type SyscallMechanism } from '../../protocol/messages';
import { SessionError } from './SessionError';
import { syscallLockName, targetKey } from './targetLock';

const refusal = (target: string, why: string): SessionError =>
  new SessionError(`${target}: USDT probes and syscall tracepoints cannot be traced in one process (a thread followed for its syscalls that meets a USDT breakpoint is killed): ${why}`, 'attach');

/** Refuses a plan that has both on Stalker, before anything is injected. */
export function refuseMixedPlan(target: string, hasUsdt: boolean, hasSyscalls: boolean, syscalls: SyscallMechanism | undefined): void {
  if (hasUsdt && hasSyscalls && (syscalls ?? DEFAULT_SYSCALL_MECHANISM) !== 'rewrite') throw refusal(target, 'trace the syscalls with --syscalls rewrite, or load them in separate runs');
}

/** Whether a live session holds `name` (an abstract socket: connecting answers at once). */
function listening(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ path: name });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

const markerPrefix = (pid: number): string => `bpftime-ts-usdt-${targetKey(pid)}-`;

/**
 * Before USDT sites are hooked: refused while another session traces the target's syscalls
 * (`ownSyscalls`: this session holds the syscall lock itself, with rewritten sites).
 */
export async function claimUsdt(pid: number, ownSyscalls = false): Promise<net.Server> {
  if (!ownSyscalls && (await listening(syscallLockName(pid)))) throw refusal(`pid ${pid}`, 'another bpftime-ts session traces its syscalls; stop that one first');
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new SessionError(`pid ${pid}: cannot mark its USDT probes: ${e.message}`, 'attach')));
    server.listen({ path: `\0${markerPrefix(pid)}${process.pid}` }, () => resolve());
  });
  server.unref();
  return server;
}

/** Before syscall programs are loaded: refused while another session has USDT sites in. */
export function refuseSyscallsBesideUsdt(pid: number): void {
  let table = '';
  try {
    table = fs.readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return; // no way to tell: the syscall lock still keeps syscall sessions apart
  }
  if (table.includes(`@${markerPrefix(pid)}`)) throw refusal(`pid ${pid}`, 'another bpftime-ts session has USDT probes in it; stop that one first');
}
