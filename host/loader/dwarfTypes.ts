// DWARF types → BTF types appended to the object's BTF, so the output layer decodes values
// of types clang left out of BTF exactly as it decodes the others. Only what BTF lacks is
// added: a named struct, union, enum or typedef already in BTF (same kind, name and size)
// is reused, and so is a base type of the same name and size. New ids come after clang's,
// so every id the object already uses keeps its meaning.
//
// It also says, per function, which structs its variables hold (`struct event *e`,
// `struct event e`, parameters of inlined helpers): the candidates for the records of the
// ring buffers and perf arrays the function writes to (MapSpec.recordTypes).

import type { BtfMember, BtfSpec, BtfType } from '../../protocol/btf';
import { DW_AT, DW_ATE, DW_TAG, dieName, dieNum, dieRef, indexDies, type Die } from './dwarf';

const MAX_DEPTH = 64;

export interface DwarfMerge {
  /** Function name → BTF ids of the structs/unions its variables hold (directly or by pointer). */
  localStructs: Map<string, Set<number>>;
  /** Types appended to the BTF. */
  added: number;
}

function kindOfTag(tag: number): 'struct' | 'union' | 'enum' | 'typedef' | null {
  if (tag === DW_TAG.structure_type) return 'struct';
  if (tag === DW_TAG.union_type) return 'union';
  if (tag === DW_TAG.enumeration_type) return 'enum';
  if (tag === DW_TAG.typedef) return 'typedef';
  return null;
}

