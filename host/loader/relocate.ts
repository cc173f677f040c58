// Code sections → linked programs. Each program is its entry function followed by every
// subprogram it reaches (bpf-to-bpf calls and function pointers, transitively), with call
// offsets rewritten for the concatenated layout and lddw map/global references rewritten to
// the PSEUDO_MAP_FD / PSEUDO_MAP_VALUE forms.

import { PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE } from '../../protocol/spec';
import {
  SHN_UNDEF, SHN_LORESERVE, SHF_EXECINSTR, STB_LOCAL, STT_FUNC, STT_SECTION,
  type ElfRelocation, type ElfSection, type ElfSymbol, type SymbolIndex,
} from './elf';
import { fail, hex, withContext } from './errors';
import type { Externs } from './externs';
import type { LoadedMap } from './maps';

export const R_BPF_NONE = 0;
export const R_BPF_64_64 = 1;
export const R_BPF_64_ABS64 = 2;
export const R_BPF_64_ABS32 = 3;
export const R_BPF_64_NODYLD32 = 4;
export const R_BPF_64_32 = 10;

const OP_LDDW = 0x18;
const OP_CALL = 0x85;
const INSN = 8;
const PSEUDO_CALL = 1;

/** A function in a code section: a program entry or a subprogram. */
export interface CodeFunc {
  name: string;
  section: CodeSection;
  /** Instruction index range within the section. */
  start: number;
  end: number;
  global: boolean;
}

/** What a relocation says about one instruction. */
type InsnReloc =
  | { kind: 'map'; map: number }
  | { kind: 'value'; map: number; offset: number }
  | { kind: 'call'; target: CodeTarget }
  | { kind: 'func'; target: CodeTarget }
  /** An extern nothing here defines: the instruction stays as it is and the program is refused. */
  | { kind: 'extern'; name: string; reason: string };

interface CodeTarget {
  section: CodeSection;
  insn: number;
}

export interface CodeSection {
  sec: ElfSection;
  /** Private copy of the instructions (CO-RE patches go here). */
  code: Uint8Array;
  funcs: CodeFunc[];
  relocs: Map<number, InsnReloc>;
}

export interface LinkedProgram {
  name: string;
  section: string;
  code: Uint8Array;
  helpers: number[];
  maps: number[];
  unresolvedExterns: { name: string; reason: string }[];
}

/** Functions of an executable section, from its STT_FUNC symbols. */
export function codeSection(sec: ElfSection, symbols: SymbolIndex): CodeSection {
  return withContext(`section "${sec.name}"`, () => {
    if (sec.size % INSN !== 0) fail(`size ${sec.size} is not a multiple of 8 (not eBPF code)`);
    const cs: CodeSection = { sec, code: new Uint8Array(sec.data), funcs: [], relocs: new Map() };
    const n = sec.size / INSN;
    const syms = symbols.inSection(sec.index).filter((s) => s.type === STT_FUNC);
    const starts = new Set<number>();
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i];
      withContext(`function "${s.name}"`, () => {
        if (s.value % INSN !== 0 || s.value / INSN >= n) fail(`start ${hex(s.value)} is misaligned or past the end of the section`);
        const start = s.value / INSN;
        const next = i + 1 < syms.length ? syms[i + 1].value / INSN : n;
        let end = s.size > 0 ? start + s.size / INSN : next;
        if (!Number.isInteger(end) || end > n) fail(`size ${s.size} runs past the end of the section`);
        if (end <= start) end = Math.min(n, start + 1);
        if (starts.has(start)) return;
        starts.add(start);
        cs.funcs.push({ name: s.name, section: cs, start, end, global: s.bind !== STB_LOCAL });
      });
    }
    if (cs.funcs.length === 0 && n > 0) {
      // Hand-written or stripped objects: the section is one function named after it.
      cs.funcs.push({ name: sec.name.replace(/[^A-Za-z0-9_]/g, '_'), section: cs, start: 0, end: n, global: true });
    }
    return cs;
  });
}

/** The function containing `insn` (funcs are sorted by start; sizes may overlap in odd objects). */
function funcAt(cs: CodeSection, insn: number): CodeFunc | undefined {
  let lo = 0;
  let hi = cs.funcs.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cs.funcs[mid].start <= insn) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  const f = best >= 0 ? cs.funcs[best] : undefined;
  return f && insn < f.end ? f : undefined;
}

/**
 * Records the relocations of one code section. `mapAt` finds the map defined at a section
 * offset; `codeOf` the code section with a given ELF index.
 */
