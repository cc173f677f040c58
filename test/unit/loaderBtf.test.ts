import { parseBtf, typeSize, skipModifiers } from '../../host/loader/btf';
import { parseBtfExt } from '../../host/loader/btfExt';
import { LoaderError } from '../../host/loader/errors';

/** Builds a .BTF blob from raw type words and a string list (string offsets are computed). */
function buildBtf(types: (names: (s: string) => number) => number[], strs: string[]): Uint8Array {
  const offsets = new Map<string, number>();
  let strBytes = [0];
  for (const s of strs) {
    offsets.set(s, strBytes.length);
    strBytes = strBytes.concat([...Buffer.from(s)], [0]);
  }
  const words = types((s) => offsets.get(s) ?? 0);
  const typeLen = words.length * 4;
  const b = Buffer.alloc(24 + typeLen + strBytes.length);
  b.writeUInt16LE(0xeb9f, 0);
  b[2] = 1;
  b.writeUInt32LE(24, 4);
  b.writeUInt32LE(0, 8);
  b.writeUInt32LE(typeLen, 12);
  b.writeUInt32LE(typeLen, 16);
  b.writeUInt32LE(strBytes.length, 20);
  words.forEach((w, i) => b.writeUInt32LE(w >>> 0, 24 + i * 4));
  Buffer.from(strBytes).copy(b, 24 + typeLen);
  return new Uint8Array(b);
}

const info = (kind: number, vlen = 0, kflag = false): number => ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen;

describe('BTF kinds', () => {
  const blob = buildBtf(
    (n) => [
      // [1] int "long" 8 bytes signed
      n('long'), info(1), 8, (1 << 24) | 64,
      // [2] enum64 "big" unsigned: A = 1, B = 2^63
      n('big'), info(19, 2), 8, n('A'), 1, 0, n('B'), 0, 0x80000000,
      // [3] enum "sgn" signed (kind_flag): M = -1
      n('sgn'), info(6, 1, true), 4, n('M'), 0xffffffff,
      // [4] func_proto long (long x)
      0, info(13, 1), 1, n('x'), 1,
      // [5] func "f" global
      n('f'), info(12, 1), 4,
      // [6] const long, [7] typedef "L" → 6, [8] type_tag "tag" → 7
      0, info(10), 1,
      n('L'), info(8), 6,
      n('tag'), info(18), 7,
      // [9] array of long [3]
      0, info(3), 0, 1, 1, 3,
      // [10] var "g" global-alloc of type 9, [11] datasec ".data" with g at 0 size 24
      n('g'), info(14), 9, 1,
      n('.data'), info(15, 1), 24, 10, 0, 24,
      // [12] float "double", [13] decl_tag "dt" on f's param 0
      n('double'), info(16), 8,
      n('dt'), info(17), 5, 0,
      // [14] struct "s" with bitfield (kind_flag): a:3 at bit 0, b at bit 64
      n('s'), info(4, 2, true), 16, n('a'), 1, (3 << 24) | 0, n('b'), 1, 64,
      // [15] fwd union "u"
      n('u'), info(7, 0, true), 0,
    ],
    ['long', 'big', 'A', 'B', 'sgn', 'M', 'x', 'f', 'L', 'tag', 'g', '.data', 'double', 'dt', 's', 'a', 'b', 'u'],
  );

  test('decodes every kind', () => {
    const { spec } = parseBtf(blob);
    const t = spec.types;
    expect(t.length).toBe(16);
    expect(t[1]).toEqual({ kind: 'int', name: 'long', size: 8, signed: true, char: false, bool: false, bits: 64, offsetBits: 0 });
    expect(t[2]).toEqual({ kind: 'enum', name: 'big', size: 8, signed: false, values: [{ name: 'A', value: 1 }, { name: 'B', value: '9223372036854775808' }] });
    expect(t[3]).toEqual({ kind: 'enum', name: 'sgn', size: 4, signed: true, values: [{ name: 'M', value: -1 }] });
    expect(t[4]).toEqual({ kind: 'func_proto', returnType: 1, params: [{ name: 'x', type: 1 }] });
    expect(t[5]).toEqual({ kind: 'func', name: 'f', type: 4, linkage: 1 });
    expect(t[8]).toEqual({ kind: 'type_tag', name: 'tag', type: 7 });
    expect(t[9]).toEqual({ kind: 'array', type: 1, indexType: 1, nelems: 3 });
    expect(t[10]).toEqual({ kind: 'var', name: 'g', type: 9, linkage: 1 });
    expect(t[11]).toEqual({ kind: 'datasec', name: '.data', size: 24, vars: [{ type: 10, offset: 0, size: 24 }] });
    expect(t[12]).toEqual({ kind: 'float', name: 'double', size: 8 });
    expect(t[13]).toEqual({ kind: 'decl_tag', name: 'dt', type: 5, componentIdx: 0 });
    expect(t[14]).toEqual({
      kind: 'struct', name: 's', size: 16,
      members: [{ name: 'a', type: 1, offsetBits: 0, bitfieldSize: 3 }, { name: 'b', type: 1, offsetBits: 64, bitfieldSize: 0 }],
    });
    expect(t[15]).toEqual({ kind: 'fwd', name: 'u', union: true });
    expect(skipModifiers(spec, 8)).toBe(1);
    expect(typeSize(spec, 9)).toBe(24);
    expect(typeSize(spec, 8)).toBe(8);
  });

  test('cycles and truncation are LoaderErrors', () => {
    // [1] typedef → [2] typedef → [1]
    const cyc = buildBtf((n) => [n('a'), info(8), 2, n('b'), info(8), 1], ['a', 'b']);
    const { spec } = parseBtf(cyc);
    expect(() => skipModifiers(spec, 1)).toThrow(LoaderError);
    expect(() => typeSize(spec, 1)).toThrow(/cycle/);
    expect(() => parseBtf(blob.slice(0, 60))).toThrow(LoaderError);
    const short = new Uint8Array(blob);
    new DataView(short.buffer).setUint32(12, 44, true); // type section ends inside the enum64
    expect(() => parseBtf(short)).toThrow(/type \[2\] at 0x10: BTF types: read of 4 bytes/);
  });

  test('BTF.ext header checks', () => {
    expect(() => parseBtfExt(new Uint8Array(10), new Uint8Array(1))).toThrow('header truncated (10 bytes)');
    const b = Buffer.alloc(32);
    b.writeUInt16LE(0xeb9f, 0);
    b[2] = 1;
    b.writeUInt32LE(32, 4);
    b.writeUInt32LE(0, 8);
    b.writeUInt32LE(100, 12); // func_info longer than the blob
    expect(() => parseBtfExt(new Uint8Array(b), new Uint8Array(1))).toThrow(/func_info: 0x0\+0x64 is past the end/);
  });
});
