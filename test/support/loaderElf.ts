// Helpers for loader tests: read real fixture objects and poke at their ELF structures.

import * as fs from 'fs';
import { parseElf, type ElfFile } from '../../host/loader/elf';
import { bpfObjectPath } from './paths';

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(bpfObjectPath(name)));
}

export function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** Byte offset of section header `index` in the file. */
export function sectionHeaderOffset(bytes: Uint8Array, index: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Number(v.getBigUint64(40, true)) + index * 64;
}

export function elfOf(bytes: Uint8Array): ElfFile {
  return parseElf(bytes);
}

export function sectionByName(bytes: Uint8Array, name: string): { index: number; offset: number; size: number } {
  const s = parseElf(bytes).sections.find((x) => x.name === name);
  if (!s) throw new Error(`no section ${name}`);
  return { index: s.index, offset: s.offset, size: s.size };
}

export function setU32(bytes: Uint8Array, off: number, v: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(off, v, true);
}

export function setU16(bytes: Uint8Array, off: number, v: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint16(off, v, true);
}

export function setU64(bytes: Uint8Array, off: number, v: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(off, BigInt(v), true);
}

/** Decoded instructions of a program's base64 code. */
export interface Insn {
  opcode: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

export function decode(codeB64: string): Insn[] {
  const b = Buffer.from(codeB64, 'base64');
  const out: Insn[] = [];
  for (let o = 0; o + 8 <= b.length; o += 8) {
    out.push({ opcode: b[o], dst: b[o + 1] & 0xf, src: b[o + 1] >> 4, off: b.readInt16LE(o + 2), imm: b.readInt32LE(o + 4) });
  }
  return out;
}

/** Small deterministic PRNG (mulberry32) for the fuzz test. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
