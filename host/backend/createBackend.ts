import { FridaBackend } from './FridaBackend';
import { NpmFridaBackend } from './NpmFridaBackend';
import { SidecarBackend } from './SidecarBackend';

export type BackendChoice = 'auto' | 'npm' | 'sidecar';

/**
 * The npm binding when `require('frida')` works (no extra process), the Python sidecar
 * otherwise. BPFTIME_TS_BACKEND=npm|sidecar forces one (tests use it to pin the sidecar).
 */
export async function createBackend(opts: { verbose?: boolean; choice?: BackendChoice } = {}): Promise<FridaBackend> {
  const choice = opts.choice ?? ((process.env.BPFTIME_TS_BACKEND as BackendChoice | undefined) || 'auto');
  if (choice !== 'sidecar') {
    const npm = await NpmFridaBackend.tryStart();
    if (npm) return npm;
    if (choice === 'npm') throw new Error("the npm 'frida' binding is not installed");
  }
  return SidecarBackend.start({ verbose: opts.verbose });
}
