// CO-RE relocations (.BTF.ext core_relo records) resolved against our context structs
// (contextBtf.ts). The instruction is patched the way libbpf patches it: the offset of a
// load/store, the imm of an ALU op, or the 64-bit imm of an lddw.
//
// Policy for types that are not one of our context structs (user-defined structs with
// preserve_access_index, or kernel structs from vmlinux.h such as task_struct): the object's
// own layout is taken as the truth, i.e. the relocation resolves to its local value and the
// instruction is left as clang emitted it. In user space there is no other layout to match.

import type { BtfSpec, BtfType } from '../../protocol/btf';
import { btfType, skipModifiers, typeName, typeSize } from './btf';
import type { CoreRelo } from './btfExt';
import { CONTEXT_STRUCTS, ctxTypeSize, type CtxType } from './contextBtf';
import { fail, withContext } from './errors';

export const CORE_KIND_NAMES = [
  'field_byte_offset', 'field_byte_size', 'field_exists', 'field_signed', 'field_lshift_u64', 'field_rshift_u64',
  'type_id_local', 'type_id_target', 'type_exists', 'type_size', 'enumval_exists', 'enumval_value', 'type_matches',
];

const MAX_ACCESS = 64;

interface Resolved {
  local: bigint;
  target: bigint;
  /** Field kinds only: whether the access was a load/store-able byte offset. */
  isField: boolean;
}

/** Flavors (`pt_regs___x86`) name the same struct with a local variation, as in libbpf. */
function essentialName(name: string): string {
  const i = name.indexOf('___');
  return i > 0 ? name.slice(0, i) : name;
}

function parseAccess(s: string): number[] {
  if (!/^[0-9]+(:[0-9]+)*$/.test(s)) fail(`malformed access string "${s}"`);
  const parts = s.split(':').map(Number);
  if (parts.length > MAX_ACCESS) fail(`access string "${s}" too long`);
  return parts;
}

function intSigned(ty: BtfType): boolean {
  if (ty.kind === 'int' || ty.kind === 'enum') return ty.signed;
  return false;
}

function resolveField(btf: BtfSpec, rootId: number, access: number[], kind: number): Resolved {
  const root = btfType(btf, rootId);
  const ctxName = root.kind === 'struct' || root.kind === 'union' ? essentialName(root.name) : '';
  const ctxRoot = CONTEXT_STRUCTS.get(ctxName);

  let id = rootId;
  let bitOff = access[0] * typeSize(btf, rootId) * 8;
  let bitSize = 0;
  let path = ctxName || typeName(btf, rootId);
  let tOff = ctxRoot ? access[0] * ctxTypeSize(ctxRoot) : 0;
  let tType: CtxType | undefined = ctxRoot;

  for (let i = 1; i < access.length; i++) {
    const cur = btfType(btf, skipModifiers(btf, id));
    const idx = access[i];
    if (cur.kind === 'struct' || cur.kind === 'union') {
      if (idx >= cur.members.length) fail(`access index ${idx} out of range for ${path} (${cur.members.length} members)`);
      const m = cur.members[idx];
      bitOff += m.offsetBits;
      bitSize = m.bitfieldSize;
      id = m.type;
      if (m.name) {
        path += `.${m.name}`;
        if (tType) {
          if (tType.kind !== 'struct') fail(`${path}: our ${ctxName} has no struct here`);
          const f = tType.fields.find((x) => x.name === m.name);
          if (!f) {
            if (kind === 2) return { local: 1n, target: 0n, isField: true };
            fail(`field ${path} does not exist in our description of struct ${ctxName}`);
          }
          tOff += f.offset;
          tType = f.type;
        }
      }
    } else if (cur.kind === 'array') {
      const elem = typeSize(btf, cur.type);
      bitOff += idx * elem * 8;
      bitSize = 0;
      id = cur.type;
      path += `[${idx}]`;
      if (tType) {
        if (tType.kind !== 'array') fail(`${path}: our ${ctxName} has no array here`);
        if (idx >= tType.nelems) fail(`${path}: index out of range in our ${ctxName}`);
        tOff += idx * ctxTypeSize(tType.elem);
        tType = tType.elem;
      }
    } else {
      fail(`access index ${idx} into ${typeName(btf, id)}, which is neither struct, union nor array`);
    }
  }

  const fieldTy = btfType(btf, skipModifiers(btf, id));
  const size = bitSize ? 0 : typeSize(btf, id);
  if (bitSize && ctxRoot) fail(`${path}: bitfields in context structs are not supported`);
  const localBits = bitSize || size * 8;
  let local: number;
  switch (kind) {
    case 0: local = Math.floor(bitOff / 8); break;
    case 1: local = bitSize ? Math.ceil(bitSize / 8) : size; break;
    case 2: local = 1; break;
    case 3: local = intSigned(fieldTy) ? 1 : 0; break;
    case 4: local = 64 - (bitOff + localBits - Math.floor(bitOff / 8) * 8); break;
    case 5: local = 64 - localBits; break;
    default: return fail(`unexpected kind ${kind}`);
  }
  if (!tType) return { local: BigInt(local), target: BigInt(local), isField: true };

  const tSize = ctxTypeSize(tType);
  let target: number;
  switch (kind) {
    case 0: target = tOff; break;
    case 1: target = tSize; break;
    case 2: target = 1; break;
    case 3: target = tType.kind === 'int' && tType.signed ? 1 : 0; break;
    case 4: target = 64 - tSize * 8; break;
    default: target = 64 - tSize * 8; break;
  }
  return { local: BigInt(local), target: BigInt(target), isField: true };
}

