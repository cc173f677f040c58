import { execFileSync } from 'child_process';
import * as os from 'os';
import { PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, type ObjectSpec, type ProgramSpec } from '../../protocol/spec';
import { loadObject, loadObjectFromBytes } from '../../host/loader/loadObject';
import { LoaderError } from '../../host/loader/errors';
import { sectionAttach } from '../../host/loader/sections';
import { describeRefusal, refusals } from '../../host/loader/refusals';
import { helperName } from '../../protocol/helperNames';
import { bpfObjectPath } from '../support/paths';
import { decode, elfOf, fixtureBytes } from '../support/loaderElf';

const load = (name: string): ObjectSpec => loadObject(bpfObjectPath(name));
const prog = (o: ObjectSpec, name: string): ProgramSpec => {
  const p = o.programs.find((x) => x.name === name);
  if (!p) throw new Error(`no program ${name} in ${o.programs.map((x) => x.name).join(',')}`);
  return p;
};
const mapIdx = (o: ObjectSpec, name: string): number => {
  const m = o.maps.find((x) => x.name === name);
  if (!m) throw new Error(`no map ${name}`);
  return m.index;
};

/** Instruction bytes of one function as llvm-objdump prints them. */
function objdumpBytes(file: string, func: string): string {
  const out = execFileSync('llvm-objdump', ['-d', file], { encoding: 'utf8' }).split('\n');
  let inFunc = false;
  let hex = '';
  for (const line of out) {
    if (/^[0-9a-f]+ <.*>:$/.test(line)) {
      const name = line.slice(line.indexOf('<') + 1, line.indexOf('>'));
      // Local labels (LBB*) continue the current function.
      if (!name.startsWith('LBB')) inFunc = name === func;
      continue;
    }
    if (/^Disassembly of section/.test(line)) inFunc = false;
    const m = /^\s+\d+:\t([0-9a-f ]+)\t/.exec(line);
    if (inFunc && m) hex += m[1].replace(/ /g, '');
  }
  return hex;
}

