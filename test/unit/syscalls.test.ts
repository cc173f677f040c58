// The shared x86-64 syscall table: both spellings of renamed syscalls, unimplemented numbers,
// and (where this kernel exposes tracefs) every tracepoint name checked against the kernel's.
import * as fs from 'fs';
import { SYSCALLS, SYSCALL_SLOTS, syscallByName, syscallName, syscallNumber, syscallTracepointProblem } from '../../protocol/syscalls';
import { sectionAttach } from '../../host/loader/sections';

const TRACEFS = '/sys/kernel/tracing/events/syscalls';
/** Syscalls whose tracepoints exist only when the kernel is built with them (modules, kexec, shadow stacks). */
const CONFIG_DEPENDENT = new Set(['init_module', 'delete_module', 'finit_module', 'kexec_load', 'kexec_file_load', 'map_shadow_stack']);

describe('syscall table', () => {
  test.each([
    ['stat', 'newstat', 4],
    ['fstat', 'newfstat', 5],
    ['lstat', 'newlstat', 6],
    ['sendfile', 'sendfile64', 40],
    ['uname', 'newuname', 63],
    ['umount2', 'umount', 166],
  ])('%s is also the kernel\'s %s (%i)', (table, kernel, nr) => {
    expect(syscallNumber(table)).toBe(nr);
    expect(syscallNumber(kernel)).toBe(nr);
    expect(syscallByName(table)).toEqual({ nr, name: table, tracepoint: kernel });
    expect(syscallName(nr)).toBe(table);
    expect(syscallTracepointProblem(kernel)).toBeNull();
    expect(syscallTracepointProblem(table)).toBeNull();
  });

  test('numbers, holes and the newest syscalls', () => {
    expect(syscallNumber('read')).toBe(0);
    expect(syscallNumber('openat')).toBe(257);
    expect(syscallNumber('newfstatat')).toBe(262);
    expect(syscallNumber('uretprobe')).toBe(335);
    expect(syscallNumber('file_setattr')).toBe(469);
    expect(SYSCALLS[400]).toBeUndefined();
    expect(syscallName(400)).toBe('syscall_400');
    expect(SYSCALLS.length).toBeLessThanOrEqual(SYSCALL_SLOTS);
    SYSCALLS.forEach((s, nr) => s && expect(s.nr).toBe(nr));
  });

  test('unknown and unimplemented names are refused with a reason', () => {
    expect(syscallTracepointProblem('nosuchcall')).toBe('no x86-64 syscall "nosuchcall"');
    expect(syscallTracepointProblem('open_tree')).toBeNull();
    expect(syscallTracepointProblem('getpi')).toMatch(/did you mean "getpid"/);
    expect(syscallTracepointProblem('uselib')).toMatch(/not implemented by Linux/);
  });

  test('section names: the kernel\'s tracepoint names load, unknown ones are unsupported', () => {
    expect(sectionAttach('tracepoint/syscalls/sys_enter_umount')).toEqual({ ok: true, attach: { kind: 'syscall', phase: 'enter', syscall: 'umount' } });
    expect(sectionAttach('tp/syscalls/sys_exit_newstat')).toEqual({ ok: true, attach: { kind: 'syscall', phase: 'exit', syscall: 'newstat' } });
    expect(sectionAttach('tp/syscalls/sys_enter_bogus')).toEqual({ ok: false, reason: 'tracepoint syscalls/sys_enter_bogus: no x86-64 syscall "bogus"' });
  });

  (fs.existsSync(TRACEFS) ? test : test.skip)('every tracepoint name is one this kernel has (tracefs)', () => {
    const kernel = new Set(fs.readdirSync(TRACEFS).filter((n) => n.startsWith('sys_enter_')).map((n) => n.slice('sys_enter_'.length)));
    const ours = SYSCALLS.filter((s) => s !== undefined && s.tracepoint !== null && !CONFIG_DEPENDENT.has(s.name)).map((s) => s!.tracepoint!);
    expect(ours.filter((t) => !kernel.has(t))).toEqual([]);
    // And nothing the kernel traces is missing from the table.
    expect([...kernel].filter((t) => syscallNumber(t) === undefined)).toEqual([]);
  });
});