export function recordRelocations(
  cs: CodeSection,
  relocs: readonly ElfRelocation[],
  symbols: readonly ElfSymbol[],
  sections: readonly ElfSection[],
  mapsBySection: ReadonlyMap<number, readonly LoadedMap[]>,
  mapAt: ReadonlyMap<string, LoadedMap>,
  codeOf: (idx: number) => CodeSection | undefined,
  externs: Externs,
): void {
  const view = new DataView(cs.code.buffer, cs.code.byteOffset, cs.code.byteLength);
  for (const rel of relocs) {
    withContext(`section "${cs.sec.name}": relocation at ${hex(rel.offset)}`, () => {
      if (rel.type === R_BPF_NONE) return;
      if (rel.symbol >= symbols.length) fail(`symbol index ${rel.symbol} out of range (${symbols.length} symbols)`);
      if (rel.offset % INSN !== 0 || rel.offset + INSN > cs.code.length) fail(`offset is misaligned or past the end of the section (${cs.code.length} bytes)`);
      const sym = symbols[rel.symbol];
      const symName = sym.name || (sym.type === STT_SECTION && sym.shndx < sections.length ? sections[sym.shndx].name : `#${sym.index}`);
      const idx = rel.offset / INSN;
      const opcode = cs.code[rel.offset];
      const imm = view.getInt32(rel.offset + 4, true) + rel.addend;
      if (sym.shndx === SHN_UNDEF) {
        if (rel.type !== R_BPF_64_64 && rel.type !== R_BPF_64_32) fail(`relocation type ${rel.type} against extern "${symName}"`);
        const r = externs.resolve(symName, opcode === OP_CALL);
        if (r.kind === 'value') {
          if (opcode !== OP_LDDW || rel.offset + 2 * INSN > cs.code.length) fail(`extern "${symName}" is referenced by opcode ${hex(opcode)}, expected lddw`);
          cs.relocs.set(idx, { kind: 'value', map: r.map, offset: r.offset });
        } else {
          cs.relocs.set(idx, { kind: 'extern', name: symName, reason: r.reason });
        }
        return;
      }
      if (sym.shndx >= SHN_LORESERVE || sym.shndx >= sections.length) fail(`symbol "${symName}" has special section index ${hex(sym.shndx)}`);
      const target = sections[sym.shndx];
      switch (rel.type) {
        case R_BPF_64_64: {
          if (opcode !== OP_LDDW) fail(`R_BPF_64_64 on opcode ${hex(opcode)}, expected lddw`);
          if (rel.offset + 2 * INSN > cs.code.length) fail('lddw is truncated');
          if (target.flags & SHF_EXECINSTR) {
            const off = sym.value + imm;
            if (off % INSN !== 0) fail(`function pointer to "${symName}"+${imm} is misaligned`);
            cs.relocs.set(idx, { kind: 'func', target: codeTarget(codeOf, sym.shndx, off / INSN, symName) });
            return;
          }
          const inSection = mapsBySection.get(sym.shndx) ?? [];
          if (inSection.length === 0) fail(`symbol "${symName}" is in section "${target.name}", which holds no maps or global data`);
          if (inSection[0].spec.origin === 'btf' || inSection[0].spec.origin === 'legacy') {
            const off = sym.type === STT_SECTION ? sym.value + imm : sym.value;
            const m = mapAt.get(`${sym.shndx}:${off}`);
            if (!m) fail(`no map defined at offset ${off} of section "${target.name}" (symbol "${symName}")`);
            cs.relocs.set(idx, { kind: 'map', map: m.spec.index });
          } else {
            const off = sym.value + imm;
            if (off < 0 || off > inSection[0].spec.valueSize) fail(`reference to "${symName}"+${imm} is outside section "${target.name}"`);
            cs.relocs.set(idx, { kind: 'value', map: inSection[0].spec.index, offset: off });
          }
          return;
        }
        case R_BPF_64_32: {
          if (opcode !== OP_CALL || (cs.code[rel.offset + 1] >> 4) !== PSEUDO_CALL) fail(`R_BPF_64_32 on an instruction that is not a bpf-to-bpf call`);
          if (!(target.flags & SHF_EXECINSTR)) fail(`call target "${symName}" is not in a code section`);
          const insn = sym.value / INSN + imm + 1;
          if (!Number.isInteger(insn)) fail(`call target "${symName}" is misaligned`);
          cs.relocs.set(idx, { kind: 'call', target: codeTarget(codeOf, sym.shndx, insn, symName) });
          return;
        }
        case R_BPF_64_ABS64:
        case R_BPF_64_ABS32:
        case R_BPF_64_NODYLD32:
          return fail(`relocation type ${rel.type} is for data, not code`);
        default:
          return fail(`unknown relocation type ${rel.type} (symbol "${symName}")`);
      }
    });
  }
}

function codeTarget(codeOf: (idx: number) => CodeSection | undefined, shndx: number, insn: number, what: string): CodeTarget {
  const section = codeOf(shndx);
  if (!section) fail(`target "${what}" is in a section that is not code`);
  if (insn < 0 || insn >= section.code.length / INSN) fail(`target "${what}" (insn ${insn}) is outside section "${section.sec.name}"`);
  return { section, insn };
}

