// agent/cmodules/embed.sh turns a CModule source into the string the agent hands to
// Frida's TinyCC: local includes spliced in, every character kept (backslashes, backticks
// and `${` included, which a template literal would otherwise interpret).

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const embed = path.resolve(__dirname, '..', '..', 'agent', 'cmodules', 'embed.sh');

function embedded(files: Record<string, string>, main: string): { name: string; text: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-embed-'));
  try {
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    const ts = execFileSync('bash', [embed, path.join(dir, main)], { encoding: 'utf8' });
    const m = /^export const (\w+) = (`[\s\S]*`);\s*$/m.exec(ts);
    if (!m) throw new Error(`not one exported template literal:\n${ts}`);
    // The literal as TypeScript would read it.
    return { name: m[1], text: new Function(`return ${m[2]};`)() as string };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('names the export after the file and keeps the source byte for byte', () => {
  const src = '#include <gum/guminterceptor.h>\nconst char * s = "a\\\\b\\n`${x}`";\nint $y;\n';
  const out = embedded({ 'nativeProbe.c': src }, 'nativeProbe.c');
  expect(out.name).toBe('NATIVE_PROBE_C');
  expect(out.text).toBe(`\n${src}`);
});

test('splices "local" includes recursively and leaves <system> ones to TinyCC', () => {
  const out = embedded(
    {
      'inner.h': '#define INNER 1\n',
      'outer.h': '#include "inner.h"\nstatic int outer (void) { return INNER; }\n',
      'mod.c': '#include <gum/guminterceptor.h>\n#include "outer.h"\nint f (void) { return outer (); }\n',
    },
    'mod.c',
  );
  expect(out.name).toBe('MOD_C');
  expect(out.text).toContain('#include <gum/guminterceptor.h>');
  expect(out.text).not.toContain('#include "');
  expect(out.text.indexOf('#define INNER 1')).toBeLessThan(out.text.indexOf('static int outer'));
  expect(out.text.indexOf('static int outer')).toBeLessThan(out.text.indexOf('int f (void)'));
});

test('a header gets an _H export', () => {
  expect(embedded({ 'forkGuard.h': 'extern volatile gint fork_state[];\n' }, 'forkGuard.h').name).toBe('FORK_GUARD_H');
});
