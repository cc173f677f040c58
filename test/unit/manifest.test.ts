import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadObject } from '../../host/loader/loadObject';
import { loadManifest } from '../../host/manifest/loadManifest';
import { buildLoadRequest } from '../../host/manifest/buildLoadRequest';
import { ManifestError } from '../../host/manifest/errors';
import type { ObjectSpec } from '../../protocol/spec';
import { bpfObjectPath, victimPath } from '../support/paths';

const objPath = bpfObjectPath('manifest_basic');
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-'));
  fs.copyFileSync(objPath, path.join(dir, 'basic.bpf.o'));
  fs.writeFileSync(path.join(dir, 'victim'), '');
  fs.mkdirSync(path.join(dir, 'work'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(doc: unknown, name = 'manifest.json'): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  return f;
}
const okPrograms = { on_bare: { type: 'uprobe', binary: './victim', symbol: 'f' }, on_kp: { disabled: true } };
const base = (extra: Record<string, unknown> = {}, obj: Record<string, unknown> = {}) => ({
  target: { spawn: ['./victim', '1000'] },
  objects: [{ path: 'basic.bpf.o', programs: okPrograms, ...obj }],
  ...extra,
});
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('expected a ManifestError');
}
const build = (doc: unknown) => {
  const m = loadManifest(write(doc));
  return buildLoadRequest(m.objects.map((o) => loadObject(o.path)), m.objects);
};

describe('loadManifest: validation', () => {
  test('wrong program type names the JSON path and the choices', () => {
    const f = write(base({}, { programs: { on_add: { type: 'kprobe', binary: './victim', symbol: 'x' } } }));
    expect(errorOf(() => loadManifest(f))).toBe(`${f}: /objects/0/programs/on_add/type: must be one of "uprobe", "uretprobe", "uprobe_override", "syscall", "usdt"`);
  });
  test('wrong JSON types', () => {
    expect(errorOf(() => loadManifest(write({ objects: 'x' })))).toMatch(/: \/objects: must be an array$/);
    expect(errorOf(() => loadManifest(write(base({ target: { pid: 'x' } }))))).toMatch(/\/target\/pid: must be an integer$/);
    expect(errorOf(() => loadManifest(write(base({ output: { json: 1 } }))))).toMatch(/\/output\/json: must be a boolean$/);
    expect(errorOf(() => loadManifest(write(base({ bogus: 1 }))))).toMatch(/: \/: unknown property "bogus"/);
  });
  test('both spawn and pid, and neither', () => {
    expect(errorOf(() => loadManifest(write(base({ target: { spawn: ['./victim'], pid: 3 } }))))).toMatch(/\/target: give either "spawn" or "pid", not both$/);
    expect(errorOf(() => loadManifest(write(base({ target: {} }))))).toMatch(/\/target: must have "spawn" \(a command\) or "pid"/);
  });
  test('bad syscall phase, missing syscall, uprobe without symbol', () => {
    const p = (prog: unknown) => write(base({}, { programs: { on_open: prog } }));
    expect(errorOf(() => loadManifest(p({ type: 'syscall', phase: 'during', syscall: 'openat' })))).toMatch(/\/objects\/0\/programs\/on_open\/phase: must be one of "enter", "exit"$/);
    expect(errorOf(() => loadManifest(p({ type: 'syscall', phase: 'enter' })))).toMatch(/on_open: missing required property "syscall"$/);
    expect(errorOf(() => loadManifest(p({ type: 'uprobe', binary: './victim' })))).toMatch(/on_open: a uprobe needs "binary" with "symbol" and\/or "offset", or an "address"$/);
    expect(errorOf(() => loadManifest(p({ symbol: 'x' })))).toMatch(/on_open: "symbol" needs "type"$/);
  });
  test('syscall names are checked against the x86-64 table (either spelling of renamed ones)', () => {
    const p = (prog: unknown) => write(base({}, { programs: { on_open: prog } }));
    expect(errorOf(() => loadManifest(p({ type: 'syscall', phase: 'enter', syscall: 'opnat' })))).toMatch(/\/objects\/0\/programs\/on_open\/syscall: no x86-64 syscall "opnat"$/);
    for (const name of ['umount', 'umount2', 'newstat', 'stat']) {
      expect(loadManifest(p({ type: 'syscall', phase: 'enter', syscall: name })).objects[0].programs.on_open.attach).toEqual({ kind: 'syscall', phase: 'enter', syscall: name });
    }
  });
  test('missing files and bad JSON', () => {
    expect(errorOf(() => loadManifest(path.join(dir, 'nope.json')))).toMatch(/nope.json: cannot read manifest: no such file$/);
    expect(errorOf(() => loadManifest(write(base({}, { path: 'missing.bpf.o' }))))).toMatch(/\/objects\/0\/path: object not found: .*missing.bpf.o$/);
    expect(errorOf(() => loadManifest(write(base({ target: { spawn: ['./nothere'] } }))))).toMatch(/\/target\/spawn\/0: program not found/);
    expect(errorOf(() => loadManifest(write('{\n  "objects": [,]\n}')))).toMatch(/manifest.json: invalid JSON at line 2, column 15: Unexpected token .,.$/);
  });
});

