// USDT probes of a binary (an executable or a shared library, x86-64 ELF64): the
// `.note.stapsdt` notes sys/sdt.h leaves, one per probe site, with the site's address, the
// semaphore (a counter the program checks before preparing costly arguments; tracers raise
// it while attached) and the arguments' locations. Addresses are turned into what the agent
// can use without the file: the site's file offset (as kernel uprobes take it) and the
// semaphore's offset from the module's load base. Prelinked binaries are handled as libbpf
// and systemtap do: the note's base is compared with where `.stapsdt.base` really is.

import * as fs from 'fs';
import { ByteReader } from '../loader/elf';
import { LoaderError } from '../loader/errors';

const EM_X86_64 = 62;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_DYNSYM = 11;
const NT_STAPSDT = 3;

export interface UsdtSite {
  provider: string;
  name: string;
  /** Link-time address of the probe's nop (after the prelink adjustment). */
  vaddr: number;
  /** Where that nop is in the file. */
  fileOffset: number;
  /** Semaphore offset from the module's load base (its lowest mapped page), or undefined. */
  semaphoreOffset?: number;
  /** The argument specs, as the note spells them: `-4@%edi 8@8(%rbp) -4@$5`. */
  args: string;
}

export interface UsdtBinary {
  path: string;
  sites: UsdtSite[];
  /** Link-time address of a symbol (for `sym(%rip)` arguments). */
  symbol(name: string): number | undefined;
}

export class UsdtError extends LoaderError {}

function fail(msg: string): never {
  throw new UsdtError(msg);
}

function cstr(b: Uint8Array, off: number): string {
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  return Buffer.from(b.subarray(off, end)).toString('utf8');
}

export function readUsdtBinary(file: string): UsdtBinary {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    return fail(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return parse(file, bytes);
  } catch (e) {
    if (e instanceof UsdtError) throw e;
    return fail(`${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function parse(file: string, bytes: Uint8Array): UsdtBinary {
  const r = new ByteReader(bytes, file);
  if (bytes.length < 64 || r.u32(0) !== 0x464c457f) fail(`${file}: not an ELF file`);
  if (bytes[4] !== 2 || bytes[5] !== 1) fail(`${file}: not a 64-bit little-endian ELF`);
  if (r.u16(18) !== EM_X86_64) fail(`${file}: not an x86-64 binary`);
  const phoff = r.u64(32, 'e_phoff');
  const shoff = r.u64(40, 'e_shoff');
  const phnum = r.u16(56);
  const shnum = r.u16(60);
  const shstrndx = r.u16(62);

  const loads: { vaddr: number; offset: number; filesz: number; memsz: number }[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * 56;
    if (r.u32(p) !== PT_LOAD) continue;
    loads.push({ offset: r.u64(p + 8, 'p_offset'), vaddr: r.u64(p + 16, 'p_vaddr'), filesz: r.u64(p + 32, 'p_filesz'), memsz: r.u64(p + 40, 'p_memsz') });
  }
  if (loads.length === 0) fail(`${file}: no loadable segments`);
  const loadBase = Math.min(...loads.map((l) => l.vaddr)) & ~0xfff;

  const secs: { nameOff: number; type: number; addr: number; offset: number; size: number; link: number }[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * 64;
    secs.push({ nameOff: r.u32(h), type: r.u32(h + 4), addr: r.u64(h + 16, 'sh_addr'), offset: r.u64(h + 24, 'sh_offset'), size: r.u64(h + 32, 'sh_size'), link: r.u32(h + 40) });
  }
  const shstr = secs[shstrndx];
  const secName = (s: { nameOff: number }): string => (shstr ? cstr(r.slice(shstr.offset, shstr.size), s.nameOff) : '');
  const stapBase = secs.find((s) => secName(s) === '.stapsdt.base');

  const fileOffsetOf = (vaddr: number): number | undefined => {
    const seg = loads.find((l) => vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz);
    return seg ? vaddr - seg.vaddr + seg.offset : undefined;
  };

  const sites: UsdtSite[] = [];
  for (const s of secs) {
    if (s.type !== SHT_NOTE || secName(s) !== '.note.stapsdt') continue;
    const notes = r.slice(s.offset, s.size);
    const n = new ByteReader(notes, '.note.stapsdt');
    for (let o = 0; o + 12 <= notes.length; ) {
      const namesz = n.u32(o);
      const descsz = n.u32(o + 4);
      const type = n.u32(o + 8);
      const nameAt = o + 12;
      const descAt = nameAt + ((namesz + 3) & ~3);
      o = descAt + ((descsz + 3) & ~3);
      if (type !== NT_STAPSDT || cstr(notes.subarray(nameAt, nameAt + namesz), 0) !== 'stapsdt' || descsz < 24) continue;
      const desc = n.slice(descAt, descsz);
      const d = new ByteReader(desc, 'stapsdt note');
      let pc = d.u64(0, 'pc');
      const base = d.u64(8, 'base');
      let sem = d.u64(16, 'semaphore');
      // Prelink moved the binary: shift by how far .stapsdt.base is from the note's idea of it.
      if (stapBase && base !== 0) {
        pc += stapBase.addr - base;
        if (sem !== 0) sem += stapBase.addr - base;
      }
      const provider = cstr(desc, 24);
      const name = cstr(desc, 24 + Buffer.byteLength(provider) + 1);
      const args = cstr(desc, 24 + Buffer.byteLength(provider) + 1 + Buffer.byteLength(name) + 1);
      const fileOffset = fileOffsetOf(pc);
      if (fileOffset === undefined) fail(`${file}: USDT ${provider}:${name} at 0x${pc.toString(16)} is in no loadable segment`);
      const site: UsdtSite = { provider, name, vaddr: pc, fileOffset, args };
      if (sem !== 0) site.semaphoreOffset = sem - loadBase;
      sites.push(site);
    }
  }

  let symbols: Map<string, number> | null = null;
  const symbol = (name: string): number | undefined => {
    if (symbols === null) {
      symbols = new Map();
      for (const s of secs) {
        if (s.type !== SHT_SYMTAB && s.type !== SHT_DYNSYM) continue;
        const strtab = secs[s.link];
        if (!strtab) continue;
        const strs = r.slice(strtab.offset, strtab.size);
        for (let o = 0; o + 24 <= s.size; o += 24) {
          const at = s.offset + o;
          const value = r.u64(at + 8, 'st_value');
          const shndx = r.u16(at + 6);
          const nm = cstr(strs, r.u32(at));
          if (nm && shndx !== 0 && !symbols.has(nm)) symbols.set(nm, value);
        }
      }
    }
    return symbols.get(name);
  };
  return { path: file, sites, symbol };
}