export function mergeDwarfTypes(btf: BtfSpec, roots: readonly Die[]): DwarfMerge {
  const dies = indexDies(roots);
  const idOf = new Map<number, number>();
  const startCount = btf.types.length;

  // What BTF already has, by kind + name + size (size 0 for typedefs).
  const existing = new Map<string, number>();
  btf.types.forEach((t, id) => {
    if ((t.kind === 'struct' || t.kind === 'union' || t.kind === 'enum' || t.kind === 'int' || t.kind === 'float') && t.name) {
      existing.set(`${t.kind === 'float' ? 'int' : t.kind}:${t.name}:${t.size}`, id);
    } else if (t.kind === 'typedef') existing.set(`typedef:${t.name}:0`, id);
  });

  const push = (t: BtfType): number => {
    btf.types.push(t);
    return btf.types.length - 1;
  };

  const convert = (offset: number | undefined, depth: number): number => {
    if (offset === undefined) return 0; // void
    const cached = idOf.get(offset);
    if (cached !== undefined) return cached;
    const d = dies.get(offset);
    if (!d || depth > MAX_DEPTH) return 0;
    const name = dieName(d) ?? '';
    const size = Number(dieNum(d, DW_AT.byte_size) ?? 0n);
    const kind = kindOfTag(d.tag);
    if (kind !== null && name) {
      const have = existing.get(`${kind}:${name}:${kind === 'typedef' ? 0 : size}`);
      if (have !== undefined) {
        idOf.set(offset, have);
        return have;
      }
    }
    switch (d.tag) {
      case DW_TAG.base_type: {
        const enc = Number(dieNum(d, DW_AT.encoding) ?? 0n);
        const have = existing.get(`int:${name}:${size}`);
        if (have !== undefined) return remember(offset, have);
        if (enc === DW_ATE.float) return remember(offset, push({ kind: 'float', name, size }));
        const signed = enc === DW_ATE.signed || enc === DW_ATE.signed_char;
        // The CHAR flag stays clear, as clang leaves it in BTF: `char` is told by its name.
        return remember(offset, push({ kind: 'int', name, size, signed, char: false, bool: enc === DW_ATE.boolean, bits: size * 8, offsetBits: 0 }));
      }
      case DW_TAG.pointer_type: {
        const id = remember(offset, push({ kind: 'ptr', type: 0 }));
        (btf.types[id] as { type: number }).type = pointee(d, depth);
        return id;
      }
      case DW_TAG.typedef:
      case DW_TAG.const_type:
      case DW_TAG.volatile_type:
      case DW_TAG.restrict_type:
      case DW_TAG.atomic_type: {
        const k = d.tag === DW_TAG.typedef ? 'typedef' : d.tag === DW_TAG.const_type ? 'const' : d.tag === DW_TAG.volatile_type ? 'volatile' : d.tag === DW_TAG.restrict_type ? 'restrict' : 'volatile';
        const id = remember(offset, push({ kind: k, name: d.tag === DW_TAG.typedef ? name : '', type: 0 }));
        (btf.types[id] as { type: number }).type = convert(dieRef(d, DW_AT.type), depth + 1);
        return id;
      }
      case DW_TAG.array_type: {
        // int a[2][3]: subranges outermost first; the innermost array holds the element type.
        const dims = d.children.filter((c) => c.tag === DW_TAG.subrange_type).map((s) => {
          const count = dieNum(s, DW_AT.count);
          const upper = dieNum(s, DW_AT.upper_bound);
          return Number(count ?? (upper !== undefined ? upper + 1n : 0n));
        });
        let elem = convert(dieRef(d, DW_AT.type), depth + 1);
        let id = 0;
        for (let i = (dims.length || 1) - 1; i >= 0; i--) {
          id = push({ kind: 'array', type: elem, indexType: 0, nelems: dims[i] ?? 0 });
          elem = id;
        }
        return remember(offset, id);
      }
      case DW_TAG.structure_type:
      case DW_TAG.union_type: {
        const id = remember(offset, push({ kind: d.tag === DW_TAG.union_type ? 'union' : 'struct', name, size, members: [] }));
        const members: BtfMember[] = [];
        for (const m of d.children) {
          if (m.tag !== DW_TAG.member) continue;
          const byteOff = Number(dieNum(m, DW_AT.data_member_location) ?? 0n);
          const bitSize = Number(dieNum(m, DW_AT.bit_size) ?? 0n);
          let offsetBits = byteOff * 8;
          const dataBit = dieNum(m, DW_AT.data_bit_offset);
          if (dataBit !== undefined) offsetBits = Number(dataBit);
          else if (bitSize > 0 && dieNum(m, DW_AT.bit_offset) !== undefined) {
            // DWARF 2-4 bitfields count from the storage unit's most significant bit.
            const unit = Number(dieNum(m, DW_AT.byte_size) ?? BigInt(size)) * 8;
            offsetBits = byteOff * 8 + unit - Number(dieNum(m, DW_AT.bit_offset)!) - bitSize;
          }
          members.push({ name: dieName(m) ?? '', type: convert(dieRef(m, DW_AT.type), depth + 1), offsetBits, bitfieldSize: bitSize });
        }
        (btf.types[id] as { members: BtfMember[] }).members = members;
        return id;
      }
      case DW_TAG.enumeration_type: {
        const under = dies.get(dieRef(d, DW_AT.type) ?? -1);
        const signedUnder = under ? [DW_ATE.signed, DW_ATE.signed_char].includes(Number(dieNum(under, DW_AT.encoding) ?? 0n) as 5 | 6) : false;
        const values = d.children
          .filter((c) => c.tag === DW_TAG.enumerator)
          .map((c) => {
            const v = c.attrs.get(DW_AT.const_value);
            let n = v?.kind === 'num' ? v.value : 0n;
            if (v?.kind === 'num' && !v.signed && signedUnder) n = BigInt.asIntN(Math.max(8, size * 8), n);
            const asNum = Number(n);
            return { name: dieName(c) ?? '', value: Number.isSafeInteger(asNum) ? asNum : n.toString() };
          });
        return remember(offset, push({ kind: 'enum', name, size: size || 4, signed: signedUnder, values }));
      }
      default:
        // Function types and anything else: opaque here (pointers to them decode as addresses).
        return remember(offset, 0);
    }
  };
  const remember = (offset: number, id: number): number => {
    idOf.set(offset, id);
    return id;
  };
  const pointee = (d: Die, depth: number): number => convert(dieRef(d, DW_AT.type), depth + 1);

  // Function variables → struct ids (through typedefs, qualifiers and one pointer).
  const structOf = (offset: number | undefined): number | undefined => {
    let d = offset === undefined ? undefined : dies.get(offset);
    let pointers = 0;
    for (let i = 0; d && i < MAX_DEPTH; i++) {
      if (d.tag === DW_TAG.structure_type || d.tag === DW_TAG.union_type) return d.attrs.has(DW_AT.declaration) ? undefined : convert(d.offset, 0);
      if (d.tag === DW_TAG.pointer_type && ++pointers > 1) return undefined;
      if (![DW_TAG.pointer_type, DW_TAG.typedef, DW_TAG.const_type, DW_TAG.volatile_type, DW_TAG.restrict_type, DW_TAG.atomic_type].includes(d.tag as 0x0f)) return undefined;
      d = dies.get(dieRef(d, DW_AT.type) ?? -1);
    }
    return undefined;
  };
  const typeOfVar = (v: Die): number | undefined => {
    const own = dieRef(v, DW_AT.type);
    if (own !== undefined) return own;
    const origin = dies.get(dieRef(v, DW_AT.abstract_origin) ?? -1);
    return origin ? dieRef(origin, DW_AT.type) : undefined;
  };
  const localStructs = new Map<string, Set<number>>();
  for (const root of roots) {
    for (const fn of root.children) {
      const name = fn.tag === DW_TAG.subprogram ? dieName(fn) : undefined;
      if (!name || !fn.children.length) continue;
      const found = localStructs.get(name) ?? new Set<number>();
      const walk = (d: Die, depth: number): void => {
        if (depth > MAX_DEPTH) return;
        for (const ch of d.children) {
          if (ch.tag === DW_TAG.variable || ch.tag === DW_TAG.formal_parameter) {
            const id = structOf(typeOfVar(ch));
            if (id !== undefined && id !== 0) found.add(id);
          } else if (ch.tag === DW_TAG.lexical_block || ch.tag === DW_TAG.inlined_subroutine) walk(ch, depth + 1);
        }
      };
      walk(fn, 0);
      if (found.size) localStructs.set(name, found);
    }
  }
  // Named types BTF lacks entirely (records named in a manifest may be used nowhere locally).
  for (const root of roots) {
    for (const d of root.children) {
      if ((d.tag === DW_TAG.structure_type || d.tag === DW_TAG.union_type || d.tag === DW_TAG.enumeration_type) && dieName(d) && !d.attrs.has(DW_AT.declaration)) convert(d.offset, 0);
    }
  }
  return { localStructs, added: btf.types.length - startCount };
}
