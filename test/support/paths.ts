import * as path from 'path';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const fixturesBuild = path.join(repoRoot, 'test', 'fixtures', 'build');
export const victimPath = (name: string): string => path.join(fixturesBuild, 'victims', name);
export const bpfObjectPath = (name: string): string => path.join(fixturesBuild, 'bpf', `${name}.bpf.o`);
export const cliPath = path.join(repoRoot, 'bin', 'bpftime-ts');
export const agentBundlePath = path.join(repoRoot, 'dist', 'agent.js');
export const wasmPath = path.join(repoRoot, 'vm', 'build', 'bpfvm.wasm');
/** Vendored bpf_conformance vectors (test/conformance/README.md): the suite needs nothing outside the checkout. */
export const conformanceDir = path.join(repoRoot, 'test', 'conformance', 'bpf_conformance');
