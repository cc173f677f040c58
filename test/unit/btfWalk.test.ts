// The one BTF walker (protocol/btfWalk.ts): strict answers for the loader, lenient ones for
// the manifest and the output layer, on the same tables.
import { BtfWalkError, btfTypeSize, isCharType, resolveType, stripModifiers } from '../../protocol/btfWalk';
import type { BtfSpec } from '../../protocol/btf';

const btf: BtfSpec = {
  types: [
    { kind: 'void' },
    { kind: 'int', name: 'char', size: 1, signed: true, char: false, bool: false, bits: 8, offsetBits: 0 },
    { kind: 'const', name: '', type: 1 },
    { kind: 'typedef', name: 'name_t', type: 4 },
    { kind: 'array', type: 2, indexType: 1, nelems: 16 },
    { kind: 'typedef', name: 'loop_a', type: 6 }, // 5 ↔ 6: a cycle no compiler writes
    { kind: 'typedef', name: 'loop_b', type: 5 },
    { kind: 'func_proto', returnType: 0, params: [] },
    { kind: 'array', type: 8, indexType: 1, nelems: 2 }, // contains itself
  ],
};

test('modifiers are followed to the type underneath; char arrays are recognised through typedefs', () => {
  expect(stripModifiers(btf, 3)).toBe(4);
  expect(resolveType(btf, 2)).toMatchObject({ kind: 'int', name: 'char' });
  expect(btfTypeSize(btf, 3)).toBe(16);
  expect(isCharType(btf, 2)).toBe(true);
  expect(resolveType(btf, 0)).toBeUndefined();
});

test('lenient walks never throw: cycles, missing ids and sizeless types give undefined or 0', () => {
  expect(resolveType(btf, 5)).toBeUndefined();
  expect(resolveType(btf, 99)).toBeUndefined();
  expect(btfTypeSize(btf, 7)).toBe(0);
  expect(btfTypeSize(btf, 8)).toBe(0);
  expect(btfTypeSize(btf, 5)).toBe(0);
});

test('strict walks say what is wrong', () => {
  expect(() => stripModifiers(btf, 5, true)).toThrow(new BtfWalkError('type [5]: typedef/qualifier chain too deep (cycle?)'));
  expect(() => stripModifiers(btf, 99, true)).toThrow('type id 99 out of range (9 types)');
  expect(() => btfTypeSize(btf, 7, true)).toThrow('type [7] (func_proto) has no size');
  expect(() => btfTypeSize(btf, 8, true)).toThrow('nesting too deep (cycle?)');
});