describe('loader: maps, globals and subprograms (loader_maps_globals)', () => {
  const o = load('loader_maps_globals');

  test('object-level fields', () => {
    expect(o.path).toBe(bpfObjectPath('loader_maps_globals'));
    expect(o.license).toBe('Dual BSD/GPL');
    expect(o.kernelVersion).toBe(0);
    expect(o.unsupported).toEqual([]);
    expect(o.btf).not.toBeNull();
    expect(o.btf!.types[0]).toEqual({ kind: 'void' });
    expect(JSON.parse(JSON.stringify(o))).toEqual(o);
  });

  test('BTF-defined maps', () => {
    const byName = Object.fromEntries(o.maps.map((m) => [m.name, m]));
    expect(byName.counts).toMatchObject({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 1024, flags: 0, origin: 'btf', readOnly: false });
    expect(byName.table).toMatchObject({ type: 'array', keySize: 4, valueSize: 16, maxEntries: 16, flags: 128, origin: 'btf' });
    expect(byName.events).toMatchObject({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096, origin: 'btf' });
    expect(byName.scratch).toMatchObject({ type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 2, btfKeyTypeId: 0, btfValueTypeId: 0 });
    // key/value BTF ids resolve to the declared types.
    const btf = o.btf!;
    const key = btf.types[byName.counts.btfKeyTypeId];
    expect(key).toMatchObject({ kind: 'typedef', name: '__u32' });
    const val = btf.types[byName.table.btfValueTypeId];
    expect(val).toMatchObject({ kind: 'struct', name: 'event', size: 16 });
    o.maps.forEach((m, i) => expect(m.index).toBe(i));
  });

  test('global data maps: .rodata, .data, .bss', () => {
    const ro = o.maps[mapIdx(o, '.rodata')];
    expect(ro).toMatchObject({ type: 'array', keySize: 4, maxEntries: 1, origin: 'rodata', readOnly: true, flags: 0 });
    const roBytes = Buffer.from(ro.initialData!, 'base64');
    expect(roBytes.length).toBe(ro.valueSize);
    expect(roBytes.readBigUInt64LE(8)).toBe(42n);
    const vars = Object.fromEntries(ro.vars!.map((v) => [v.name, v]));
    expect(vars.target_pid).toMatchObject({ offset: 0, size: 4 });
    expect(vars.threshold).toMatchObject({ offset: 8, size: 8 });
    expect(o.btf!.types[ro.btfValueTypeId]).toMatchObject({ kind: 'datasec', name: '.rodata', size: ro.valueSize });
    // bpf_printk format strings live in .rodata (clang 14) or .rodata.str1.1 (string literals).
    expect(roBytes.toString('latin1')).toContain('hit %d');

    const data = o.maps[mapIdx(o, '.data')];
    expect(data).toMatchObject({ origin: 'data', readOnly: false, valueSize: 24 });
    const d = Buffer.from(data.initialData!, 'base64');
    expect(d.readBigUInt64LE(0)).toBe(7n);
    expect([d.readUInt32LE(8), d.readUInt32LE(12), d.readUInt32LE(16), d.readUInt32LE(20)]).toEqual([1, 2, 3, 4]);
    expect(data.vars).toEqual([
      expect.objectContaining({ name: 'hits', offset: 0, size: 8 }),
      expect.objectContaining({ name: 'data_arr', offset: 8, size: 16 }),
    ]);

    const bss = o.maps[mapIdx(o, '.bss')];
    expect(bss).toMatchObject({ origin: 'bss', readOnly: false, valueSize: 12 });
    expect(bss.initialData).toBeUndefined();
    expect(bss.vars!.map((v) => [v.name, v.offset])).toEqual([['total', 0], ['misses', 8]]);
  });

  test('attach points from section names', () => {
    expect(prog(o, 'on_target')).toMatchObject({ section: 'uprobe/./victim:target_func', attach: { kind: 'uprobe', mode: 'entry', binary: './victim', symbol: 'target_func' } });
    expect(prog(o, 'on_readline').attach).toEqual({ kind: 'uprobe', mode: 'return', binary: '/bin/bash', symbol: 'readline' });
    expect(prog(o, 'on_malloc1').attach).toEqual({ kind: 'uprobe', mode: 'entry', binary: 'libc.so.6', symbol: 'malloc' });
    expect(prog(o, 'on_malloc2').section).toBe('uprobe/libc.so.6:malloc');
    expect(prog(o, 'on_go').attach).toEqual({ kind: 'uprobe', mode: 'entry', binary: 'victim', symbol: 'runtime.casgstatus', offset: 16 });
    expect(prog(o, 'on_off').attach).toEqual({ kind: 'uprobe', mode: 'entry', binary: 'victim', offset: 0x1234 });
    expect(prog(o, 'on_bare').attach).toBeNull();
    expect(prog(o, 'on_bare').attachNote).toMatch(/bare uprobe/);
    expect(prog(o, 'on_bare_ret').attach).toBeNull();
    expect(prog(o, 'on_bare_ret').attachNote).toMatch(/bare uretprobe/);
    // Subprograms in .text are never programs themselves.
    expect(o.programs.map((p) => p.name)).not.toContain('bump');
    expect(o.programs.map((p) => p.name)).not.toContain('global_helper');
  });

  test('helpers and maps used', () => {
    const t = prog(o, 'on_target');
    // Its own calls plus those of bump (lookup/update) and global_helper.
    expect(t.helpers).toEqual([1, 2, 6, 14]);
    expect(t.maps).toEqual([mapIdx(o, 'counts'), mapIdx(o, '.rodata'), mapIdx(o, '.data'), mapIdx(o, '.bss')].sort((a, b) => a - b));
    expect(prog(o, 'on_readline').helpers).toEqual([1, 2, 14, 131, 132]);
    expect(prog(o, 'on_malloc2').maps).toEqual([mapIdx(o, 'table'), mapIdx(o, 'scratch')].sort((a, b) => a - b));
  });

  test('subprograms are appended and calls point at them', () => {
    const t = prog(o, 'on_target');
    const insns = decode(t.code);
    expect(insns.length).toBe(t.insnCount);
    const elf = elfOf(fixtureBytes('loader_maps_globals'));
    const sym = (n: string) => elf.symbols.find((s) => s.name === n)!;
    const own = sym('on_target').size / 8;
    const bumpLen = sym('bump').size / 8;
    const ghLen = sym('global_helper').size / 8;
    expect(t.insnCount).toBe(own + bumpLen + ghLen);
    const text = elf.sections.find((s) => s.name === '.text')!.data;
    const calls = insns.map((x, i) => ({ x, i })).filter(({ x }) => x.opcode === 0x85 && x.src === 1);
    expect(calls.length).toBe(2);
    const targets = calls.map(({ x, i }) => i + x.imm + 1).sort((a, b) => a - b);
    expect(targets[0]).toBe(own);
    expect(targets[1]).toBe(own + (targets[1] - own));
    expect(new Set(targets.map((tg) => tg - own))).toEqual(new Set([0, targets[1] - own]));
    // Each call target is the first instruction of bump or global_helper.
    const code = Buffer.from(t.code, 'base64');
    const firsts = [sym('bump').value, sym('global_helper').value].map((v) => Buffer.from(text.subarray(v, v + 8)).toString('hex'));
    for (const tg of targets) expect(firsts).toContain(code.subarray(tg * 8, tg * 8 + 8).toString('hex'));

    // Transitive: on_readline calls bump, which calls no subprogram but uses maps.
    const r = prog(o, 'on_readline');
    expect(r.insnCount).toBe(sym('on_readline').size / 8 + bumpLen);
    // on_malloc1 calls global_helper only.
    expect(prog(o, 'on_malloc1').insnCount).toBe(sym('on_malloc1').size / 8 + ghLen);
  });

  test('lddw relocations become PSEUDO_MAP_FD / PSEUDO_MAP_VALUE', () => {
    const t = prog(o, 'on_target');
    const insns = decode(t.code);
    const lddw = insns.map((x, i) => ({ x, i, hi: insns[i + 1] })).filter(({ x }) => x.opcode === 0x18);
    const refs = lddw.map(({ x, hi }) => [x.src, o.maps[x.imm].name, hi.imm]);
    expect(refs).toContainEqual([PSEUDO_MAP_VALUE, '.rodata', 0]); // target_pid
    expect(refs).toContainEqual([PSEUDO_MAP_VALUE, '.rodata', 8]); // threshold
    expect(refs).toContainEqual([PSEUDO_MAP_VALUE, '.rodata', 16]); // format string: section symbol + imm
    expect(refs).toContainEqual([PSEUDO_MAP_VALUE, '.data', 0]); // hits
    expect(refs).toContainEqual([PSEUDO_MAP_VALUE, '.data', 8]); // data_arr (in global_helper)
    expect(refs).toContainEqual([PSEUDO_MAP_VALUE, '.bss', 0]); // total
    expect(refs).toContainEqual([PSEUDO_MAP_FD, 'counts', 0]);
    const r = decode(prog(o, 'on_readline').code);
    expect(r[0]).toMatchObject({ opcode: 0x18, src: PSEUDO_MAP_FD, imm: mapIdx(o, 'events') });
    const misses = r.findIndex((x, i) => x.opcode === 0x18 && i > 0 && x.src === PSEUDO_MAP_VALUE);
    expect(r[misses].imm).toBe(mapIdx(o, '.bss'));
    expect(r[misses + 1].imm).toBe(8);
  });

  test('code without relocations matches llvm-objdump', () => {
    const file = bpfObjectPath('loader_maps_globals');
    for (const name of ['on_go', 'on_off', 'on_bare']) {
      const p = prog(o, name);
      expect(Buffer.from(p.code, 'base64').toString('hex')).toBe(objdumpBytes(file, name));
    }
    const plain = bpfObjectPath('loader_kprobe_plain');
    const po = loadObject(plain);
    const pe = prog(po, 'plain_exit');
    const hex = objdumpBytes(plain, 'plain_exit');
    expect(pe.insnCount).toBe(hex.length / 16);
    expect(Buffer.from(pe.code, 'base64').toString('hex')).toBe(hex);
  });

  test('loadObjectFromBytes gives the same result as loadObject', () => {
    expect(loadObjectFromBytes(fixtureBytes('loader_maps_globals'), bpfObjectPath('loader_maps_globals'))).toEqual(o);
  });
});

