// .BTF section → protocol BtfSpec (flat type table, id 0 = void), plus the few type
// queries the loader needs (sizes, skipping typedefs/qualifiers, finding a DATASEC).

import type { BtfMember, BtfSpec, BtfType } from '../../protocol/btf';
import { btfTypeAt, btfTypeSize, BtfWalkError, stripModifiers } from '../../protocol/btfWalk';
import { ByteReader, cString } from './elf';
import { fail, hex, withContext } from './errors';

const BTF_MAGIC = 0xeb9f;
const MAX_TYPES = 1 << 20;
/** Guards walks through typedef/const chains and nested types against cycles in corrupt BTF. */
const MAX_DEPTH = 64;

const KIND_NAMES = [
  'unknown', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const',
  'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64',
];

export interface ParsedBtf {
  spec: BtfSpec;
  /** The raw string section, for BTF.ext access strings and names. */
  strings: Uint8Array;
}

export function parseBtf(data: Uint8Array): ParsedBtf {
  const r = new ByteReader(data, 'BTF');
  if (data.length < 24) fail(`header truncated (${data.length} bytes)`);
  const magic = r.u16(0);
  if (magic !== BTF_MAGIC) fail(`bad magic ${hex(magic)} (expected ${hex(BTF_MAGIC)})`);
  const version = r.u8(2);
  if (version !== 1) fail(`unsupported version ${version}`);
  const hdrLen = r.u32(4);
  if (hdrLen < 24 || hdrLen > data.length) fail(`header length ${hdrLen} out of range`);
  const typeOff = r.u32(8);
  const typeLen = r.u32(12);
  const strOff = r.u32(16);
  const strLen = r.u32(20);
  if (hdrLen + typeOff + typeLen > data.length) fail(`type section ${hex(typeOff)}+${hex(typeLen)} is past the end (${data.length} bytes)`);
  if (hdrLen + strOff + strLen > data.length) fail(`string section ${hex(strOff)}+${hex(strLen)} is past the end (${data.length} bytes)`);
  const strings = data.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
  if (strings.length > 0 && strings[0] !== 0) fail('string section does not start with an empty string');
  const str = (off: number): string => cString(strings, off, 'name');
  const t = new ByteReader(data.subarray(hdrLen + typeOff, hdrLen + typeOff + typeLen), 'BTF types');

  const types: BtfType[] = [{ kind: 'void' }];
  let o = 0;
  while (o < typeLen) {
    const id = types.length;
    if (id > MAX_TYPES) fail(`too many types`);
    const start = o;
    types.push(
      withContext(`type [${id}] at ${hex(start)}`, () => {
        const nameOff = t.u32(o);
        const info = t.u32(o + 4);
        const sizeOrType = t.u32(o + 8);
        o += 12;
        const vlen = info & 0xffff;
        const kind = (info >>> 24) & 0x1f;
        const kflag = (info >>> 31) === 1;
        const name = str(nameOff);
        switch (kind) {
          case 1: {
            const enc = t.u32(o);
            o += 4;
            const e = (enc >>> 24) & 0xf;
            return { kind: 'int', name, size: sizeOrType, signed: (e & 1) !== 0, char: (e & 2) !== 0, bool: (e & 4) !== 0, bits: enc & 0xff, offsetBits: (enc >>> 16) & 0xff };
          }
          case 2:
            return { kind: 'ptr', type: sizeOrType };
          case 3: {
            const a = { kind: 'array' as const, type: t.u32(o), indexType: t.u32(o + 4), nelems: t.u32(o + 8) };
            o += 12;
            return a;
          }
          case 4:
          case 5: {
            const members: BtfMember[] = [];
            for (let i = 0; i < vlen; i++) {
              const off = t.u32(o + 8);
              members.push({
                name: str(t.u32(o)),
                type: t.u32(o + 4),
                offsetBits: kflag ? off & 0xffffff : off,
                bitfieldSize: kflag ? off >>> 24 : 0,
              });
              o += 12;
            }
            return { kind: kind === 4 ? 'struct' : 'union', name, size: sizeOrType, members };
          }
          case 6: {
            const values = [];
            for (let i = 0; i < vlen; i++) {
              const v = kflag ? t.i32(o + 4) : t.u32(o + 4);
              values.push({ name: str(t.u32(o)), value: v });
              o += 8;
            }
            // kind_flag marks a signed enum; unsigned values above 2^31 are kept as unsigned.
            return { kind: 'enum', name, size: sizeOrType, signed: kflag, values };
          }
          case 19: {
            const values = [];
            for (let i = 0; i < vlen; i++) {
              const lo = BigInt(t.u32(o + 4));
              const hi = BigInt(t.u32(o + 8));
              let v = (hi << 32n) | lo;
              if (kflag) v = BigInt.asIntN(64, v);
              const n = Number(v);
              values.push({ name: str(t.u32(o)), value: Number.isSafeInteger(n) ? n : v.toString() });
              o += 12;
            }
            return { kind: 'enum', name, size: sizeOrType, signed: kflag, values };
          }
          case 7:
            return { kind: 'fwd', name, union: kflag };
          case 8:
          case 9:
          case 10:
          case 11:
          case 18:
            return { kind: KIND_NAMES[kind] as 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag', name, type: sizeOrType };
          case 12:
            return { kind: 'func', name, type: sizeOrType, linkage: vlen };
          case 13: {
            const params = [];
            for (let i = 0; i < vlen; i++) {
              params.push({ name: str(t.u32(o)), type: t.u32(o + 4) });
              o += 8;
            }
            return { kind: 'func_proto', returnType: sizeOrType, params };
          }
          case 14: {
            const linkage = t.u32(o);
            o += 4;
            return { kind: 'var', name, type: sizeOrType, linkage };
          }
          case 15: {
            const vars = [];
            for (let i = 0; i < vlen; i++) {
              vars.push({ type: t.u32(o), offset: t.u32(o + 4), size: t.u32(o + 8) });
              o += 12;
            }
            return { kind: 'datasec', name, size: sizeOrType, vars };
          }
          case 16:
            return { kind: 'float', name, size: sizeOrType };
          case 17: {
            const componentIdx = t.i32(o);
            o += 4;
            return { kind: 'decl_tag', name, type: sizeOrType, componentIdx };
          }
          default:
            return fail(`unknown kind ${kind}`);
        }
      }),
    );
  }
  validateRefs(types);
  return { spec: { types }, strings };
}

/** Every type id a type refers to must exist; later walks can then index without checks. */
function validateRefs(types: BtfType[]): void {
  const n = types.length;
  const check = (id: number, what: string, ref: number): void => {
    if (ref >= n) fail(`type [${id}]: ${what} refers to type ${ref}, but there are only ${n} types`);
  };
  types.forEach((ty, id) => {
    switch (ty.kind) {
      case 'ptr':
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'func':
      case 'var':
      case 'decl_tag':
        check(id, 'type', ty.type);
        break;
      case 'array':
        check(id, 'element type', ty.type);
        check(id, 'index type', ty.indexType);
        break;
      case 'struct':
      case 'union':
        ty.members.forEach((m) => check(id, `member "${m.name}"`, m.type));
        break;
      case 'func_proto':
        check(id, 'return type', ty.returnType);
        ty.params.forEach((p) => check(id, `parameter "${p.name}"`, p.type));
        break;
      case 'datasec':
        ty.vars.forEach((v) => check(id, 'variable', v.type));
        break;
      default:
        break;
    }
  });
}

/** The loader's view of the shared walker (protocol/btfWalk.ts): every oddity is a LoaderError. */
function strictly<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof BtfWalkError) return fail(e.message);
    throw e;
  }
}

export function btfType(spec: BtfSpec, id: number): BtfType {
  return strictly(() => btfTypeAt(spec, id, true)!);
}

/** Follows typedefs and qualifiers to the underlying type id. */
export function skipModifiers(spec: BtfSpec, id: number): number {
  return strictly(() => stripModifiers(spec, id, true));
}

/** Size in bytes of a type, as C sizeof. */
export function typeSize(spec: BtfSpec, id: number): number {
  return strictly(() => btfTypeSize(spec, id, true));
}

export function typeName(spec: BtfSpec, id: number): string {
  const ty = spec.types[id];
  if (!ty) return `type#${id}`;
  const name = 'name' in ty ? ty.name : '';
  return name ? `${ty.kind} ${name}` : `${ty.kind} [${id}]`;
}

export function findDatasec(spec: BtfSpec, name: string): { id: number; type: Extract<BtfType, { kind: 'datasec' }> } | undefined {
  for (let id = 1; id < spec.types.length; id++) {
    const ty = spec.types[id];
    if (ty.kind === 'datasec' && ty.name === name) return { id, type: ty };
  }
  return undefined;
}
