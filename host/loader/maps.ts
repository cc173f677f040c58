// Maps of an object: BTF-defined (`.maps`), legacy (`maps`, struct bpf_map_def) and one
// single-entry array per global-data section (.data, .rodata*, .bss).

import type { BtfSpec } from '../../protocol/btf';
import { MAP_TYPE_IDS, type MapSpec, type MapType } from '../../protocol/spec';
import { btfType, findDatasec, skipModifiers, typeName, typeSize } from './btf';
import { ByteReader, SHT_NOBITS, SHF_EXECINSTR, STT_SECTION, type ElfSection, type ElfSymbol, type SymbolIndex } from './elf';
import { fail, withContext } from './errors';

const KERNEL_MAP_TYPES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array', 'stack_trace',
  'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps', 'hash_of_maps', 'devmap', 'sockmap',
  'cpumap', 'xskmap', 'sockhash', 'cgroup_storage', 'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack',
  'sk_storage', 'devmap_hash', 'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter',
  'user_ringbuf', 'cgrp_storage', 'arena',
];

const BY_ID = new Map<number, MapType>(Object.entries(MAP_TYPE_IDS).map(([name, id]) => [id, name as MapType]));

/** A map plus where its definition sits in the ELF file, so relocations can find it. */
export interface LoadedMap {
  spec: MapSpec;
  /** Section the map (or global data) lives in. */
  sectionIndex: number;
  /** Byte offset of the definition in that section (0 for global data). */
  sectionOffset: number;
}

function mapType(id: number): MapType {
  const t = BY_ID.get(id);
  if (t) return t;
  const kname = KERNEL_MAP_TYPES[id];
  return fail(`unsupported map type ${id}${kname ? ` (${kname})` : ''}; supported: ${[...BY_ID.values()].join(', ')}`);
}

/** Symbols that name objects in section `idx`, sorted by offset. */
function objectSymbols(symbols: SymbolIndex, idx: number): ElfSymbol[] {
  return symbols.inSection(idx).filter((s) => s.type !== STT_SECTION && s.name !== '');
}

export function btfMaps(sec: ElfSection, symbols: SymbolIndex, btf: BtfSpec | null): LoadedMap[] {
  return withContext(`section "${sec.name}"`, () => {
    if (!btf) fail('BTF-defined maps need the .BTF section (compile with -g)');
    const ds = findDatasec(btf, sec.name);
    if (!ds) fail(`no BTF DATASEC for ${sec.name}`);
    const out: LoadedMap[] = [];
    for (const v of ds.type.vars) {
      const varTy = btfType(btf, v.type);
      if (varTy.kind !== 'var') fail(`DATASEC entry ${typeName(btf, v.type)} is not a variable`);
      const name = varTy.name;
      out.push(
        withContext(`map "${name}"`, () => {
          const sym = symbols.named(sec.index, name);
          if (!sym) fail('no symbol for the map');
          const defId = skipModifiers(btf, varTy.type);
          const def = btfType(btf, defId);
          if (def.kind !== 'struct') fail(`definition is ${def.kind}, expected a struct`);
          let typeId = 0;
          let keySize = 0;
          let valueSize = 0;
          let maxEntries = 0;
          let flags = 0;
          let keyType = 0;
          let valueType = 0;
          const uintVal = (field: string, tid: number): number => {
            const p = btfType(btf, skipModifiers(btf, tid));
            if (p.kind !== 'ptr') fail(`field ${field} is not __uint() (pointer to array)`);
            const a = btfType(btf, skipModifiers(btf, p.type));
            if (a.kind !== 'array') fail(`field ${field} is not __uint() (pointer to array)`);
            return a.nelems;
          };
          const typeOf = (field: string, tid: number): number => {
            const p = btfType(btf, skipModifiers(btf, tid));
            if (p.kind !== 'ptr') fail(`field ${field} is not __type() (pointer)`);
            return p.type;
          };
          for (const m of def.members) {
            switch (m.name) {
              case 'type': typeId = uintVal(m.name, m.type); break;
              case 'max_entries': maxEntries = uintVal(m.name, m.type); break;
              case 'map_flags': flags = uintVal(m.name, m.type); break;
              case 'key_size': keySize = uintVal(m.name, m.type); break;
              case 'value_size': valueSize = uintVal(m.name, m.type); break;
              // Pinning (bpffs) and NUMA placement have no meaning in a user-space runtime.
              case 'numa_node': case 'map_extra': case 'pinning': uintVal(m.name, m.type); break;
              case 'key':
                keyType = typeOf(m.name, m.type);
                keySize = withContext('key', () => typeSize(btf, keyType));
                break;
              case 'value':
                valueType = typeOf(m.name, m.type);
                valueSize = withContext('value', () => typeSize(btf, valueType));
                break;
              case 'values':
                fail('inner maps (values / array_of_maps, hash_of_maps) are not supported');
                break;
              default:
                fail(`unknown map definition field "${m.name}"`);
            }
          }
          const type = mapType(typeId);
          if (type === 'perf_event_array' || type === 'prog_array') {
            keySize ||= 4;
            valueSize ||= 4;
          }
          return {
            spec: { index: 0, name, type, keySize, valueSize, maxEntries, flags, origin: 'btf', readOnly: false, btfKeyTypeId: keyType, btfValueTypeId: valueType },
            sectionIndex: sec.index,
            sectionOffset: sym.value,
          };
        }),
      );
    }
    return out;
  });
}

