import * as fs from 'fs';
import * as path from 'path';

let cachedRoot: string | null = null;

/** The checkout (or installed package) root, found from this file whether it runs from source or dist/. */
export function repoRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'bpftime-ts') {
      cachedRoot = dir;
      return dir;
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the bpftime-ts package root above ${__dirname}`);
}

export const agentBundle = (): string => path.join(repoRoot(), 'dist', 'agent.js');
export const sidecarScript = (): string => path.join(repoRoot(), 'host', 'backend', 'sidecar', 'frida_sidecar.py');
export const venvPython = (): string => path.join(repoRoot(), '.venv', 'bin', 'python');
