// The never-rules of the architecture (shared design, "Never"), checked on the import graph:
// vm/ stands alone; the agent runtime knows attach implementations only through the base
// interface (each registers itself in agent/index.ts); the loader and the output printers
// never reach the Frida backend; a run's lifecycle (host/session) says how it ended and never
// reaches the command line that turns that into an exit status (host/cli).
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(rel));
    else if (/\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Repository-relative paths of the files `file` imports (relative specifiers only). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.normalize(path.join(path.dirname(file), s)));
}

function violations(dirs: string[], forbidden: RegExp): string[] {
  const bad: string[] = [];
  for (const d of dirs) for (const f of tsFiles(d)) for (const i of importsOf(f)) if (forbidden.test(i)) bad.push(`${f} imports ${i}`);
  return bad;
}

test('vm/ imports nothing from host/ or agent/', () => {
  expect(violations(['vm/ts'], /^(host|agent)\//)).toEqual([]);
});

test('the agent runtime imports no concrete attach implementation', () => {
  expect(violations(['agent/runtime'], /^agent\/attach\//)).toEqual([]);
});

test('host/loader and host/output never import the Frida backend', () => {
  expect(violations(['host/loader', 'host/output'], /^host\/backend\//)).toEqual([]);
});

test('host/session never imports host/cli', () => {
  expect(violations(['host/session'], /^host\/cli\//)).toEqual([]);
});

test('the import scanner sees imports (guards the rules against a silently broken regex)', () => {
  expect(importsOf('agent/runtime/LoadedInstance.ts')).toContain(path.normalize('vm/ts/vm.js'));
});
