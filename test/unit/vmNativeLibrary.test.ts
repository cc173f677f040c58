// The native VM library runs inside syscall hooks, where the hooked thread may hold any libc
// lock (malloc's arena lock around brk/mmap/futex, for one). Whatever it does on that path
// must make no syscall of its own and call no malloc. Two properties of the built .so keep
// the loader out of that path: no thread-local storage (in a dlopen()ed library each
// thread's first access to it mallocs through __tls_get_addr: a futex there recursed
// through the hook until the stack ran out, 1 in 30 loaded forker runs), and every symbol
// bound at load time (lazy PLT binding runs ld.so's resolver on the first call).

import { execFileSync } from 'child_process';
import * as path from 'path';
import { repoRoot } from '../support/paths';

const library = path.join(repoRoot, 'vm', 'build', 'libbpfvm.so');
const readelf = (...args: string[]): string => execFileSync('readelf', ['-W', ...args, library], { encoding: 'utf8' });

describe('libbpfvm.so, loaded into targets', () => {
  test('has no thread-local storage', () => {
    expect(readelf('-l')).not.toMatch(/^\s*TLS\s/m);
    expect(readelf('--dyn-syms')).not.toMatch(/__tls_get_addr/);
  });

  test('binds every symbol when it is loaded (no lazy PLT resolution inside a hook)', () => {
    expect(readelf('-d')).toMatch(/\(FLAGS\)\s+BIND_NOW/);
  });
});
