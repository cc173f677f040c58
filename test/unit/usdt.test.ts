// USDT on the host: notes read from a real sys/sdt.h victim (checked against readelf and
// objdump), argument specs turned into usdt.bpf.h records, and links expanded per site.
import { execFileSync } from 'child_process';
import { readUsdtBinary } from '../../host/usdt/stapsdt';
import { BPF_USDT_ARG_CONST, BPF_USDT_ARG_REG, BPF_USDT_ARG_REG_DEREF, parseUsdtArgs } from '../../host/usdt/usdtArgs';
import { expandUsdt } from '../../host/usdt/usdtLinks';
import { sectionAttach } from '../../host/loader/sections';
import type { LoadRequest } from '../../protocol/messages';
import type { ObjectSpec } from '../../protocol/spec';
import { victimPath } from '../support/paths';

const victim = victimPath('sdtprobes');

describe('notes', () => {
  test('every probe of the victim, as readelf shows them, with the nop at each site', () => {
    const bin = readUsdtBinary(victim);
    const readelf = execFileSync('readelf', ['-n', victim], { encoding: 'utf8' });
    const expected = [...readelf.matchAll(/Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: 0x[0-9a-f]+, Semaphore: (0x[0-9a-f]+)\s+Arguments: ([^\n]*)/g)].map((m) => ({
      provider: m[1],
      name: m[2],
      vaddr: Number(m[3]),
      semaphore: Number(m[4]),
      args: m[5].trim(),
    }));
    expect(bin.sites.map((s) => ({ provider: s.provider, name: s.name, vaddr: s.vaddr, semaphore: s.semaphoreOffset ?? 0, args: s.args }))).toEqual(expected);
    // A PIE's text is mapped at its file offset: the site's byte in the file is the probe's nop.
    const file = require('fs').readFileSync(victim) as Buffer;
    for (const s of bin.sites) expect(file[s.fileOffset]).toBe(0x90);
    expect(bin.symbol('total')).toBe(Number('0x' + execFileSync('sh', ['-c', `nm ${victim} | awk '$3 == "total" {print $1}'`], { encoding: 'utf8' }).trim()));
  });

  test('a binary without probes, a missing file, a non-ELF', () => {
    expect(readUsdtBinary('/bin/true').sites).toEqual([]);
    expect(() => readUsdtBinary('/nonexistent')).toThrow(/\/nonexistent: cannot read \(ENOENT\)/);
    expect(() => readUsdtBinary('/etc/hostname')).toThrow(/not an ELF file/);
  });
});

describe('argument specs', () => {
  test('registers of every width, constants, memory, rip-relative globals', () => {
    const sym = (n: string) => ({ total: 0x4048, arr: 0x5000 })[n];
    const a = parseUsdtArgs('-4@%edi 8@%rsi 2@%r8w 1@%sil -1@%al 4@$-5 8@$0x10 -4@-20(%rbp) 8@(%rax) -8@total(%rip) 4@arr+8(%rip) 8@%r15', 0x1183, sym);
    expect(a.map((x) => [x.argType, x.regOff, x.valOff, x.signed, x.bitshift])).toEqual([
      [BPF_USDT_ARG_REG, 112, 0n, true, 32],
      [BPF_USDT_ARG_REG, 104, 0n, false, 0],
      [BPF_USDT_ARG_REG, 72, 0n, false, 48],
      [BPF_USDT_ARG_REG, 104, 0n, false, 56],
      [BPF_USDT_ARG_REG, 80, 0n, true, 56],
      [BPF_USDT_ARG_CONST, 0, -5n, false, 32],
      [BPF_USDT_ARG_CONST, 0, 16n, false, 0],
      [BPF_USDT_ARG_REG_DEREF, 32, -20n, true, 32],
      [BPF_USDT_ARG_REG_DEREF, 80, 0n, false, 0],
      [BPF_USDT_ARG_REG_DEREF, 128, BigInt(0x4048 - 0x1183), true, 0],
      [BPF_USDT_ARG_REG_DEREF, 128, BigInt(0x5008 - 0x1183), false, 32],
      [BPF_USDT_ARG_REG, 0, 0n, false, 0],
    ]);
    expect(parseUsdtArgs('', 0, sym)).toEqual([]);
  });

  test('what usdt.bpf.h cannot express is refused by name', () => {
    const none = () => undefined;
    expect(() => parseUsdtArgs('8@8(%rax,%rbx,4)', 0, none)).toThrow(/base\+index\*scale/);
    expect(() => parseUsdtArgs('1@%ah', 0, none)).toThrow(/register %ah/);
    expect(() => parseUsdtArgs('3@%eax', 0, none)).toThrow(/size 3/);
    expect(() => parseUsdtArgs('8@nosuch(%rip)', 0, none)).toThrow(/symbol nosuch/);
    expect(() => parseUsdtArgs(Array(13).fill('8@%rax').join(' '), 0, none)).toThrow(/at most 12/);
  });
});