describe('loader: kprobes and CO-RE', () => {
  test('BPF_KPROBE/BPF_KRETPROBE over vmlinux.h', () => {
    const o = load('loader_kprobe_vmlinux');
    const e = prog(o, 'kp_entry');
    expect(e.attach).toBeNull();
    expect(e.attachNote).toMatch(/kprobe.*do_work.*uprobe/);
    const x = prog(o, 'kp_exit');
    expect(x.attach).toBeNull();
    expect(x.attachNote).toMatch(/kretprobe.*uretprobe/);
    expect(o.maps[0]).toMatchObject({ name: 'sizes', type: 'lru_hash', keySize: 8, valueSize: 8, maxEntries: 128 });
    // PT_REGS_PARM1..5 = di, si, dx, cx, r8 at the kernel offsets (vmlinux layout = ours).
    const loads = decode(e.code).filter((i) => i.opcode === 0x79 && i.src === 1).map((i) => i.off);
    expect(loads.sort((a, b) => a - b)).toEqual([72, 88, 96, 104, 112]);
    // kretprobe: PT_REGS_RC = ax (80), BPF_CORE_READ(ctx, ip) = 128, field_exists = 1, field_size(flags) = 8.
    const xi = decode(x.code);
    expect(xi[1]).toMatchObject({ opcode: 0x79, off: 80 });
    expect(xi.some((i) => i.opcode === 0xb7 && i.imm === 128)).toBe(true);
    expect(prog(o, 'up_add').attach).toEqual({ kind: 'uprobe', mode: 'entry', binary: './victim', symbol: 'add' });
  });

  test('BPF_KPROBE with plain UAPI headers', () => {
    const o = load('loader_kprobe_plain');
    const e = prog(o, 'plain_entry');
    expect(e.attach).toEqual({ kind: 'uprobe', mode: 'entry', binary: './victim', symbol: 'add' });
    expect(decode(e.code).filter((i) => i.opcode === 0x79 && i.src === 1).map((i) => i.off).sort()).toEqual([104, 112]);
    expect(prog(o, 'plain_exit').attach).toEqual({ kind: 'uprobe', mode: 'return', binary: './victim', symbol: 'add' });
    expect(o.maps[0]).toMatchObject({ name: 'args', type: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 64 });
  });

  test('CO-RE relocations are resolved against our context structs', () => {
    const o = load('loader_core');
    // Local pt_regs___mine { di, si, nonexistent } → kernel offsets; missing field does not exist.
    const r = decode(prog(o, 'core_regs').code);
    expect(r[0]).toMatchObject({ opcode: 0x79, off: 112 });
    expect(r[1]).toMatchObject({ opcode: 0x79, off: 104 });
    expect(r[3]).toMatchObject({ opcode: 0xb7, imm: 0 });
    // trace_event_raw_sys_enter___mine { args[6]; ent { pid } } → args at 16, ent.pid at 4.
    const t = decode(prog(o, 'core_tp').code);
    expect(t[0]).toMatchObject({ opcode: 0x61, off: 4 });
    expect(t[1]).toMatchObject({ opcode: 0x79, off: 32 });
    expect(prog(o, 'core_tp').attach).toEqual({ kind: 'syscall', phase: 'enter', syscall: 'write' });
    // A user struct keeps the layout it was compiled with.
    const u = decode(prog(o, 'core_user').code);
    expect(u[3]).toMatchObject({ opcode: 0xb7, imm: 8 });
    expect(u[9]).toMatchObject({ opcode: 0xb7, imm: 16 });
  });
});