describe('loadManifest: typed values and paths', () => {
  test('relative paths resolve against the manifest folder', () => {
    const m = loadManifest(
      write({
        target: { spawn: ['./victim', '1000'], env: { K: 'V' }, cwd: 'work' },
        objects: [{ path: 'basic.bpf.o', programs: { on_bare: { type: 'uretprobe', binary: './victim', symbol: 'f' }, on_kp: { type: 'uprobe', binary: 'libc.so.6', symbol: 'malloc', offset: 4 }, on_open: { type: 'syscall', phase: 'exit', syscall: '*' } } }],
        output: { interval: 1, histograms: ['latency'], records: { events: 'event' } },
      }),
    );
    expect(m.target).toEqual({ kind: 'spawn', argv: [path.join(dir, 'victim'), '1000'], env: { K: 'V' }, cwd: path.join(dir, 'work') });
    expect(m.objects[0].path).toBe(path.join(dir, 'basic.bpf.o'));
    expect(m.objects[0].programs.on_bare.attach).toEqual({ kind: 'uprobe', mode: 'return', binary: path.join(dir, 'victim'), symbol: 'f' });
    expect(m.objects[0].programs.on_kp.attach).toEqual({ kind: 'uprobe', mode: 'entry', binary: 'libc.so.6', symbol: 'malloc', offset: 4 });
    expect(m.objects[0].programs.on_open.attach).toEqual({ kind: 'syscall', phase: 'exit', syscall: '*' });
    expect(m.output).toEqual({ json: false, interval: 1, histograms: ['latency'], records: { events: 'event' }, syscalls: [], timestamps: false });
  });
  test('spawn by bare name stays a PATH lookup; pid target', () => {
    expect(loadManifest(write(base({ target: { spawn: ['ls', '-l'] } }))).target).toEqual({ kind: 'spawn', argv: ['ls', '-l'] });
    expect(loadManifest(write(base({ target: { pid: 1234 } }))).target).toEqual({ kind: 'pid', pid: 1234 });
  });
});

