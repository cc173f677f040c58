// Drives the test-only syscall agent (agent/attach/syscall/testHarness.ts) in real
// victims through the sidecar backend: compile once per test run, then spawn or attach.

import { execFileSync, spawn as spawnChild, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SidecarBackend } from '../../host/backend/SidecarBackend';
import type { FridaScript, FridaSession } from '../../host/backend/FridaBackend';
import { repoRoot } from './paths';

let bundle: string | undefined;

/** The harness agent, bundled with frida-compile the way the real agent is. */
export function harnessSource(): string {
  if (bundle) return bundle;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'syscall-harness-')), 'harness.js');
  execFileSync('npx', ['frida-compile', 'agent/attach/syscall/testHarness.ts', '-o', out, '-c'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  bundle = fs.readFileSync(out, 'utf8');
  return bundle;
}

export interface Probe {
  phase: 'enter' | 'exit';
  syscall: string;
  denyPath?: string;
  errno?: number;
  markerFile?: string;
}

export interface Stats {
  counts: Record<string, number>;
  openPaths: Record<string, number>;
  writeLens: Record<string, number>;
  rets: Record<string, Record<string, number>>;
  tids: Record<string, number>;
  logs: string[];
  followed: number[];
}

/** How the harness agent reaches syscalls: Stalker callouts or rewritten sites. */
export type Mechanism = 'stalker' | 'rewrite';

export interface Harness {
  backend: SidecarBackend;
  mechanism: Mechanism;
  /** The agent's `start` with this harness's mechanism. */
  start(probes: object[]): Promise<unknown>;
  session: FridaSession;
  script: FridaScript;
  pid: number;
  output: () => string;
  logs: string[];
  close(): Promise<void>;
}

async function load(backend: SidecarBackend, pid: number, output: () => string, mechanism: Mechanism): Promise<Harness> {
  const session = await backend.attach(pid);
  const script = await session.createScript(harnessSource(), { runtime: 'v8', name: 'syscall-harness' });
  const logs: string[] = [];
  script.onLog((level, text) => logs.push(`${level}: ${text}`));
  script.onMessage((m) => {
    if (m.type === 'error') logs.push(`error: ${m.description}\n${m.stack ?? ''}`);
  });
  await script.load();
  return {
    backend,
    mechanism,
    start: (probes) => script.call('start', [probes, mechanism]),
    session,
    script,
    pid,
    output,
    logs,
    close: async () => {
      try {
        await session.detach();
      } catch {
        // The victim may be gone already.
      }
      await backend.close();
    },
  };
}

/** Spawns `argv` suspended (output piped), loads the harness; call resume() after start(). */
export async function spawnWithHarness(argv: string[], mechanism: Mechanism = 'stalker'): Promise<Harness & { resume(): Promise<void>; exited: Promise<void> }> {
  const backend = await SidecarBackend.start();
  let out = '';
  backend.onOutput((_pid, _fd, data) => (out += data.toString()));
  const pid = await backend.spawn({ argv, stdio: 'pipe' });
  const h = await load(backend, pid, () => out, mechanism);
  const exited = new Promise<void>((resolve) => h.session.onDetached(() => resolve()));
  return { ...h, resume: () => backend.resume(pid), exited };
}

/** Attaches the harness to a running process. */
export async function attachHarness(pid: number, output: () => string, mechanism: Mechanism = 'stalker'): Promise<Harness> {
  const backend = await SidecarBackend.start();
  return load(backend, pid, output, mechanism);
}

/** Starts the looping victim with a stdin pipe for commands; resolves at `ready`. */
export async function startLoopVictim(bin: string, args: string[]): Promise<{
  child: ChildProcess;
  output: () => string;
  send(cmd: string, until: RegExp, ms?: number): Promise<string>;
  exit: Promise<number | null>;
}> {
  const child = spawnChild(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d) => {
    out += d;
    waiters.splice(0).forEach((w) => w());
  });
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const until = (re: RegExp, ms = 10000) =>
    new Promise<string>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output: ${out}`)), ms);
      const check = () => {
        const m = re.exec(out);
        if (m) {
          clearTimeout(deadline);
          resolve(m[0]);
        } else waiters.push(check);
      };
      check();
    });
  await until(/ready \d+/);
  return {
    child,
    output: () => out,
    send: (cmd, re, ms) => {
      child.stdin!.write(`${cmd}\n`);
      return until(re, ms);
    },
    exit,
  };
}