describe('loader: tracepoints, legacy maps, override, unsupported', () => {
  test('syscall tracepoints', () => {
    const o = load('loader_tracepoint');
    expect(prog(o, 'tp_openat').attach).toEqual({ kind: 'syscall', phase: 'enter', syscall: 'openat' });
    expect(prog(o, 'tp_openat_exit').attach).toEqual({ kind: 'syscall', phase: 'exit', syscall: 'openat' });
    expect(prog(o, 'raw_enter').attach).toEqual({ kind: 'syscall', phase: 'enter', syscall: '*' });
    expect(prog(o, 'raw_exit').attach).toEqual({ kind: 'syscall', phase: 'exit', syscall: '*' });
    expect(o.maps[0]).toMatchObject({ name: 'out', type: 'perf_event_array', keySize: 4, valueSize: 4 });
    expect(prog(o, 'tp_openat').helpers).toEqual([25]);
    // ctx->args[1] = 24, ctx->id = 8, ctx->ent.pid = 4; sys_exit ret = 16.
    const offs = decode(prog(o, 'tp_openat').code).filter((i) => (i.opcode & 7) === 1 && i.src === 1).map((i) => i.off);
    expect(offs).toEqual([24, 8, 4]);
    expect(decode(prog(o, 'tp_openat_exit').code)[0]).toMatchObject({ opcode: 0x79, off: 16 });
  });

  test('legacy maps section and version', () => {
    const o = load('loader_legacy');
    expect(o.kernelVersion).toBe(0x050a00);
    expect(o.maps).toEqual([
      expect.objectContaining({ index: 0, name: 'legacy_hash', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 32, flags: 1, origin: 'legacy' }),
      expect.objectContaining({ index: 1, name: 'legacy_progs', type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 8, flags: 0, origin: 'legacy' }),
    ]);
    const p = prog(o, 'legacy_prog');
    expect(p.maps).toEqual([0, 1]);
    expect(p.helpers).toEqual([1, 12]);
  });

  test('bpf_override_return makes an override uprobe; other program types are listed as unsupported', () => {
    const o = load('loader_override');
    expect(prog(o, 'force_ok').attach).toEqual({ kind: 'uprobe', mode: 'override', binary: './victim', symbol: 'check' });
    expect(prog(o, 'force_ok').helpers).toEqual([58]);
    expect(o.programs.length).toBe(1);
    const u = Object.fromEntries(o.unsupported.map((x) => [x.name, x]));
    expect(Object.keys(u).sort()).toEqual(['fentry_prog', 'kmulti', 'sock_filter', 'xdp_pass']);
    expect(u.xdp_pass).toMatchObject({ section: 'xdp', reason: expect.stringMatching(/XDP/) });
    expect(u.kmulti.reason).toMatch(/kprobe\.multi/);
  });

  test('what a run cannot provide is recorded, not thrown: every map, helper and extern at once', () => {
    const o = load('loader_badmap');
    expect(o.maps.find((m) => m.name === 'my_socks')).toMatchObject({ type: 'unsupported', unsupported: { kernelType: 'sockmap', reason: expect.stringMatching(/sockets are kernel objects/) } });
    expect(o.maps.find((m) => m.name === 'my_queue')).toMatchObject({ type: 'queue', keySize: 0, valueSize: 8 });
    expect(prog(o, 'wants_kernel').unresolvedExterns).toEqual([
      { name: 'bpf_prog_active', reason: '__ksym extern bpf_prog_active names a kernel symbol' },
      { name: 'CONFIG_HZ', reason: '__kconfig extern CONFIG_HZ is not known here (declare it __weak to read 0)' },
    ]);
    expect(prog(o, 'wants_kfunc').unresolvedExterns).toEqual([{ name: 'bpf_cast_to_kern_ctx', reason: 'kfunc bpf_cast_to_kern_ctx() is a kernel function' }]);
    expect(prog(o, 'uses_queue').unresolvedExterns).toBeUndefined();
    expect(refusals(o).map(describeRefusal)).toEqual([
      'map "my_socks": map type 15 (sockmap) is not supported: sockets are kernel objects',
      'map "no_prealloc_flag": an lpm_trie needs map_flags BPF_F_NO_PREALLOC (the kernel refuses it without)',
      'program "wants_kernel": calls get_current_task (#35), which bpftime-ts does not provide',
      'program "wants_kernel": __ksym extern bpf_prog_active names a kernel symbol',
      'program "wants_kernel": __kconfig extern CONFIG_HZ is not known here (declare it __weak to read 0)',
      'program "wants_kfunc": kfunc bpf_cast_to_kern_ctx() is a kernel function',
    ]);
  });

  test('__kconfig externs we answer live in a read-only .kconfig map; weak unknown ones read 0', () => {
    const o = load('loader_badmap');
    const k = o.maps.find((m) => m.name === '.kconfig')!;
    expect(k).toMatchObject({ origin: 'rodata', readOnly: true, type: 'array', maxEntries: 1 });
    const data = Buffer.from(k.initialData!, 'base64');
    const at = (name: string) => k.vars!.find((v) => v.name === name)!;
    const [maj, min] = os.release().split('.').map(Number);
    expect(data.readUInt32LE(at('LINUX_KERNEL_VERSION').offset) >> 8).toBe((maj << 8) + min);
    expect(data[at('LINUX_HAS_BPF_COOKIE').offset]).toBe(1);
    expect(data.readInt32LE(at('CONFIG_MAYBE').offset)).toBe(0);
    expect(k.vars!.map((v) => v.name)).not.toContain('CONFIG_HZ');
    // The program reads them through lddw PSEUDO_MAP_VALUE into that map.
    const insns = decode(prog(o, 'uses_queue').code).filter((i) => i.opcode === 0x18 && i.src === 2);
    expect(insns.every((i) => i.imm === k.index)).toBe(true);
    expect(insns.length).toBe(3);
  });
});

