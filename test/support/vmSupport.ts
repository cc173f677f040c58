import { toWasmModule, type WasmModule } from '../../vm/ts/wasmApi';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { repoRoot, wasmPath } from './paths';

export const vmNativePath = path.join(repoRoot, 'vm', 'build', 'bpfvm-native');

let built = false;
/** Builds the VM (make skips current targets) so that tests run against the sources. */
export function ensureVmBuilt(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', path.join(repoRoot, 'vm')], { stdio: 'inherit' });
  built = true;
}

let mod: WasmModule | undefined;
export function vmModule(): WasmModule {
  ensureVmBuilt();
  if (!mod) mod = toWasmModule(fs.readFileSync(wasmPath));
  return mod;
}

export const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Runs batch lines through the native build; returns one output line per input line. */
export function runNative(lines: string[], args: string[] = []): string[] {
  ensureVmBuilt();
  const out = execFileSync(vmNativePath, args, { input: lines.join('\n') + '\n', maxBuffer: 64 << 20 }).toString();
  return out.split('\n').filter((l) => l !== '');
}
