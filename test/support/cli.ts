import { ChildProcess, spawn, SpawnOptions } from 'child_process';
import { cliPath } from './paths';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (bin/bpftime-ts) the way a user would, pinned to the sidecar backend. */
export function startCli(args: string[], opts: SpawnOptions = {}): ChildProcess & { result: Promise<CliResult> } {
  const child = spawn(cliPath, args, {
    ...opts,
    env: { ...process.env, BPFTIME_TS_BACKEND: process.env.BPFTIME_TS_BACKEND ?? 'sidecar', ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { result: Promise<CliResult> };
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  child.result = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return child;
}

export function runCli(args: string[], opts: SpawnOptions = {}): Promise<CliResult> {
  return startCli(args, opts).result;
}

/** Resolves once `pred(stdout)` holds, or rejects after `ms`. */
export function waitForOutput(child: ChildProcess, pred: (text: string) => boolean, ms = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for output; got: ${text}`)), ms);
    const onData = (d: Buffer) => {
      text += d.toString();
      if (pred(text)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stderr?.off('data', onData);
        resolve(text);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