describe('section names', () => {
  test.each([
    ['uprobe/./victim:target_func', { kind: 'uprobe', mode: 'entry', binary: './victim', symbol: 'target_func' }],
    ['uprobe/libc.so.6:malloc', { kind: 'uprobe', mode: 'entry', binary: 'libc.so.6', symbol: 'malloc' }],
    ['uretprobe//bin/bash:readline', { kind: 'uprobe', mode: 'return', binary: '/bin/bash', symbol: 'readline' }],
    ['uprobe/./go:runtime.casgstatus', { kind: 'uprobe', mode: 'entry', binary: './go', symbol: 'runtime.casgstatus' }],
    ['uprobe/bin:0x1234', { kind: 'uprobe', mode: 'entry', binary: 'bin', offset: 0x1234 }],
    ['uprobe/bin:func+0x10', { kind: 'uprobe', mode: 'entry', binary: 'bin', symbol: 'func', offset: 16 }],
    ['uprobe.s/bin:f', { kind: 'uprobe', mode: 'entry', binary: 'bin', symbol: 'f' }],
    ['uprobe/libc.so.6:malloc@GLIBC_2.2.5', { kind: 'uprobe', mode: 'entry', binary: 'libc.so.6', symbol: 'malloc@GLIBC_2.2.5' }],
    ['uprobe/SSL_read', { kind: 'uprobe', mode: 'entry', symbol: 'SSL_read' }],
    ['uretprobe/do_handshake', { kind: 'uprobe', mode: 'return', symbol: 'do_handshake' }],
    ['tracepoint/syscalls/sys_enter_execve', { kind: 'syscall', phase: 'enter', syscall: 'execve' }],
    ['tp/syscalls/sys_exit_read', { kind: 'syscall', phase: 'exit', syscall: 'read' }],
    ['tp/raw_syscalls/sys_enter', { kind: 'syscall', phase: 'enter', syscall: '*' }],
  ])('%s', (sec, attach) => {
    expect(sectionAttach(sec)).toEqual({ ok: true, attach });
  });

  test('null attach with a note', () => {
    for (const s of ['uprobe', 'uretprobe', 'kprobe/do_sys_open', 'kretprobe/x', 'uprobe/a:', 'uprobe/:b']) {
      const r = sectionAttach(s);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.attach).toBeNull();
        expect(r.note).toBeTruthy();
      }
    }
  });

  test('override only for uprobe entry', () => {
    expect(sectionAttach('uprobe/b:f', [58])).toEqual({ ok: true, attach: { kind: 'uprobe', mode: 'override', binary: 'b', symbol: 'f' } });
    expect(sectionAttach('uretprobe/b:f', [58])).toEqual({ ok: true, attach: { kind: 'uprobe', mode: 'return', binary: 'b', symbol: 'f' } });
  });

  test('unsupported', () => {
    for (const s of ['xdp', 'socket', 'fentry/x', 'kprobe.multi/x', 'tracepoint/sched/sched_switch', 'raw_tp/sys_enter', 'usdt.x/a:b:c', 'cgroup_skb/ingress', 'weird']) {
      const r = sectionAttach(s);
      expect(r.ok).toBe(false);
    }
  });

  test('helper names', () => {
    expect(helperName(1)).toBe('map_lookup_elem');
    expect(helperName(6)).toBe('trace_printk');
    expect(helperName(58)).toBe('override_return');
    expect(helperName(131)).toBe('ringbuf_reserve');
    expect(helperName(211)).toBe('cgrp_storage_delete');
    expect(helperName(9999)).toBe('helper#9999');
  });
});

