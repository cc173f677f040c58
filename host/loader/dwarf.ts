// The part of DWARF (.debug_info, .debug_abbrev, .debug_str[_offsets]; versions 4 and 5)
// that describes types and the local variables of functions. clang emits BTF only for
// types reachable from maps, globals and function signatures: the `struct event` of a
// libbpf-tools program, used only through `struct event *e = bpf_ringbuf_reserve(...)` or
// a stack variable handed to bpf_perf_event_output, is in DWARF alone (objects are built
// with -g). dwarfTypes.ts turns what this reads into BTF types.
//
// Reads are bounds-checked (ByteReader); relocations of the debug sections are not applied:
// in clang's BPF objects they are REL entries against section symbols (value 0) whose
// addend sits in place, so the bytes already hold the offsets.

import { ByteReader, type ElfSection } from './elf';
import { fail } from './errors';

export const DW_TAG = {
  array_type: 0x01, enumeration_type: 0x04, formal_parameter: 0x05, lexical_block: 0x0b, member: 0x0d, pointer_type: 0x0f,
  compile_unit: 0x11, structure_type: 0x13, subroutine_type: 0x15, typedef: 0x16, union_type: 0x17, inlined_subroutine: 0x1d,
  subrange_type: 0x21, base_type: 0x24, const_type: 0x26, enumerator: 0x28, subprogram: 0x2e, variable: 0x34, volatile_type: 0x35,
  restrict_type: 0x37, atomic_type: 0x47,
} as const;

export const DW_AT = {
  name: 0x03, byte_size: 0x0b, bit_offset: 0x0c, bit_size: 0x0d, const_value: 0x1c, upper_bound: 0x2f, abstract_origin: 0x31,
  count: 0x37, data_member_location: 0x38, declaration: 0x3c, encoding: 0x3e, type: 0x49, data_bit_offset: 0x6b, str_offsets_base: 0x72,
} as const;

export const DW_ATE = { boolean: 0x02, float: 0x04, signed: 0x05, signed_char: 0x06, unsigned: 0x07, unsigned_char: 0x08 } as const;

/** An attribute value: a number (constants, offsets), a string, or a reference to another DIE (by .debug_info offset). */
export type DwValue = { kind: 'num'; value: bigint; signed: boolean } | { kind: 'str'; value: string } | { kind: 'ref'; offset: number } | { kind: 'other' };

export interface Die {
  offset: number;
  tag: number;
  attrs: Map<number, DwValue>;
  children: Die[];
  parent: Die | null;
}

interface AbbrevSpec {
  tag: number;
  children: boolean;
  attrs: { at: number; form: number; implicit?: bigint }[];
}

/** Bounds on the work a corrupt file can cause. */
const MAX_DIES = 2_000_000;
const MAX_DEPTH = 256;

class Cursor {
  constructor(
    readonly r: ByteReader,
    public pos: number,
  ) {}
  u8(): number {
    return this.r.u8(this.pos++);
  }
  u16(): number {
    const v = this.r.u16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.r.u32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.r.check(this.pos, 8);
    const v = this.r.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  uN(n: number): bigint {
    let v = 0n;
    for (let i = 0; i < n; i++) v |= BigInt(this.u8()) << BigInt(8 * i);
    return v;
  }
  uleb(): bigint {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 20; i++) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return v;
    }
    return fail('LEB128 number too long');
  }
  sleb(): bigint {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 20; i++) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return b & 0x40 ? v - (1n << shift) : v;
    }
    return fail('LEB128 number too long');
  }
  cstr(): string {
    const start = this.pos;
    while (this.u8() !== 0) {
      /* scan */
    }
    return Buffer.from(this.r.bytes.subarray(start, this.pos - 1)).toString('utf8');
  }
  skip(n: number | bigint): void {
    const k = Number(n);
    this.r.check(this.pos, k);
    this.pos += k;
  }
}

