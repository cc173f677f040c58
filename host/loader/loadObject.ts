// Entry point: a clang-built eBPF object file → ObjectSpec (protocol/spec.ts).

import * as fs from 'fs';
import * as path from 'path';
import type { BtfSpec } from '../../protocol/btf';
import type { MapSpec, ObjectSpec, ProgramSpec, UnsupportedProgram } from '../../protocol/spec';
import { parseBtf } from './btf';
import { parseBtfExt, type BtfExt } from './btfExt';
import { applyCoreRelos } from './coreRelo';
import { parseElf, parseRelocations, SHF_EXECINSTR, SHT_PROGBITS, SHT_REL, SHT_RELA, SymbolIndex, type ElfSection } from './elf';
import { fail, LoaderError, withContext } from './errors';
import { collectExterns } from './externs';
import { parseDwarf } from './dwarf';
import { mergeDwarfTypes } from './dwarfTypes';
import { btfMaps, dataMap, declaredSlots, fixupDatasecs, isDataSection, legacyMaps, type LoadedMap } from './maps';
import { codeSection, linkProgram, recordRelocations, type CodeSection } from './relocate';
import { sectionAttach } from './sections';

export { LoaderError } from './errors';

/** Bound on the work of linking (each program gets its own copy of the subprograms it calls). */
const MAX_TOTAL_INSNS = 4_000_000;

export function loadObject(file: string): ObjectSpec {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoaderError(`${file}: cannot read file${code ? ` (${code})` : ''}`);
  }
  return loadObjectFromBytes(bytes, file);
}

export function loadObjectFromBytes(bytes: Uint8Array, file: string): ObjectSpec {
  return withContext(path.basename(file) || file, () => load(bytes, file));
}

function readString(sec: ElfSection): string {
  let end = sec.data.indexOf(0);
  if (end < 0) end = sec.data.length;
  return Buffer.from(sec.data.subarray(0, end)).toString('utf8');
}

