// Maps of an object: BTF-defined (`.maps`), legacy (`maps`, struct bpf_map_def) and one
// single-entry array per global-data section (.data, .rodata*, .bss).

import type { BtfSpec } from '../../protocol/btf';
import { MAP_TYPE_IDS, type MapSpec, type MapType } from '../../protocol/spec';
import { btfType, findDatasec, skipModifiers, typeName, typeSize } from './btf';
import { ByteReader, SHT_NOBITS, SHF_EXECINSTR, STT_FUNC, STT_SECTION, type ElfRelocation, type ElfSection, type ElfSymbol, type SymbolIndex } from './elf';
import { fail, withContext } from './errors';

const KERNEL_MAP_TYPES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array', 'stack_trace',
  'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps', 'hash_of_maps', 'devmap', 'sockmap',
  'cpumap', 'xskmap', 'sockhash', 'cgroup_storage', 'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack',
  'sk_storage', 'devmap_hash', 'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter',
  'user_ringbuf', 'cgrp_storage', 'arena',
];

const BY_ID = new Map<number, MapType>(Object.entries(MAP_TYPE_IDS).map(([name, id]) => [id, name as MapType]));

/** Why each kernel map type we lack cannot be had in a user process. */
const WHY_NOT: Record<string, string> = {
  cgroup_array: 'there are no cgroups to hold', array_of_maps: 'maps of maps are not supported', hash_of_maps: 'maps of maps are not supported',
  devmap: 'network devices are kernel objects', devmap_hash: 'network devices are kernel objects', sockmap: 'sockets are kernel objects',
  sockhash: 'sockets are kernel objects', cpumap: 'XDP redirection is kernel-only', xskmap: 'AF_XDP sockets are kernel objects',
  cgroup_storage: 'there are no cgroups', percpu_cgroup_storage: 'there are no cgroups', reuseport_sockarray: 'sockets are kernel objects',
  sk_storage: 'sockets are kernel objects', struct_ops: 'struct_ops replace kernel functions', inode_storage: 'inodes are kernel objects',
  task_storage: 'task_struct is a kernel object', user_ringbuf: 'user ring buffers are not supported', cgrp_storage: 'there are no cgroups',
  arena: 'BPF arenas are not supported',
};

/** A map plus where its definition sits in the ELF file, so relocations can find it. */
export interface LoadedMap {
  spec: MapSpec;
  /** Section the map (or global data) lives in. */
  sectionIndex: number;
  /** Byte offset of the definition in that section (0 for global data). */
  sectionOffset: number;
  /** BTF definitions with a `values` member: its byte offset within the definition. */
  valuesOffset?: number;
}

function mapType(id: number): { type: MapType; unsupported?: MapSpec['unsupported'] } {
  const t = BY_ID.get(id);
  if (t) return { type: t };
  const kname = KERNEL_MAP_TYPES[id] ?? `#${id}`;
  const why = WHY_NOT[kname] ?? 'not a map type this runtime knows';
  return { type: 'unsupported', unsupported: { kernelType: kname, reason: `map type ${id} (${kname}) is not supported: ${why}` } };
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
          let mapExtra: number | undefined;
          let valuesOffset = -1;
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
              case 'numa_node': case 'pinning': uintVal(m.name, m.type); break;
              case 'map_extra': mapExtra = uintVal(m.name, m.type); break;
              case 'key':
                keyType = typeOf(m.name, m.type);
                keySize = withContext('key', () => typeSize(btf, keyType));
                break;
              case 'value':
                valueType = typeOf(m.name, m.type);
                valueSize = withContext('value', () => typeSize(btf, valueType));
                break;
              case 'values':
                // Declarative initial slots (`.values = { [0] = &prog }`); the entries are
                // relocations in .rel.maps at this member's offset (see declaredSlots).
                valuesOffset = m.offsetBits / 8;
                break;
              default:
                fail(`unknown map definition field "${m.name}"`);
            }
          }
          const { type, unsupported } = mapType(typeId);
          if (type === 'perf_event_array' || type === 'prog_array') {
            keySize ||= 4;
            valueSize ||= 4;
          }
          if (valuesOffset >= 0 && type !== 'prog_array') {
            const what = unsupported ? unsupported.kernelType : type;
            if (what !== 'array_of_maps' && what !== 'hash_of_maps') fail(`"values" initialises prog_array and map-of-maps definitions, not a ${what}`);
          }
          const spec: MapSpec = { index: 0, name, type, keySize, valueSize, maxEntries, flags, origin: 'btf', readOnly: false, btfKeyTypeId: keyType, btfValueTypeId: valueType };
          if (mapExtra !== undefined) spec.mapExtra = mapExtra;
          if (unsupported) spec.unsupported = unsupported;
          return { spec, sectionIndex: sec.index, sectionOffset: sym.value, valuesOffset: valuesOffset >= 0 ? valuesOffset : undefined };
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
        const { type, unsupported } = mapType(r.u32(o));
        return {
          spec: {
            index: 0,
            name: sym.name,
            type,
            ...(unsupported ? { unsupported } : {}),
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

/**
 * `.values = { [i] = &prog }` in a prog_array definition: clang leaves one 8-byte slot per
 * index after the fixed fields and a relocation against the program's symbol for each
 * filled one (libbpf reads them the same way). Recorded on the map as declaredSlots.
 */
export function declaredSlots(maps: readonly LoadedMap[], relocs: readonly ElfRelocation[], symbols: readonly ElfSymbol[], sections: readonly ElfSection[]): void {
  for (const rel of relocs) {
    withContext(`relocation at 0x${rel.offset.toString(16)}`, () => {
      const sym = symbols[rel.symbol];
      if (!sym) fail(`symbol index ${rel.symbol} out of range`);
      // The definition holding the pointer: the last one starting at or before it.
      const m = maps.filter((x) => x.sectionOffset <= rel.offset).sort((a, b) => b.sectionOffset - a.sectionOffset)[0];
      const within = m && m.valuesOffset !== undefined ? rel.offset - m.sectionOffset - m.valuesOffset : -1;
      if (!m || within < 0 || within % 8 !== 0) fail('points into no map\'s "values"');
      const slot = within / 8;
      return withContext(`map "${m.spec.name}" slot ${slot}`, () => {
        if (m.spec.type !== 'prog_array') {
          m.spec.unsupported = { kernelType: m.spec.unsupported?.kernelType ?? m.spec.type, reason: 'maps of maps (inner maps in "values") are not supported' };
          return;
        }
        const target = sym.shndx < sections.length ? sections[sym.shndx] : undefined;
        if (sym.type !== STT_FUNC || !target || !(target.flags & SHF_EXECINSTR)) fail(`"${sym.name}" is not a program`);
        if (slot >= m.spec.maxEntries) fail(`slot ${slot} is beyond max_entries ${m.spec.maxEntries}`);
        (m.spec.declaredSlots ??= []).push({ slot, program: sym.name });
      });
    });
  }
}
