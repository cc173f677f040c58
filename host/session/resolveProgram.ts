import * as fs from 'fs';
import * as path from 'path';
import { SessionError } from './SessionError';

/**
 * Finds the program a user asked to spawn the way a shell would (PATH lookup for bare
 * names), so a typo is reported by name before Frida is involved.
 */
export function resolveProgram(program: string, cwd?: string): string {
  const base = cwd ?? process.cwd();
  const candidates = program.includes('/')
    ? [path.resolve(base, program)]
    : (process.env.PATH ?? '/usr/bin:/bin').split(':').filter(Boolean).map((d) => path.join(d, program));
  for (const c of candidates) {
    try {
      const st = fs.statSync(c);
      if (!st.isFile()) continue;
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {
      /* try the next */
    }
  }
  if (program.includes('/') && fs.existsSync(path.resolve(base, program))) {
    throw new SessionError(`${program}: not an executable file`, 'usage');
  }
  throw new SessionError(`${program}: no such program${program.includes('/') ? '' : ' in PATH'}`, 'usage');
}
