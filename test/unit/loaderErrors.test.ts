import { loadObject, loadObjectFromBytes } from '../../host/loader/loadObject';
import { LoaderError } from '../../host/loader/errors';
import { copy, elfOf, fixtureBytes, sectionByName, sectionHeaderOffset, setU16, setU32, setU64 } from '../support/loaderElf';

const NAME = 'loader_maps_globals.bpf.o';
const good = fixtureBytes('loader_maps_globals');

function errorOf(bytes: Uint8Array, name = NAME): LoaderError {
  try {
    loadObjectFromBytes(bytes, `/some/dir/${name}`);
  } catch (e) {
    expect(e).toBeInstanceOf(LoaderError);
    return e as LoaderError;
  }
  throw new Error('expected a LoaderError');
}

/** Offset in the file of the first relocation entry of `relSection`. */
function firstRel(bytes: Uint8Array, relSection: string): number {
  return sectionByName(bytes, relSection).offset;
}

describe('loader: bad input gives a LoaderError naming the fault', () => {
  test('missing file', () => {
    expect(() => loadObject('/nonexistent/x.bpf.o')).toThrow(new LoaderError('/nonexistent/x.bpf.o: cannot read file (ENOENT)'));
  });

  test('empty file', () => {
    expect(errorOf(new Uint8Array(0)).message).toBe(`${NAME}: empty file (not an ELF object)`);
  });

  test('not ELF', () => {
    expect(errorOf(new TextEncoder().encode('hello world, not an object file at all......................................')).message).toBe(`${NAME}: not an ELF file (bad magic)`);
  });

  test('truncated ELF header', () => {
    expect(errorOf(good.slice(0, 40)).message).toBe(`${NAME}: truncated ELF header (40 bytes, need 64)`);
  });

  test('truncated file: section header table past the end', () => {
    expect(errorOf(good.slice(0, 2000)).message).toMatch(new RegExp(`^${NAME}: section header table at 0x[0-9a-f]+ \\(\\d+ entries\\) is past the end of the file \\(2000 bytes\\)$`));
  });

  test('wrong machine', () => {
    const b = copy(good);
    setU16(b, 18, 62);
    expect(errorOf(b).message).toBe(`${NAME}: wrong machine 62 (expected EM_BPF 247): not an eBPF object`);
  });

  test('32-bit and big-endian objects', () => {
    const b = copy(good);
    b[4] = 1;
    expect(errorOf(b).message).toMatch(/not a 64-bit ELF/);
    const c = copy(good);
    c[5] = 2;
    expect(errorOf(c).message).toMatch(/not a little-endian ELF/);
  });

  test('section contents past the end of the file', () => {
    const b = copy(good);
    const text = sectionByName(b, '.text');
    setU64(b, sectionHeaderOffset(b, text.index) + 24, 0xffffff);
    expect(errorOf(b).message).toBe(`${NAME}: section header ${text.index}: contents at 0xffffff+0x${text.size.toString(16)} are past the end of the file (${b.length} bytes)`);
  });

  test('relocation symbol index out of range', () => {
    const b = copy(good);
    const off = firstRel(b, '.reluprobe/./victim:target_func');
    setU32(b, off + 12, 99999);
    const nsyms = elfOf(good).symbols.length;
    expect(errorOf(b).message).toBe(`${NAME}: section "uprobe/./victim:target_func": relocation at 0x18: symbol index 99999 out of range (${nsyms} symbols)`);
  });

  test('unknown relocation type', () => {
    const b = copy(good);
    const off = firstRel(b, '.reluprobe/./victim:target_func');
    setU32(b, off + 8, 77);
    expect(errorOf(b).message).toBe(`${NAME}: section "uprobe/./victim:target_func": relocation at 0x18: unknown relocation type 77 (symbol "target_pid")`);
  });

  test('relocation offset past the end of the section', () => {
    const b = copy(good);
    const off = firstRel(b, '.reluprobe/./victim:target_func');
    setU64(b, off, 0x10000);
    expect(errorOf(b).message).toMatch(/section "uprobe\/.\/victim:target_func": relocation at 0x10000: offset is misaligned or past the end of the section/);
  });

  test('relocation to a missing (undefined) symbol: the program is refused, the object loads', () => {
    const b = copy(good);
    const elf = elfOf(good);
    const sym = elf.symbols.find((s) => s.name === 'target_pid')!;
    const symtab = elf.sections.find((s) => s.type === 2)!;
    setU16(b, symtab.offset + sym.index * 24 + 6, 0);
    const o = loadObjectFromBytes(b, NAME);
    expect(o.programs.find((p) => p.name === 'on_target')?.unresolvedExterns).toEqual([{ name: 'target_pid', reason: 'extern target_pid is defined nowhere in the object' }]);
  });

  test('relocation to a symbol in a section without maps', () => {
    const b = copy(good);
    const elf = elfOf(good);
    const sym = elf.symbols.find((s) => s.name === 'target_pid')!;
    const symtab = elf.sections.find((s) => s.type === 2)!;
    setU16(b, symtab.offset + sym.index * 24 + 6, sectionByName(b, 'license').index);
    expect(errorOf(b).message).toBe(`${NAME}: section "uprobe/./victim:target_func": relocation at 0x18: symbol "target_pid" is in section "license", which holds no maps or global data`);
  });

  test('corrupt BTF: bad magic', () => {
    const b = copy(good);
    setU16(b, sectionByName(b, '.BTF').offset, 0x1234);
    expect(errorOf(b).message).toBe(`${NAME}: section ".BTF": bad magic 0x1234 (expected 0xeb9f)`);
  });

  test('corrupt BTF: dangling type reference', () => {
    const b = copy(good);
    const btf = sectionByName(b, '.BTF').offset;
    // Type [1] is the first record after the 24-byte header; its third word is the referenced type.
    setU32(b, btf + 24 + 8, 99999);
    expect(errorOf(b).message).toMatch(new RegExp(`^${NAME}: section ".BTF": type \\[1\\]: .* refers to type 99999, but there are only \\d+ types$`));
  });

  test('corrupt BTF: unknown kind and strings out of range', () => {
    const b = copy(good);
    const btf = sectionByName(b, '.BTF').offset;
    setU32(b, btf + 24 + 4, 31 << 24);
    expect(errorOf(b).message).toBe(`${NAME}: section ".BTF": type [1] at 0x0: unknown kind 31`);
    const c = copy(good);
    setU32(c, btf + 24, 0x7ffffff0);
    expect(errorOf(c).message).toMatch(/section ".BTF": type \[1\] at 0x0: name: string offset 0x7ffffff0 is outside the string table/);
  });

  test('corrupt BTF.ext', () => {
    const b = copy(good);
    setU16(b, sectionByName(b, '.BTF.ext').offset, 0);
    expect(errorOf(b).message).toBe(`${NAME}: section ".BTF.ext": bad magic 0x0`);
  });

  test('bad CO-RE relocation names the instruction', () => {
    const core = fixtureBytes('loader_core');
    // Make the first load of core_regs disagree with the local value the relocation expects.
    const sec = sectionByName(core, 'uprobe/./victim:add');
    const b = copy(core);
    setU16(b, sec.offset + 2, 40);
    expect(errorOf(b, 'loader_core.bpf.o').message).toBe('loader_core.bpf.o: section "uprobe/./victim:add": CO-RE relocation (field_byte_offset) at insn 0: instruction offset 40 does not match the local value 0');
  });
});