describe('buildLoadRequest', () => {
  const spec = (): ObjectSpec => loadObject(objPath);

  test('CLI-only use takes section attach points and names what to write for the rest', () => {
    const msg = errorOf(() => buildLoadRequest([spec()], []));
    expect(msg).toContain('program "on_bare" (section "uprobe") has no attach point');
    expect(msg).toContain('"programs": {"on_bare": {"type": "uprobe", "binary": "./prog", "symbol": "func"}}');
    const o = loadObject(bpfObjectPath('loader_kprobe_plain'));
    const req = buildLoadRequest([o], []);
    expect(req.links.map((l) => [l.program, l.attach])).toEqual([
      ['plain_entry', { kind: 'uprobe', mode: 'entry', binary: './victim', symbol: 'add' }],
      ['plain_exit', { kind: 'uprobe', mode: 'return', binary: './victim', symbol: 'add' }],
    ]);
    expect(req.mapInit).toEqual([]);
  });

  test('CLI targets supply missing attach points', () => {
    const req = buildLoadRequest([spec()], [], [
      { program: 'on_bare', attach: { kind: 'uprobe', mode: 'entry', binary: 'x', symbol: 'y' } },
      { program: 'on_kp', attach: { kind: 'uprobe', mode: 'return', binary: 'x', symbol: 'z' } },
    ]);
    expect(req.links.map((l) => l.program)).toEqual(['on_add', 'on_bare', 'on_kp', 'on_open']);
  });

  test('manifest overrides, disabled programs, modes', () => {
    const req = build(base({}, { programs: { ...okPrograms, on_add: { type: 'uprobe_override', address: '0x1000', cookie: 7 }, on_open: { disabled: true } } }));
    expect(req.links).toEqual([
      { object: 0, program: 'on_add', attach: { kind: 'uprobe', mode: 'override', address: '0x1000' }, cookie: '7' },
      { object: 0, program: 'on_bare', attach: { kind: 'uprobe', mode: 'entry', binary: path.join(dir, 'victim'), symbol: 'f' } },
    ]);
  });

  test('kprobe sections: attach null until the manifest makes them uprobes, never syscalls', () => {
    const msg = errorOf(() => build(base({}, { programs: { on_bare: okPrograms.on_bare } })));
    expect(msg).toMatch(/program "on_kp" \(section "kprobe\/do_sys_openat2"\) has no attach point: kprobe section/);
    expect(msg).toContain('add "on_kp": {"type": "uprobe"');
    expect(errorOf(() => build(base({}, { programs: { ...okPrograms, on_kp: { type: 'syscall', phase: 'enter', syscall: 'read' } } })))).toMatch(/\/objects\/0\/programs\/on_kp\/type: program "on_kp" .* is a kprobe/);
  });

  test('unknown program names list the available ones', () => {
    expect(errorOf(() => build(base({}, { programs: { ...okPrograms, on_nothing: { disabled: true } } })))).toMatch(
      /\/objects\/0\/programs\/on_nothing: no program "on_nothing" in .*basic.bpf.o \(programs: on_add, on_bare, on_kp, on_open\)$/,
    );
  });

  test('rodata is written into a copy, little-endian, sized by the variable', () => {
    const o = spec();
    const before = JSON.stringify(o);
    const m = loadManifest(write(base({}, { rodata: { target_pid: 0x01020304, verbose: true, small: -5, big: '18446744073709551615' } })));
    const req = buildLoadRequest([o], m.objects);
    expect(JSON.stringify(o)).toBe(before);
    const ro = req.objects[0].maps.find((x) => x.name === '.rodata')!;
    expect(Buffer.from(ro.initialData!, 'base64').toString('hex')).toBe('04030201' + '01' + 'fb' + '0000' + 'ffffffffffffffff');
    expect(req.objects[0].maps.find((x) => x.name === 'config')).toBe(o.maps.find((x) => x.name === 'config'));
  });

  test('rodata names and ranges are checked', () => {
    expect(errorOf(() => build(base({}, { rodata: { nope: 1 } })))).toMatch(/\/objects\/0\/rodata\/nope: no global variable "nope" .*available: target_pid, verbose, small, big\)$/);
    expect(errorOf(() => build(base({}, { rodata: { small: 128 } })))).toMatch(/\/rodata\/small: 128 does not fit in signed char \(1 bytes\) \(range -128..127\)$/);
    expect(errorOf(() => build(base({}, { rodata: { target_pid: -1 } })))).toMatch(/\/rodata\/target_pid: -1 does not fit in unsigned int/);
    expect(errorOf(() => build(base({}, { rodata: { verbose: 2 } })))).toMatch(/\/rodata\/verbose: 2 is not a boolean/);
    expect(errorOf(() => build(base({}, { rodata: { big: 2 ** 60 } })))).toMatch(/beyond 2\^53.*decimal string/);
  });

  test('map entries are encoded to exact key/value sizes', () => {
    const req = build(base({}, { maps: { config: [{ key: 0, value: 5 }, { key: 3, value: '0x0100000000000000' }], pairs: [{ key: { a: 1, b: 2, c: 3 }, value: [1, 2] }, { key: '0x0102030405060708', value: 65535 }] } }));
    const hex = (s: string) => Buffer.from(s, 'base64').toString('hex');
    expect(req.mapInit.map((e) => [e.map, hex(e.key), hex(e.value)])).toEqual([
      [0, '00000000', '0500000000000000'],
      [0, '03000000', '0100000000000000'],
      [1, '0100000002000300', '0102'],
      [1, '0102030405060708', 'ffff'],
    ]);
  });

  test('map entry errors: unknown map, key too big, wrong raw size, unknown field', () => {
    expect(errorOf(() => build(base({}, { maps: { nope: [] } })))).toMatch(/\/objects\/0\/maps\/nope: no map "nope" .*\(maps: config, pairs\)$/);
    expect(errorOf(() => build(base({}, { maps: { config: [{ key: 4294967296, value: 1 }] } })))).toMatch(/\/maps\/config\/0\/key: 4294967296 does not fit in unsigned int/);
    expect(errorOf(() => build(base({}, { maps: { config: [{ key: 9, value: 1 }] } })))).toMatch(/\/maps\/config\/0\/key: index 9 is out of range .*max_entries 4/);
    expect(errorOf(() => build(base({}, { maps: { pairs: [{ key: '0x01', value: 1 }] } })))).toMatch(/\/maps\/pairs\/0\/key: hex "0x01" has 1 bytes; expected exactly 8/);
    expect(errorOf(() => build(base({}, { maps: { pairs: [{ key: { d: 1 }, value: 1 }] } })))).toMatch(/\/maps\/pairs\/0\/key: struct pair has no field "d" \(fields: a, b, c\)$/);
    expect(errorOf(() => build(base({}, { maps: { pairs: [{ key: 1, value: 70000 }] } })))).toMatch(/\/maps\/pairs\/0\/key: a number cannot fill struct pair/);
  });
});

