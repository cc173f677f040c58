// ELF64 little-endian relocatable objects for EM_BPF: section headers, symbols, string
// tables and relocation entries. Every offset read from the file is checked against its size.

import { fail, hex, withContext } from './errors';

export const EM_BPF = 247;
export const ET_REL = 1;

export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;

export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;

export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;

export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const MAX_SECTIONS = 65535;
const MAX_NAME = 4096;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
  /** Contents; empty for NOBITS (a .bss has a size but no bytes in the file). */
  data: Uint8Array;
}

export interface ElfSymbol {
  index: number;
  name: string;
  value: number;
  size: number;
  bind: number;
  type: number;
  shndx: number;
}

export interface ElfRelocation {
  /** Byte offset in the section the relocations apply to. */
  offset: number;
  type: number;
  symbol: number;
  /** Only RELA entries carry one; REL entries (what clang emits for BPF) keep it in the instruction. */
  addend: number;
}

export interface ElfFile {
  sections: ElfSection[];
  symbols: ElfSymbol[];
}

/** Bounds-checked little-endian reads; anything past the end is a LoaderError. */
export class ByteReader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, private readonly what: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.bytes.length;
  }
  check(off: number, len: number): void {
    if (!Number.isSafeInteger(off) || off < 0 || len < 0 || off + len > this.bytes.length) {
      fail(`${this.what}: read of ${len} bytes at ${hex(Math.max(0, off))} is past the end (${this.bytes.length} bytes)`);
    }
  }
  u8(off: number): number {
    this.check(off, 1);
    return this.view.getUint8(off);
  }
  u16(off: number): number {
    this.check(off, 2);
    return this.view.getUint16(off, true);
  }
  u32(off: number): number {
    this.check(off, 4);
    return this.view.getUint32(off, true);
  }
  i32(off: number): number {
    this.check(off, 4);
    return this.view.getInt32(off, true);
  }
  /** A u64 that must fit a JS number exactly (offsets and sizes of a file that fits in memory). */
  u64(off: number, field: string): number {
    this.check(off, 8);
    const lo = this.view.getUint32(off, true);
    const hi = this.view.getUint32(off + 4, true);
    if (hi >= 0x200000) fail(`${field} 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} is too large`);
    return hi * 0x100000000 + lo;
  }
  /** i64 as a number (relocation addends). */
  i64(off: number, field: string): number {
    this.check(off, 8);
    const v = this.view.getBigInt64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) fail(`${field} ${v} is out of range`);
    return Number(v);
  }
  slice(off: number, len: number): Uint8Array {
    this.check(off, len);
    return this.bytes.subarray(off, off + len);
  }
}

/** NUL-terminated string at `off` of a string table. */
export function cString(table: Uint8Array, off: number, what: string): string {
  if (!Number.isInteger(off) || off < 0 || off >= table.length) {
    if (off === 0 && table.length === 0) return '';
    fail(`${what}: string offset ${hex(off)} is outside the string table (${table.length} bytes)`);
  }
  const limit = Math.min(table.length, off + MAX_NAME);
  let end = off;
  while (end < limit && table[end] !== 0) end++;
  if (end >= limit) fail(`${what}: string at ${hex(off)} is not NUL-terminated`);
  let s = '';
  for (let i = off; i < end; i++) s += String.fromCharCode(table[i]);
  // Names are ASCII in practice; decode UTF-8 properly when they are not.
  if (/[\x80-\xff]/.test(s)) s = new TextDecoder('utf-8', { fatal: false }).decode(table.subarray(off, end));
  return s;
}

