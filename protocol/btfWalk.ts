// The one walker over BtfSpec tables: follow typedefs and qualifiers, size a type, tell a C
// char. The loader wants every oddity to be an error (strict: BtfWalkError, which it turns
// into a LoaderError with context); the manifest and the output layer must never throw on
// odd BTF and take the lenient answers (the id where the chain stopped, size 0).

import type { BtfSpec, BtfType } from './btf.js';

/** Deeper chains are cycles in practice: clang never nests qualifiers or arrays this far. */
export const BTF_MAX_DEPTH = 64;

export class BtfWalkError extends Error {}

function isModifier(t: BtfType): t is Extract<BtfType, { kind: 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag' }> {
  return t.kind === 'typedef' || t.kind === 'volatile' || t.kind === 'const' || t.kind === 'restrict' || t.kind === 'type_tag';
}

/** The type with BTF id `id`; strict: an id out of range is an error, lenient: undefined. */
export function btfTypeAt(btf: BtfSpec, id: number, strict = false): BtfType | undefined {
  const t = btf.types[id];
  if (t === undefined && strict) throw new BtfWalkError(`type id ${id} out of range (${btf.types.length} types)`);
  return t;
}

/**
 * Follows typedef/const/volatile/restrict/type_tag to the underlying type id. Lenient: a
 * missing type or a too-long chain stops the walk where it is.
 */
export function stripModifiers(btf: BtfSpec, id: number, strict = false): number {
  const start = id;
  for (let depth = 0; depth < BTF_MAX_DEPTH; depth++) {
    const t = btfTypeAt(btf, id, strict);
    if (t === undefined || !isModifier(t)) return id;
    id = t.type;
  }
  if (strict) throw new BtfWalkError(`type [${start}]: typedef/qualifier chain too deep (cycle?)`);
  return id;
}

/** The underlying type after modifiers; undefined for void (id 0), unknown ids and cycles. */
export function resolveType(btf: BtfSpec | null, id: number): BtfType | undefined {
  if (btf === null || id === 0) return undefined;
  const t = btf.types[stripModifiers(btf, id)];
  return t === undefined || isModifier(t) ? undefined : t;
}

/**
 * C's sizeof. Lenient: 0 for types without a size (void, functions) or broken chains.
 * Strict: those are errors, and so is an array too large to address.
 */
export function btfTypeSize(btf: BtfSpec, id: number, strict = false, depth = 0): number {
  if (depth > BTF_MAX_DEPTH) {
    if (strict) throw new BtfWalkError(`type [${id}]: nesting too deep (cycle?)`);
    return 0;
  }
  const t = btfTypeAt(btf, stripModifiers(btf, id, strict), strict);
  switch (t?.kind) {
    case 'int':
    case 'enum':
    case 'struct':
    case 'union':
    case 'float':
    case 'datasec':
      return t.size;
    case 'ptr':
      return 8;
    case 'array': {
      const n = btfTypeSize(btf, t.type, strict, depth + 1) * t.nelems;
      if (!Number.isSafeInteger(n) || n > 0xffffffff) {
        if (strict) throw new BtfWalkError(`type [${id}]: array size overflows`);
        return 0;
      }
      return n;
    }
    default:
      if (strict) throw new BtfWalkError(`type [${id}] (${t?.kind ?? 'missing'}) has no size`);
      return 0;
  }
}

/** C's `char` (clang sets no CHAR encoding flag, so a 1-byte int named char counts too). */
export function isCharType(btf: BtfSpec | null, id: number): boolean {
  const t = resolveType(btf, id);
  return t !== undefined && t.kind === 'int' && t.size === 1 && (t.char || t.name === 'char');
}
