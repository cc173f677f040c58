// The native VM library runs inside syscall hooks, where the hooked thread may hold any libc
// lock (malloc's arena lock around brk/mmap/futex, for one). Whatever it does on that path
// must make no syscall of its own and call no malloc. Two properties of the built .so keep
// the loader out of that path: no thread-local storage (in a dlopen()ed library each
// thread's first access to it mallocs through __tls_get_addr: a futex there recursed
// through the hook until the stack ran out, 1 in 30 loaded forker runs), and every symbol
// bound at load time (lazy PLT binding runs ld.so's resolver on the first call).
//
// It also runs amid the target's code at a rewritten syscall site, whose caller may keep
// values in any vector register across the syscall; the stub saves only xmm0-15's low
// halves (agent/attach/syscall/rewrite/stubs.ts). So neither it nor the rewrite handlers
// may touch a vector register, libc's AVX string functions included (vm/src/native_mem.c).

import { execFileSync } from 'child_process';
import * as path from 'path';
import { repoRoot } from '../support/paths';

const library = path.join(repoRoot, 'vm', 'build', 'libbpfvm.so');
const readelf = (...args: string[]): string => execFileSync('readelf', ['-W', ...args, library], { encoding: 'utf8' });
const handlers = path.join(repoRoot, 'agent', 'attach', 'syscall', 'rewrite', 'native', 'build', 'rewriteHandlers.so');
const vectorInsns = (so: string): string[] =>
  execFileSync('objdump', ['-d', so], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n')
    .filter((l) => /%[xyz]mm\d/.test(l));

describe('libbpfvm.so, loaded into targets', () => {
  test('has no thread-local storage', () => {
    expect(readelf('-l')).not.toMatch(/^\s*TLS\s/m);
    expect(readelf('--dyn-syms')).not.toMatch(/__tls_get_addr/);
  });

  test('binds every symbol when it is loaded (no lazy PLT resolution inside a hook)', () => {
    expect(readelf('-d')).toMatch(/\(FLAGS\)\s+BIND_NOW/);
  });

  test('touches no vector register and calls none of libc\'s string functions', () => {
    expect(vectorInsns(library)).toEqual([]);
    expect(readelf('--dyn-syms')).not.toMatch(/\s(memcpy|memmove|memset|memcmp|strlen|strnlen)@/);
  });
});

describe('the rewrite handlers library', () => {
  test('touches no vector register and needs nothing but its externs', () => {
    expect(vectorInsns(handlers)).toEqual([]);
    const relocs = execFileSync('readelf', ['-rW', handlers], { encoding: 'utf8' }).match(/R_X86_64_\w+/g) ?? [];
    expect(new Set(relocs)).toEqual(new Set(['R_X86_64_GLOB_DAT', 'R_X86_64_JUMP_SLOT']));
  });
});