function load(bytes: Uint8Array, file: string): ObjectSpec {
  const elf = parseElf(bytes);
  const { sections } = elf;
  const symbols = new SymbolIndex(elf.symbols);

  let license = '';
  let kernelVersion = 0;
  let btf: BtfSpec | null = null;
  let btfStrings: Uint8Array = new Uint8Array(0);
  let ext: BtfExt | null = null;

  const btfSec = sections.find((s) => s.name === '.BTF');
  if (btfSec) {
    const parsed = withContext('section ".BTF"', () => parseBtf(btfSec.data));
    btf = parsed.spec;
    btfStrings = parsed.strings;
    fixupDatasecs(btf, sections, symbols);
  }
  const extSec = sections.find((s) => s.name === '.BTF.ext');
  if (extSec && btf) ext = withContext('section ".BTF.ext"', () => parseBtfExt(extSec.data, btfStrings));

  // Maps: legacy and BTF definitions first (in section order), then global data.
  const loaded: LoadedMap[] = [];
  for (const sec of sections) {
    if (sec.name === 'license') license = withContext('section "license"', () => readString(sec));
    else if (sec.name === 'version') {
      kernelVersion = withContext('section "version"', () => {
        if (sec.data.length < 4) fail(`${sec.data.length} bytes, expected 4`);
        return new DataView(sec.data.buffer, sec.data.byteOffset, 4).getUint32(0, true);
      });
    } else if (sec.name === 'maps' || sec.name.startsWith('maps/')) loaded.push(...legacyMaps(sec, symbols));
    else if (sec.name === '.maps') loaded.push(...btfMaps(sec, symbols, btf));
  }
  for (const sec of sections) {
    if (isDataSection(sec) && sec.size > 0) loaded.push(dataMap(sec, symbols, btf));
  }
  const externs = collectExterns(btf, elf.symbols);
  if (externs.kconfig) loaded.push(externs.kconfig);
  const seen = new Set<string>();
  loaded.forEach((m, i) => {
    m.spec.index = i;
    if (seen.has(m.spec.name)) fail(`map "${m.spec.name}" is defined twice`);
    seen.add(m.spec.name);
  });
  const maps: MapSpec[] = loaded.map((m) => m.spec);
  const mapsBySection = new Map<number, LoadedMap[]>();
  const mapAt = new Map<string, LoadedMap>();
  for (const m of loaded) {
    const list = mapsBySection.get(m.sectionIndex) ?? [];
    list.push(m);
    mapsBySection.set(m.sectionIndex, list);
    mapAt.set(`${m.sectionIndex}:${m.sectionOffset}`, m);
  }

  // Code sections, CO-RE patched, with their relocations recorded.
  const code = new Map<number, CodeSection>();
  const codeByName = new Map<string, CodeSection>();
  for (const sec of sections) {
    if (sec.type === SHT_PROGBITS && sec.flags & SHF_EXECINSTR && sec.size > 0) {
      const cs = codeSection(sec, symbols);
      code.set(sec.index, cs);
      if (!codeByName.has(sec.name)) codeByName.set(sec.name, cs);
    }
  }
  // Sections whose programs we cannot run are listed as unsupported; their relocations and
  // CO-RE records are not processed, so what they use cannot fail the whole object.
  const skipped = (name: string): boolean => name !== '.text' && !sectionAttach(name).ok;
  if (ext && btf) {
    for (const [secName, relos] of ext.coreRelos) {
      if (skipped(secName)) continue;
      const cs = codeByName.get(secName);
      if (!cs) fail(`section ".BTF.ext": CO-RE relocations for section "${secName}", which is not a code section`);
      const b = btf;
      withContext(`section "${secName}"`, () => applyCoreRelos(cs.code, relos, b));
    }
  }
  for (const rel of sections) {
    if (rel.type !== SHT_REL && rel.type !== SHT_RELA) continue;
    if (sections[rel.info]?.name === '.maps') {
      // Pointers inside map definitions: prog_array slots declared with `.values`.
      const entries = withContext(`section "${rel.name}"`, () => parseRelocations(rel));
      withContext(`section "${rel.name}"`, () => declaredSlots(mapsBySection.get(rel.info) ?? [], entries, elf.symbols, sections));
      continue;
    }
    const cs = code.get(rel.info);
    // Relocations in data (.BTF, .BTF.ext, debug info, pointers in .data) are not needed: BTF
    // offsets are fixed up from symbols, and addresses in global data mean nothing to the VM.
    if (!cs || skipped(cs.sec.name)) continue;
    const entries = withContext(`section "${rel.name}"`, () => parseRelocations(rel));
    recordRelocations(cs, entries, elf.symbols, sections, mapsBySection, mapAt, (i) => code.get(i), externs);
  }

  // Programs: every function of every code section except .text (subprograms only).
  const programs: ProgramSpec[] = [];
  let emitted = 0;
  const unsupported: UnsupportedProgram[] = [];
  for (const cs of code.values()) {
    if (cs.sec.name === '.text') continue;
    for (const f of cs.funcs) {
      const preliminary = sectionAttach(cs.sec.name);
      if (!preliminary.ok) {
        unsupported.push({ name: f.name, section: cs.sec.name, reason: preliminary.reason });
        continue;
      }
      const linked = linkProgram(f);
      emitted += linked.code.length / 8;
      if (emitted > MAX_TOTAL_INSNS) fail(`programs total more than ${MAX_TOTAL_INSNS} instructions after linking`);
      const att = sectionAttach(cs.sec.name, linked.helpers);
      if (!att.ok) {
        unsupported.push({ name: f.name, section: cs.sec.name, reason: att.reason });
        continue;
      }
      const p: ProgramSpec = {
        name: linked.name,
        section: linked.section,
        code: Buffer.from(linked.code).toString('base64'),
        insnCount: linked.code.length / 8,
        attach: att.attach,
        helpers: linked.helpers,
        maps: linked.maps,
      };
      if (att.note) p.attachNote = att.note;
      if (linked.unresolvedExterns.length) p.unresolvedExterns = linked.unresolvedExterns;
      programs.push(p);
    }
  }
  const names = new Set<string>();
  for (const p of programs) {
    if (names.has(p.name)) fail(`program name "${p.name}" is used twice`);
    names.add(p.name);
  }

  if (btf) inferRecordTypes(btf, sections, programs, maps);
  return { path: file, license, kernelVersion, programs, maps, unsupported, btf };
}

/**
 * Adds the DWARF-only types to the BTF and gives each ring buffer and perf event array the
 * structs its writers keep in their variables (MapSpec.recordTypes). DWARF is a help, not a
 * requirement: an object whose debug info we cannot read loads as it would without it.
 */
function inferRecordTypes(btf: BtfSpec, sections: ElfSection[], programs: ProgramSpec[], maps: MapSpec[]): void {
  // Only records can be of a type BTF lacks (map keys and values always have BTF): objects
  // without a ring buffer or perf array skip DWARF (it roughly triples a load's time).
  if (!maps.some((m) => m.type === 'ringbuf' || m.type === 'perf_event_array')) return;
  if (!sections.some((s) => s.name === '.debug_info')) return;
  const before = btf.types.length;
  let merged;
  try {
    merged = mergeDwarfTypes(btf, parseDwarf(sections));
  } catch {
    btf.types.length = before; // nothing half-added
    return;
  }
  for (const m of maps) {
    if (m.type !== 'ringbuf' && m.type !== 'perf_event_array') continue;
    const ids = new Set<number>();
    for (const p of programs) if (p.maps.includes(m.index)) for (const id of merged.localStructs.get(p.name) ?? []) ids.add(id);
    if (ids.size) m.recordTypes = [...ids].sort((a, b) => a - b);
  }
}