test('victim fixture path helper exists (paths are absolute)', () => {
  expect(path.isAbsolute(victimPath('x'))).toBe(true);
});

test('JSON that ends early says so', () => {
  expect(errorOf(() => loadManifest(write('{"objects": [')))).toMatch(/invalid JSON \(the text ends early\)/);
});

test('address excludes binary/symbol; syscall excludes uprobe fields', () => {
  const p = (prog: unknown) => write(base({}, { programs: { on_open: prog } }));
  expect(errorOf(() => loadManifest(p({ type: 'uprobe', address: '0x10', binary: './victim' })))).toMatch(/on_open: "address" is absolute: do not combine it with binary\/symbol\/offset$/);
  expect(errorOf(() => loadManifest(p({ type: 'syscall', phase: 'enter', syscall: 'read', symbol: 'x' })))).toMatch(/on_open: a syscall program takes "phase" and "syscall", not binary\/symbol\/offset\/address$/);
  expect(errorOf(() => loadManifest(p({ type: 'uprobe', binary: './victim', symbol: 'f', phase: 'enter' })))).toMatch(/on_open: "phase" and "syscall" belong to type "syscall"$/);
});

describe('prog_array slots and programs on several attach points', () => {
  const tc = loadObject(bpfObjectPath('manifest_tailcall'));
  const idxOf = (name: string) => tc.programs.findIndex((p) => p.name === name);
  const slot = (e: { key: string; value: string }) => [Buffer.from(e.key, 'base64').readUInt32LE(0), Buffer.from(e.value, 'base64').readUInt32LE(0)];

  test('declarative .values and manifest entries (by name or index) fill the slots; targets need no attach point', () => {
    const req = buildLoadRequest([tc], [{ path: tc.path, programs: {}, rodata: {}, maps: { filled: [{ key: 0, value: 'handle_a' }, { key: 3, value: idxOf('handle_b') }] } }]);
    expect(req.links.map((l) => l.program)).toEqual(['dispatch']);
    const declared = tc.maps.find((m) => m.name === 'declared')!.index;
    const filled = tc.maps.find((m) => m.name === 'filled')!.index;
    expect(req.mapInit.filter((e) => e.map === declared).map(slot)).toEqual([[2, idxOf('handle_b')]]);
    expect(req.mapInit.filter((e) => e.map === filled).map(slot)).toEqual([[0, idxOf('handle_a')], [3, idxOf('handle_b')]]);
  });

  test('bad slots name the JSON path', () => {
    const f = write({ target: { spawn: ['./victim'] }, objects: [{ path: tc.path, maps: { filled: [{ key: 9, value: 'handle_a' }] } }] });
    const m = loadManifest(f);
    expect(errorOf(() => buildLoadRequest([tc], m.objects))).toBe(`${f}: /objects/0/maps/filled/0/key: a prog_array slot is an index 0..3`);
    const g = write({ target: { spawn: ['./victim'] }, objects: [{ path: tc.path, maps: { filled: [{ key: 1, value: 'nosuch' }] } }] });
    expect(errorOf(() => buildLoadRequest([tc], loadManifest(g).objects))).toMatch(/\/objects\/0\/maps\/filled\/0\/value: no program "nosuch" .* \(a prog_array slot holds a program: /);
  });

  test('a list of attach points: one link each, cookies per point', () => {
    const f = write(base({}, {
      programs: {
        ...okPrograms,
        on_bare: [
          { type: 'uprobe', binary: './victim', symbol: 'f', cookie: 1 },
          { type: 'uretprobe', binary: './victim', symbol: 'g', cookie: 2 },
          { type: 'syscall', phase: 'enter', syscall: 'read' },
        ],
      },
    }));
    const m = loadManifest(f);
    const req = buildLoadRequest(m.objects.map((o) => loadObject(o.path)), m.objects);
    expect(req.links.filter((l) => l.program === 'on_bare').map((l) => [l.attach.kind, l.cookie])).toEqual([['uprobe', '1'], ['uprobe', '2'], ['syscall', undefined]]);
    expect(req.links.filter((l) => l.program === 'on_bare')[1].attach).toMatchObject({ mode: 'return', symbol: 'g' });
    const bad = write(base({}, { programs: { ...okPrograms, on_bare: [{ type: 'uprobe', binary: './victim', symbol: 'f' }, { binary: './victim' }] } }));
    expect(errorOf(() => loadManifest(bad))).toMatch(/\/objects\/0\/programs\/on_bare\/1/);
  });
});

describe('out-of-range values (#12 item 8): one line naming the JSON path', () => {
  test('more initial entries than max_entries', () => {
    const pairs = Array.from({ length: 17 }, (_, i) => ({ key: { a: i, b: 0, c: 0 }, value: 1 }));
    expect(errorOf(() => build(base({}, { maps: { pairs } })))).toMatch(/\/objects\/0\/maps\/pairs: 17 entries for map "pairs", more than its max_entries 16$/);
  });

  test('cookie beyond a u64, negative, or not an integer', () => {
    const withCookie = (cookie: unknown) => base({}, { programs: { ...okPrograms, on_bare: { ...okPrograms.on_bare, cookie } } });
    expect(errorOf(() => loadManifest(write(withCookie(1.5))))).toMatch(/\/programs\/on_bare\/cookie: must be string or integer$/);
    for (const c of [1e40, -1, '18446744073709551616', 'abc']) {
      expect(errorOf(() => loadManifest(write(withCookie(c))))).toMatch(/\/objects\/0\/programs\/on_bare\/cookie: must be an integer from 0 to 2\^64-1/);
    }
    expect(loadManifest(write(withCookie('18446744073709551615'))).objects[0].programs.on_bare.cookie).toBe('18446744073709551615');
    expect(loadManifest(write(withCookie('0x10'))).objects[0].programs.on_bare.cookie).toBe('16');
  });

  test('output.interval outside 0.01 .. 86400 s', () => {
    for (const interval of [1e308, 1e-9, 0.001]) {
      expect(errorOf(() => loadManifest(write(base({ output: { interval } }))))).toMatch(/\/output\/interval: must be between 0.01 and 86400 seconds/);
    }
    expect(loadManifest(write(base({ output: { interval: 0.5 } }))).output.interval).toBe(0.5);
  });
});