/** Instruction limit of one linked program (the kernel's verifier limit). */
export const MAX_PROGRAM_INSNS = 1_000_000;

/** Links `entry` with the subprograms it reaches into one instruction stream. */
export function linkProgram(entry: CodeFunc): LinkedProgram {
  return withContext(`program "${entry.name}"`, () => {
    const placed = new Map<CodeFunc, number>();
    const order: CodeFunc[] = [];
    let total = 0;
    const place = (f: CodeFunc): number => {
      let base = placed.get(f);
      if (base === undefined) {
        base = total;
        placed.set(f, base);
        order.push(f);
        total += f.end - f.start;
        if (total > MAX_PROGRAM_INSNS) fail(`more than ${MAX_PROGRAM_INSNS} instructions after linking subprograms`);
      }
      return base;
    };
    place(entry);
    // Pending pc-relative fixups: instruction index in the output → target.
    const fixups: { at: number; target: CodeTarget; kind: 'call' | 'func' }[] = [];
    const chunks: Uint8Array[] = [];
    const resolved: { at: number; dest: number }[] = [];
    const pendingResolve = (fx: { at: number; target: CodeTarget; kind: 'call' | 'func' }): void => {
      const tf = funcAt(fx.target.section, fx.target.insn);
      if (!tf) fail(`call target insn ${fx.target.insn} in section "${fx.target.section.sec.name}" is not inside a function`);
      const base = place(tf);
      resolved.push({ at: fx.at, dest: base + (fx.target.insn - tf.start) });
    };
    const helpers = new Set<number>();
    const maps = new Set<number>();
    const externs = new Map<string, string>();
    // `order` grows while we walk it; each function is placed once, so this ends.
    for (let k = 0; k < order.length; k++) {
      const f = order[k];
      const base = placed.get(f)!;
      const out = f.section.code.slice(f.start * INSN, f.end * INSN);
      const view = new DataView(out.buffer);
      withContext(`function "${f.name}" in section "${f.section.sec.name}"`, () => {
        for (let i = 0; i < f.end - f.start; i++) {
          const src = f.start + i;
          const o = i * INSN;
          const opcode = out[o];
          const rel = f.section.relocs.get(src);
          if (rel) {
            if (rel.kind === 'extern') {
              externs.set(rel.name, rel.reason);
            } else if (rel.kind === 'map' || rel.kind === 'value') {
              if (o + 2 * INSN > out.length) fail(`lddw at insn ${src} is cut off by the end of the function`);
              out[o + 1] = (out[o + 1] & 0x0f) | ((rel.kind === 'map' ? PSEUDO_MAP_FD : PSEUDO_MAP_VALUE) << 4);
              view.setInt32(o + 4, rel.map, true);
              view.setInt32(o + 12, rel.kind === 'value' ? rel.offset : 0, true);
              maps.add(rel.map);
            } else if (rel.kind === 'func') {
              if (o + 2 * INSN > out.length) fail(`lddw at insn ${src} is cut off by the end of the function`);
              out[o + 1] = (out[o + 1] & 0x0f) | (PSEUDO_FUNC << 4);
              view.setInt32(o + 12, 0, true);
              fixups.push({ at: base + i, target: rel.target, kind: 'func' });
            } else {
              fixups.push({ at: base + i, target: rel.target, kind: 'call' });
            }
          } else if (opcode === OP_CALL && (out[o + 1] >> 4) === PSEUDO_CALL) {
            // Call within the same section without a relocation: already pc-relative.
            const insn = src + 1 + view.getInt32(o + 4, true);
            if (insn < 0 || insn >= f.section.code.length / INSN) fail(`call at insn ${src} jumps outside the section`);
            fixups.push({ at: base + i, target: { section: f.section, insn }, kind: 'call' });
          } else if (opcode === OP_CALL && (out[o + 1] >> 4) === 0) {
            helpers.add(view.getInt32(o + 4, true));
          } else if (opcode === OP_LDDW && ((out[o + 1] >> 4) === PSEUDO_MAP_FD || (out[o + 1] >> 4) === PSEUDO_MAP_VALUE)) {
            fail(`lddw at insn ${src} refers to a map without a relocation`);
          }
          if (opcode === OP_LDDW) i++;
        }
      });
      chunks.push(out);
      for (const fx of fixups.splice(0)) pendingResolve(fx);
    }
    const code = new Uint8Array(total * INSN);
    let pos = 0;
    for (const c of chunks) {
      code.set(c, pos);
      pos += c.length;
    }
    const view = new DataView(code.buffer);
    for (const r of resolved) view.setInt32(r.at * INSN + 4, r.dest - (r.at + 1), true);
    return {
      name: entry.name,
      section: entry.section.sec.name,
      code,
      helpers: [...helpers].sort((a, b) => a - b),
      maps: [...maps].sort((a, b) => a - b),
      unresolvedExterns: [...externs].map(([name, reason]) => ({ name, reason })),
    };
  });
}