export function parseElf(bytes: Uint8Array): ElfFile {
  const r = new ByteReader(bytes, 'ELF');
  if (bytes.length === 0) fail('empty file (not an ELF object)');
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    fail('not an ELF file (bad magic)');
  }
  if (bytes.length < EHDR_SIZE) fail(`truncated ELF header (${bytes.length} bytes, need ${EHDR_SIZE})`);
  if (bytes[4] !== 2) fail(`not a 64-bit ELF (class ${bytes[4]})`);
  if (bytes[5] !== 1) fail(`not a little-endian ELF (data encoding ${bytes[5]})`);
  const type = r.u16(16);
  const machine = r.u16(18);
  if (machine !== EM_BPF) fail(`wrong machine ${machine} (expected EM_BPF ${EM_BPF}): not an eBPF object`);
  if (type !== ET_REL) fail(`ELF type ${type} is not a relocatable object (clang -c output)`);
  const shoff = r.u64(40, 'section header offset');
  const shentsize = r.u16(58);
  let shnum = r.u16(60);
  let shstrndx = r.u16(62);
  if (shoff === 0) fail('no section header table');
  if (shentsize !== SHDR_SIZE) fail(`section header size ${shentsize} (expected ${SHDR_SIZE})`);
  // Extended numbering: counts that do not fit 16 bits live in section header 0.
  if (shnum === 0) shnum = withContext('section header 0', () => r.u64(shoff + 32, 'section count'));
  if (shstrndx === 0xffff) shstrndx = withContext('section header 0', () => r.u32(shoff + 40));
  if (shnum > MAX_SECTIONS) fail(`too many sections (${shnum})`);
  if (shoff + shnum * SHDR_SIZE > bytes.length) {
    fail(`section header table at ${hex(shoff)} (${shnum} entries) is past the end of the file (${bytes.length} bytes)`);
  }
  if (shstrndx >= shnum) fail(`section name table index ${shstrndx} out of range (${shnum} sections)`);

  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * SHDR_SIZE;
    const hdr = withContext(`section header ${i}`, () => ({
      nameOff: r.u32(h),
      type: r.u32(h + 4),
      flags: r.u64(h + 8, 'flags'),
      offset: r.u64(h + 24, 'offset'),
      size: r.u64(h + 32, 'size'),
      link: r.u32(h + 40),
      info: r.u32(h + 44),
      entsize: r.u64(h + 56, 'entsize'),
    }));
    if (hdr.type !== SHT_NOBITS && hdr.type !== SHT_NULL && hdr.offset + hdr.size > bytes.length) {
      fail(`section header ${i}: contents at ${hex(hdr.offset)}+${hex(hdr.size)} are past the end of the file (${bytes.length} bytes)`);
    }
    raw.push(hdr);
  }
  const shstr = raw[shstrndx];
  if (shstr.type !== SHT_STRTAB) fail(`section name table (section ${shstrndx}) is not a string table`);
  const shstrData = bytes.subarray(shstr.offset, shstr.offset + shstr.size);
  const sections: ElfSection[] = raw.map((h, index) => ({
    index,
    name: withContext(`section header ${index}`, () => cString(shstrData, h.nameOff, 'section name')),
    type: h.type,
    flags: h.flags,
    offset: h.offset,
    size: h.size,
    link: h.link,
    info: h.info,
    entsize: h.entsize,
    data: h.type === SHT_NOBITS || h.type === SHT_NULL ? new Uint8Array(0) : bytes.subarray(h.offset, h.offset + h.size),
  }));

  const symtabs = sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length > 1) fail('more than one symbol table');
  const symbols = symtabs.length ? parseSymbols(symtabs[0], sections) : [];
  return { sections, symbols };
}

function parseSymbols(symtab: ElfSection, sections: ElfSection[]): ElfSymbol[] {
  return withContext(`section "${symtab.name}"`, () => {
    if (symtab.entsize !== SYM_SIZE) fail(`symbol entry size ${symtab.entsize} (expected ${SYM_SIZE})`);
    if (symtab.size % SYM_SIZE !== 0) fail(`size ${symtab.size} is not a multiple of ${SYM_SIZE}`);
    if (symtab.link >= sections.length || sections[symtab.link].type !== SHT_STRTAB) {
      fail(`linked string table ${symtab.link} is not a string table`);
    }
    const strtab = sections[symtab.link].data;
    const r = new ByteReader(symtab.data, 'symbol table');
    const count = symtab.size / SYM_SIZE;
    const out: ElfSymbol[] = [];
    for (let i = 0; i < count; i++) {
      const o = i * SYM_SIZE;
      out.push(
        withContext(`symbol ${i}`, () => {
          const info = r.u8(o + 4);
          const shndx = r.u16(o + 6);
          if (shndx !== SHN_UNDEF && shndx < SHN_LORESERVE && shndx >= sections.length) {
            fail(`section index ${shndx} out of range (${sections.length} sections)`);
          }
          return {
            index: i,
            name: cString(strtab, r.u32(o), 'symbol name'),
            value: r.u64(o + 8, 'value'),
            size: r.u64(o + 16, 'size'),
            bind: info >> 4,
            type: info & 0xf,
            shndx,
          };
        }),
      );
    }
    return out;
  });
}

/** Entries of a SHT_REL or SHT_RELA section. */
export function parseRelocations(sec: ElfSection): ElfRelocation[] {
  const rela = sec.type === SHT_RELA;
  const size = rela ? 24 : 16;
  if (sec.size % size !== 0) fail(`size ${sec.size} is not a multiple of the entry size ${size}`);
  const r = new ByteReader(sec.data, 'relocations');
  const out: ElfRelocation[] = [];
  for (let o = 0; o < sec.size; o += size) {
    const offset = r.u64(o, `relocation at entry ${hex(o)}: offset`);
    const type = r.u32(o + 8);
    const symbol = r.u32(o + 12);
    const addend = rela ? r.i64(o + 16, 'addend') : 0;
    out.push({ offset, type, symbol, addend });
  }
  return out;
}

/** Symbols grouped by section (sorted by value) and by section+name, built once per object. */
export class SymbolIndex {
  private readonly bySection = new Map<number, ElfSymbol[]>();
  private readonly byName = new Map<string, ElfSymbol>();
  constructor(readonly all: readonly ElfSymbol[]) {
    for (const s of all) {
      let list = this.bySection.get(s.shndx);
      if (!list) this.bySection.set(s.shndx, (list = []));
      list.push(s);
      if (s.type !== STT_SECTION && s.name !== '') {
        const key = `${s.shndx}\0${s.name}`;
        if (!this.byName.has(key)) this.byName.set(key, s);
      }
    }
    for (const list of this.bySection.values()) list.sort((a, b) => a.value - b.value);
  }
  /** Symbols defined in section `shndx`, sorted by value. */
  inSection(shndx: number): readonly ElfSymbol[] {
    return this.bySection.get(shndx) ?? [];
  }
  /** The (first) non-section symbol called `name` in section `shndx`. */
  named(shndx: number, name: string): ElfSymbol | undefined {
    return this.byName.get(`${shndx}\0${name}`);
  }
}