export function legacyMaps(sec: ElfSection, symbols: SymbolIndex): LoadedMap[] {
  return withContext(`section "${sec.name}"`, () => {
    const syms = objectSymbols(symbols, sec.index);
    if (syms.length === 0) return [];
    if (sec.type === SHT_NOBITS) fail('legacy map definitions have no contents');
    // libbpf: every definition has the same size, the section size divided by the map count.
    const defSize = Math.floor(sec.size / syms.length);
    if (defSize < 16 || defSize * syms.length !== sec.size) fail(`size ${sec.size} does not divide into ${syms.length} map definitions`);
    const r = new ByteReader(sec.data, 'legacy maps');
    return syms.map((sym) =>
      withContext(`map "${sym.name}"`, () => {
        if (sym.value % defSize !== 0 || sym.value + defSize > sec.size) fail(`definition at ${sym.value} is misaligned or past the end`);
        const o = sym.value;
        const type = mapType(r.u32(o));
        return {
          spec: {
            index: 0,
            name: sym.name,
            type,
            keySize: r.u32(o + 4),
            valueSize: r.u32(o + 8),
            maxEntries: r.u32(o + 12),
            flags: defSize >= 20 ? r.u32(o + 16) : 0,
            origin: 'legacy',
            readOnly: false,
            btfKeyTypeId: 0,
            btfValueTypeId: 0,
          },
          sectionIndex: sec.index,
          sectionOffset: sym.value,
        };
      }),
    );
  });
}

export function isDataSection(sec: ElfSection): boolean {
  if (sec.flags & SHF_EXECINSTR) return false;
  const n = sec.name;
  return n === '.data' || n === '.bss' || n === '.rodata' || /^\.(data|rodata|bss)\./.test(n);
}

export function dataMap(sec: ElfSection, symbols: SymbolIndex, btf: BtfSpec | null): LoadedMap {
  return withContext(`section "${sec.name}"`, () => {
    const origin: MapSpec['origin'] = sec.name.startsWith('.rodata') ? 'rodata' : sec.name.startsWith('.bss') ? 'bss' : 'data';
    if (sec.size > 0x7fffffff) fail('global data section too large');
    const spec: MapSpec = {
      index: 0,
      name: sec.name,
      type: 'array',
      keySize: 4,
      valueSize: sec.size,
      maxEntries: 1,
      flags: 0,
      origin,
      readOnly: origin === 'rodata',
      btfKeyTypeId: 0,
      btfValueTypeId: 0,
      vars: [],
    };
    if (origin !== 'bss') spec.initialData = Buffer.from(sec.data).toString('base64');
    const ds = btf ? findDatasec(btf, sec.name) : undefined;
    if (btf && ds) {
      spec.btfValueTypeId = ds.id;
      for (const v of ds.type.vars) {
        const varTy = btfType(btf, v.type);
        if (varTy.kind !== 'var') continue;
        if (v.offset + v.size > sec.size) fail(`variable "${varTy.name}" at ${v.offset}+${v.size} is past the end of the section (${sec.size} bytes)`);
        spec.vars!.push({ name: varTy.name, offset: v.offset, size: v.size, btfTypeId: varTy.type });
      }
    } else {
      // No BTF: name the variables from the symbol table.
      for (const s of objectSymbols(symbols, sec.index)) {
        if (s.value + s.size <= sec.size && s.size > 0) spec.vars!.push({ name: s.name, offset: s.value, size: s.size, btfTypeId: 0 });
      }
    }
    return { spec, sectionIndex: sec.index, sectionOffset: 0 };
  });
}

/**
 * clang leaves DATASEC sizes and the offsets of global variables at 0 in object files; like
 * libbpf, fill them in from the ELF section sizes and symbol values.
 */
export function fixupDatasecs(btf: BtfSpec, sections: readonly ElfSection[], symbols: SymbolIndex): void {
  const byName = new Map<string, ElfSection>();
  for (const s of sections) if (!byName.has(s.name)) byName.set(s.name, s);
  for (const ty of btf.types) {
    if (ty.kind !== 'datasec') continue;
    const sec = byName.get(ty.name);
    if (!sec) continue;
    if (ty.size === 0) ty.size = sec.size;
    for (const v of ty.vars) {
      const varTy = btf.types[v.type];
      if (!varTy || varTy.kind !== 'var') continue;
      const sym = symbols.named(sec.index, varTy.name);
      if (sym) v.offset = sym.value;
    }
  }
}