describe('links', () => {
  test('section names: usdt/BINARY:PROVIDER:NAME (the binary may hold colons) and bare usdt', () => {
    expect(sectionAttach('usdt/./app:sdt:odd')).toEqual({ ok: true, attach: { kind: 'usdt', binary: './app', provider: 'sdt', name: 'odd' } });
    expect(sectionAttach('usdt//opt/a:b/app:p:n')).toEqual({ ok: true, attach: { kind: 'usdt', binary: '/opt/a:b/app', provider: 'p', name: 'n' } });
    expect(sectionAttach('usdt')).toMatchObject({ ok: true, attach: null });
    // bpftrace's usdt:provider:name: no binary, resolved against the target's binaries.
    expect(sectionAttach('usdt/lc:tick')).toEqual({ ok: true, attach: { kind: 'usdt', provider: 'lc', name: 'tick' } });
  });

  const obj = (withSpecs: boolean): ObjectSpec => ({
    path: 'u.bpf.o',
    license: 'GPL',
    kernelVersion: 0,
    programs: [{ name: 'p', section: 'usdt', code: '', insnCount: 0, attach: null, helpers: [], maps: [] }],
    maps: withSpecs ? [{ index: 0, name: '__bpf_usdt_specs', type: 'array', keySize: 4, valueSize: 208, maxEntries: 2, flags: 0, origin: 'btf', readOnly: false, btfKeyTypeId: 0, btfValueTypeId: 0 }] : [],
    unsupported: [],
    btf: null,
  });

  test('one trap uprobe per site with its semaphore; one spec per distinct arguments and cookie', () => {
    const plan = expandUsdt<Pick<LoadRequest, 'objects' | 'links' | 'mapInit'>>({
      objects: [obj(true)],
      links: [
        { object: 0, program: 'p', attach: { kind: 'usdt', binary: victim, provider: 'sdt', name: 'slow' }, cookie: '77' },
        { object: 0, program: 'p', attach: { kind: 'usdt', binary: victim, provider: 'sdt', name: 'tick' } },
      ],
      mapInit: [],
    });
    const sites = readUsdtBinary(victim).sites;
    const slow = sites.find((s) => s.name === 'slow')!;
    expect(plan.links[0]).toEqual({ object: 0, program: 'p', cookie: '0', attach: { kind: 'uprobe', mode: 'entry', binary: victim, offset: slow.fileOffset, trap: true, semaphoreOffset: slow.semaphoreOffset } });
    expect(plan.links[1].cookie).toBe('1');
    const spec = Buffer.from(plan.mapInit[0].value, 'base64');
    expect(spec.readBigUInt64LE(192)).toBe(77n); // usdt_cookie: what bpf_usdt_cookie() returns
    expect(spec.readInt16LE(200)).toBe(2); // arg_cnt
    expect(spec.readInt32LE(8)).toBe(BPF_USDT_ARG_REG); // arg 0: -8@%rax
    expect(spec.readInt16LE(12)).toBe(80);
    expect(spec.readInt32LE(16 + 8)).toBe(BPF_USDT_ARG_REG_DEREF); // arg 1: total(%rip)
  });

  test('errors name the object, program and probe', () => {
    const link = (name: string, binary = victim) => ({ objects: [obj(true)], links: [{ object: 0, program: 'p', attach: { kind: 'usdt' as const, binary, provider: 'sdt', name } }], mapInit: [] });
    expect(() => expandUsdt(link('nope'))).toThrow(/^u\.bpf\.o: program p: USDT sdt:nope: no such probe in .*sdtprobes \(it has sdt:odd, sdt:tick, sdt:slow, sdt:global\)$/);
    expect(() => expandUsdt(link('odd', '/bin/true'))).toThrow(/it has no USDT probes; was it built with sys\/sdt.h\?/);
    expect(() => expandUsdt(link('odd', 'libnosuch.so.9'))).toThrow(/binary libnosuch.so.9 not found/);
    // Too many distinct specs for the map.
    expect(() => expandUsdt({ ...link('odd'), links: ['odd', 'tick', 'global'].map((name) => ({ object: 0, program: 'p', attach: { kind: 'usdt' as const, binary: victim, provider: 'sdt', name } })) })).toThrow(/more than 2 distinct USDT argument specs/);
  });

  test('without usdt.bpf.h the cookie stays the user\'s and no spec is written', () => {
    const plan = expandUsdt({ objects: [obj(false)], links: [{ object: 0, program: 'p', attach: { kind: 'usdt', binary: victim, provider: 'sdt', name: 'odd' }, cookie: '5' }], mapInit: [] });
    expect(plan.links[0].cookie).toBe('5');
    expect(plan.mapInit).toEqual([]);
  });
});
