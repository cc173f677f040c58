// BTF types as the host and agent exchange them: a flat table indexed by BTF type id
// (id 0 is void), close to the on-disk format so the loader stays simple and the output
// layer can decode any value it is handed.

export type BtfType =
  | { kind: 'void' }
  | { kind: 'int'; name: string; size: number; signed: boolean; char: boolean; bool: boolean; bits: number; offsetBits: number }
  | { kind: 'ptr'; type: number }
  | { kind: 'array'; type: number; indexType: number; nelems: number }
  | { kind: 'struct' | 'union'; name: string; size: number; members: BtfMember[] }
  | { kind: 'enum'; name: string; size: number; signed: boolean; values: { name: string; value: number | string }[] }
  | { kind: 'fwd'; name: string; union: boolean }
  | { kind: 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag'; name: string; type: number }
  | { kind: 'func'; name: string; type: number; linkage: number }
  | { kind: 'func_proto'; returnType: number; params: { name: string; type: number }[] }
  | { kind: 'var'; name: string; type: number; linkage: number }
  | { kind: 'datasec'; name: string; size: number; vars: { type: number; offset: number; size: number }[] }
  | { kind: 'float'; name: string; size: number }
  | { kind: 'decl_tag'; name: string; type: number; componentIdx: number };

export interface BtfMember {
  name: string;
  type: number;
  /** Offset of the member from the start of its struct, in bits. */
  offsetBits: number;
  /** Non-zero for bitfields. */
  bitfieldSize: number;
}

/** types[i] is the type with BTF id i; types[0] is void. */
export interface BtfSpec {
  types: BtfType[];
}