function resolve(btf: BtfSpec, relo: CoreRelo): Resolved {
  const rootId = skipModifiers(btf, relo.typeId);
  const root = btfType(btf, rootId);
  const ctx = root.kind === 'struct' || root.kind === 'union' ? CONTEXT_STRUCTS.get(essentialName(root.name)) : undefined;
  switch (relo.kind) {
    case 0: case 1: case 2: case 3: case 4: case 5:
      return resolveField(btf, rootId, parseAccess(relo.access), relo.kind);
    case 6: case 7:
      // There is no target BTF in user space: type ids stay the object's own.
      return { local: BigInt(relo.typeId), target: BigInt(relo.typeId), isField: false };
    case 8: case 12:
      return { local: 1n, target: 1n, isField: false };
    case 9: {
      const size = typeSize(btf, rootId);
      return { local: BigInt(size), target: BigInt(ctx ? ctxTypeSize(ctx) : size), isField: false };
    }
    case 10: case 11: {
      const idx = parseAccess(relo.access)[0];
      if (root.kind !== 'enum') fail(`${typeName(btf, rootId)} is not an enum`);
      if (idx >= root.values.length) fail(`enumerator index ${idx} out of range in ${typeName(btf, rootId)}`);
      const v = relo.kind === 10 ? 1n : BigInt(root.values[idx].value);
      return { local: v, target: v, isField: false };
    }
    default:
      return fail(`unknown CO-RE relocation kind ${relo.kind}`);
  }
}

/**
 * Applies `relos` to `code` (the instructions of one section, patched in place).
 * Instruction values are checked against the local value before patching, as libbpf does.
 */
export function applyCoreRelos(code: Uint8Array, relos: readonly CoreRelo[], btf: BtfSpec): void {
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
  for (const relo of relos) {
    const idx = relo.insnOff / 8;
    const kindName = CORE_KIND_NAMES[relo.kind] ?? `kind ${relo.kind}`;
    withContext(`CO-RE relocation (${kindName}) at insn ${Number.isInteger(idx) ? idx : relo.insnOff}`, () => {
      if (relo.insnOff % 8 !== 0 || relo.insnOff + 8 > code.length) fail(`instruction offset ${relo.insnOff} outside the section (${code.length} bytes)`);
      const res = withContext(`${typeName(btf, relo.typeId)} access "${relo.access}"`, () => resolve(btf, relo));
      const opcode = code[relo.insnOff];
      const cls = opcode & 7;
      if (cls === 4 || cls === 7) {
        if (opcode & 0x08) fail(`ALU instruction 0x${opcode.toString(16)} has no immediate to patch`);
        const imm = view.getInt32(relo.insnOff + 4, true);
        if (BigInt(imm) !== res.local && BigInt(imm >>> 0) !== res.local) fail(`instruction imm ${imm} does not match the local value ${res.local}`);
        if (res.target > 0xffffffffn) fail(`value ${res.target} does not fit in 32 bits`);
        view.setInt32(relo.insnOff + 4, Number(BigInt.asIntN(32, res.target)), true);
      } else if (cls === 1 || cls === 2 || cls === 3) {
        if (relo.kind !== 0) fail(`only field byte offsets can patch a load/store instruction`);
        const off = view.getInt16(relo.insnOff + 2, true);
        if (BigInt(off) !== res.local) fail(`instruction offset ${off} does not match the local value ${res.local}`);
        if (res.target > 0x7fffn) fail(`offset ${res.target} does not fit in 16 bits`);
        view.setInt16(relo.insnOff + 2, Number(res.target), true);
      } else if (opcode === 0x18) {
        if (relo.insnOff + 16 > code.length) fail('lddw is truncated');
        const lo = BigInt(view.getUint32(relo.insnOff + 4, true));
        const hi = BigInt(view.getUint32(relo.insnOff + 12, true));
        if (((hi << 32n) | lo) !== BigInt.asUintN(64, res.local)) fail(`lddw value does not match the local value ${res.local}`);
        const v = BigInt.asUintN(64, res.target);
        view.setUint32(relo.insnOff + 4, Number(v & 0xffffffffn), true);
        view.setUint32(relo.insnOff + 12, Number(v >> 32n), true);
      } else {
        fail(`instruction opcode 0x${opcode.toString(16)} cannot carry a CO-RE value`);
      }
    });
  }
}