function parseAbbrevs(data: Uint8Array, offset: number): Map<number, AbbrevSpec> {
  const c = new Cursor(new ByteReader(data, '.debug_abbrev'), offset);
  const out = new Map<number, AbbrevSpec>();
  for (;;) {
    const code = Number(c.uleb());
    if (code === 0) return out;
    const tag = Number(c.uleb());
    const children = c.u8() !== 0;
    const attrs: AbbrevSpec['attrs'] = [];
    for (;;) {
      const at = Number(c.uleb());
      const form = Number(c.uleb());
      if (at === 0 && form === 0) break;
      attrs.push(form === 0x21 ? { at, form, implicit: c.sleb() } : { at, form });
    }
    out.set(code, { tag, children, attrs });
  }
}

interface Unit {
  version: number;
  addrSize: number;
  strOffsetsBase: number;
}

/** Every DIE of every compile unit in `.debug_info`, as trees (one root per unit). */
export function parseDwarf(sections: readonly ElfSection[]): Die[] {
  const sec = (name: string): Uint8Array => sections.find((s) => s.name === name)?.data ?? new Uint8Array(0);
  const info = sec('.debug_info');
  if (info.length === 0) return [];
  const abbrevData = sec('.debug_abbrev');
  const str = sec('.debug_str');
  const lineStr = sec('.debug_line_str');
  const strOffsets = new ByteReader(sec('.debug_str_offsets'), '.debug_str_offsets');
  const cString = (table: Uint8Array, off: number, what: string): string => {
    if (off < 0 || off >= table.length) fail(`${what} offset ${off} is outside its section`);
    const end = table.indexOf(0, off);
    return Buffer.from(table.subarray(off, end < 0 ? table.length : end)).toString('utf8');
  };
  const c = new Cursor(new ByteReader(info, '.debug_info'), 0);
  const roots: Die[] = [];
  let dieCount = 0;
  while (c.pos < info.length) {
    const unitStart = c.pos;
    const length = c.u32();
    if (length === 0xffffffff) fail('64-bit DWARF is not supported');
    const end = c.pos + length;
    const version = c.u16();
    let abbrevOffset: number;
    let addrSize: number;
    if (version >= 5) {
      const unitType = c.u8();
      addrSize = c.u8();
      abbrevOffset = c.u32();
      if (unitType !== 1 && unitType !== 3) {
        c.pos = end; // type, skeleton and split units hold nothing we read
        continue;
      }
    } else if (version >= 2) {
      abbrevOffset = c.u32();
      addrSize = c.u8();
    } else {
      return fail(`DWARF version ${version} is not supported`);
    }
    const abbrevs = parseAbbrevs(abbrevData, abbrevOffset);
    const unit: Unit = { version, addrSize, strOffsetsBase: 8 };
    const strx = (i: bigint): string => {
      const at = unit.strOffsetsBase + Number(i) * 4;
      return cString(str, strOffsets.u32(at), 'string');
    };
    const readValue = (form: number, implicit: bigint | undefined): DwValue => {
      switch (form) {
        case 0x01: return { kind: 'num', value: c.uN(unit.addrSize), signed: false };
        case 0x0b: case 0x0c: return { kind: 'num', value: BigInt(c.u8()), signed: false };
        case 0x05: return { kind: 'num', value: BigInt(c.u16()), signed: false };
        case 0x06: return { kind: 'num', value: BigInt(c.u32()), signed: false };
        case 0x07: return { kind: 'num', value: c.u64(), signed: false };
        case 0x0d: return { kind: 'num', value: c.sleb(), signed: true };
        case 0x0f: return { kind: 'num', value: c.uleb(), signed: false };
        case 0x21: return { kind: 'num', value: implicit ?? 0n, signed: true };
        case 0x19: return { kind: 'num', value: 1n, signed: false };
        case 0x08: return { kind: 'str', value: c.cstr() };
        case 0x0e: return { kind: 'str', value: cString(str, c.u32(), 'string') };
        case 0x1f: return { kind: 'str', value: cString(lineStr, c.u32(), 'line string') };
        case 0x1a: return { kind: 'str', value: strx(c.uleb()) };
        case 0x25: return { kind: 'str', value: strx(c.uN(1)) };
        case 0x26: return { kind: 'str', value: strx(c.uN(2)) };
        case 0x27: return { kind: 'str', value: strx(c.uN(3)) };
        case 0x28: return { kind: 'str', value: strx(c.uN(4)) };
        case 0x11: return { kind: 'ref', offset: unitStart + c.u8() };
        case 0x12: return { kind: 'ref', offset: unitStart + c.u16() };
        case 0x13: return { kind: 'ref', offset: unitStart + c.u32() };
        case 0x14: return { kind: 'ref', offset: unitStart + Number(c.u64()) };
        case 0x15: return { kind: 'ref', offset: unitStart + Number(c.uleb()) };
        case 0x10: return { kind: 'ref', offset: c.u32() };
        case 0x17: return { kind: 'num', value: BigInt(c.u32()), signed: false };
        case 0x1b: case 0x22: case 0x23: return { kind: 'num', value: c.uleb(), signed: false };
        case 0x29: c.skip(1); return { kind: 'other' };
        case 0x2a: c.skip(2); return { kind: 'other' };
        case 0x2b: c.skip(3); return { kind: 'other' };
        case 0x2c: c.skip(4); return { kind: 'other' };
        case 0x03: c.skip(c.u16()); return { kind: 'other' };
        case 0x04: c.skip(c.u32()); return { kind: 'other' };
        case 0x09: case 0x18: c.skip(c.uleb()); return { kind: 'other' };
        case 0x0a: c.skip(c.u8()); return { kind: 'other' };
        case 0x1c: case 0x1d: c.skip(4); return { kind: 'other' };
        case 0x1e: c.skip(16); return { kind: 'other' };
        case 0x20: case 0x24: c.skip(8); return { kind: 'other' };
        case 0x16: return readValue(Number(c.uleb()), undefined);
        default: return fail(`unknown DWARF form 0x${form.toString(16)}`);
      }
    };
    const stack: Die[] = [];
    let root: Die | null = null;
    while (c.pos < end) {
      const offset = c.pos;
      const code = Number(c.uleb());
      if (code === 0) {
        stack.pop();
        continue;
      }
      const ab = abbrevs.get(code);
      if (!ab) fail(`DIE at 0x${offset.toString(16)} uses unknown abbreviation ${code}`);
      if (++dieCount > MAX_DIES) fail('too many DIEs');
      const parent = stack.length ? stack[stack.length - 1] : null;
      const die: Die = { offset, tag: ab.tag, attrs: new Map(), children: [], parent };
      for (const a of ab.attrs) die.attrs.set(a.at, readValue(a.form, a.implicit));
      if (die.tag === DW_TAG.compile_unit) {
        const base = die.attrs.get(DW_AT.str_offsets_base);
        if (base?.kind === 'num') unit.strOffsetsBase = Number(base.value);
      }
      if (parent) parent.children.push(die);
      else root ??= die;
      if (ab.children) {
        if (stack.length >= MAX_DEPTH) fail('DIEs nest too deep');
        stack.push(die);
      }
    }
    // The unit DIE's own strings are read before its str_offsets_base (with the default, 8:
    // the first unit's); nothing here uses them, and every later DIE has the right base.
    if (root) roots.push(root);
    c.pos = end;
  }
  return roots;
}

/** Every DIE of the trees by .debug_info offset (references point at these). */
export function indexDies(roots: readonly Die[]): Map<number, Die> {
  const out = new Map<number, Die>();
  const walk = (d: Die): void => {
    out.set(d.offset, d);
    for (const ch of d.children) walk(ch);
  };
  roots.forEach(walk);
  return out;
}

export function dieName(d: Die): string | undefined {
  const v = d.attrs.get(DW_AT.name);
  return v?.kind === 'str' ? v.value : undefined;
}

export function dieNum(d: Die, at: number): bigint | undefined {
  const v = d.attrs.get(at);
  return v?.kind === 'num' ? v.value : undefined;
}

export function dieRef(d: Die, at: number): number | undefined {
  const v = d.attrs.get(at);
  return v?.kind === 'ref' ? v.offset : undefined;
}
