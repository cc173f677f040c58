// Loads the hook engine's test-only agent (agent/hooks/selfTest.ts) into a real victim
// through the sidecar backend; compiled once per test run with frida-compile.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SidecarBackend } from '../../host/backend/SidecarBackend';
import type { FridaScript, FridaSession } from '../../host/backend/FridaBackend';
import { repoRoot } from './paths';

let bundle: string | undefined;

function source(): string {
  if (bundle) return bundle;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hooks-selftest-')), 'selftest.js');
  execFileSync('npx', ['frida-compile', 'agent/hooks/selfTest.ts', '-o', out, '-c'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  bundle = fs.readFileSync(out, 'utf8');
  return bundle;
}

export interface HooksAgent {
  call<T>(method: string, ...args: unknown[]): Promise<T>;
  logs: string[];
  /** Unloads the script and detaches the session (the victim runs on). */
  close(): Promise<void>;
}

/** One backend per test file; each attach() is a new Frida session with a fresh agent. */
export class HooksHarness {
  private constructor(private readonly backend: SidecarBackend) {}

  static async start(): Promise<HooksHarness> {
    source();
    return new HooksHarness(await SidecarBackend.start());
  }

  async attach(pid: number): Promise<HooksAgent> {
    const session: FridaSession = await this.backend.attach(pid);
    const script: FridaScript = await session.createScript(source(), { runtime: 'v8', name: 'hooks-selftest' });
    const logs: string[] = [];
    script.onLog((level, text) => logs.push(`${level}: ${text}`));
    script.onMessage((m) => {
      if (m.type === 'error') logs.push(`error: ${m.description}\n${m.stack ?? ''}`);
    });
    await script.load();
    return {
      call: <T>(method: string, ...args: unknown[]) => script.call<T>(method, args),
      logs,
      close: async () => {
        try {
          await script.unload();
          await session.detach();
        } catch {
          // The victim may be gone.
        }
      },
    };
  }

  async close(): Promise<void> {
    await this.backend.close();
  }
}