describe('loader: callbacks, string literals, custom data sections (loader_callbacks)', () => {
  const o = load('loader_callbacks');
  const p = prog(o, 'with_loop');
  const insns = decode(p.code);

  test('maps for .data.counters, .bss and .rodata.str1.1', () => {
    expect(o.maps.map((m) => [m.name, m.origin, m.readOnly])).toEqual([
      ['.data.counters', 'data', false],
      ['.bss', 'bss', false],
      ['.rodata.str1.1', 'rodata', true],
    ]);
    const str = o.maps[mapIdx(o, '.rodata.str1.1')];
    expect(Buffer.from(str.initialData!, 'base64').toString('latin1')).toBe('literal string\0x=%d\n\0');
    expect(str.vars).toEqual([]);
    expect(o.maps[mapIdx(o, '.data.counters')].vars).toEqual([expect.objectContaining({ name: 'counter', offset: 0, size: 4 })]);
  });

  test('string literal references point into .rodata.str1.1', () => {
    const refs = insns.map((x, i) => [x, insns[i + 1]] as const).filter(([x]) => x.opcode === 0x18 && x.src === PSEUDO_MAP_VALUE);
    const strIdx = mapIdx(o, '.rodata.str1.1');
    expect(refs.filter(([x]) => x.imm === strIdx).map(([, hi]) => hi.imm)).toEqual([0, 15]);
  });

  test('bpf_loop callback becomes PSEUDO_FUNC and nested calls are linked', () => {
    expect(p.helpers).toEqual([6, 115, 181]);
    // with_loop (19) + loop_cb (7) + middle (3) + leaf (5)
    expect(p.insnCount).toBe(19 + 7 + 3 + 5);
    const fn = insns[1];
    expect(fn).toMatchObject({ opcode: 0x18, src: 4 });
    const cbStart = 1 + fn.imm + 1;
    // The callback's first instruction is its lddw of `counter`.
    expect(insns[cbStart]).toMatchObject({ opcode: 0x18, src: PSEUDO_MAP_VALUE, imm: mapIdx(o, '.data.counters') });
    expect(insns[cbStart + 6]).toMatchObject({ opcode: 0x95 });
    // with_loop → middle → leaf (the latter a pc-relative call with no relocation).
    const middle = 17 + insns[17].imm + 1;
    expect(insns[middle]).toMatchObject({ opcode: 0x85, src: 1 });
    const leaf = middle + insns[middle].imm + 1;
    expect(insns[leaf]).toMatchObject({ opcode: 0x18, src: PSEUDO_MAP_VALUE, imm: mapIdx(o, '.data.counters') });
    expect(insns[leaf + 2]).toMatchObject({ opcode: 0x61 });
    expect(new Set([cbStart, middle, leaf]).size).toBe(3);
    for (const t of [cbStart, middle, leaf]) expect(t).toBeGreaterThanOrEqual(19);
  });
});
