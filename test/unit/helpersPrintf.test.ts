// The bprintf formatter on its own: every conversion, flags and widths, and the kernel's
// refusals, against fixed expected strings.
import { bpfFormat, type FormatMemory } from '../../agent/helpers/bprintf';

const strings = new Map<bigint, string>([
  [0x1000n, 'hello'],
  [0x2000n, ''],
]);
const mem: FormatMemory = {
  str: (a, max) => (strings.has(a) ? Buffer.from(strings.get(a)!).subarray(0, max) : null),
  bytes: (a, len) => (a === 0x3000n ? Uint8Array.from({ length: len }, (_, i) => (i === 0 ? 192 : i === 1 ? 168 : i + 1)) : null),
};
const fmt = (f: string, ...args: (bigint | number)[]): string | number =>
  bpfFormat(Buffer.from(f, 'latin1'), args.map((a) => BigInt.asUintN(64, BigInt(a))), mem);

test.each<[string, (bigint | number)[], string]>([
  ['plain text', [], 'plain text'],
  ['%%', [], '%'],
  ['%d', [-1], '-1'],
  ['%d', [0xffffffff], '-1'],
  ['%d', [0x100000001n], '1'],
  ['%i', [42], '42'],
  ['%u', [-1], '4294967295'],
  ['%x', [-1], 'ffffffff'],
  ['%X', [0xabcdef], 'ABCDEF'],
  ['%ld', [-1], '-1'],
  ['%lld', [-(1n << 40n)], '-1099511627776'],
  ['%llu', [-1], '18446744073709551615'],
  ['%llx', [0xdeadbeefcafen], 'deadbeefcafe'],
  ['%lu %lx', [7, 255], '7 ff'],
  ['%hd %hhu', [0x18000, 0x1ff], '-32768 255'],
  ['%zu', [1n << 33n], '8589934592'],
  ['%5d|', [42], '   42|'],
  ['%-5d|', [42], '42   |'],
  ['%05d', [-42], '-0042'],
  ['%+d %+d', [5, -5], '+5 -5'],
  ['% d', [5], ' 5'],
  ['%08x', [0xbeef], '0000beef'],
  ['%-8s|', [0x1000], 'hello   |'],
  ['%8s|', [0x1000], '   hello|'],
  ['%2s', [0x1000], 'hello'],
  ['[%s]', [0x2000], '[]'],
  ['[%s]', [0xdead], '[]'],
  ['%c%c%c', [0x61, 0x62, 0x163], 'abc'],
  ['%p', [0x7fff1234], '0x7fff1234'],
  ['%px %pK', [0x10, 0x20], '0x10 0x20'],
  ['%pS', [0x401000], '0x401000'],
  ['%018p', [0xabc], '0x0000000000000abc'],
  ['%pks %pus', [0x1000, 0x1000], 'hello hello'],
  ['%pI4', [0x3000], '192.168.3.4'],
  ['%pi4', [0x3000], '192.168.003.004'],
  ['%pI6', [0x3000], 'c0a8:0304:0506:0708:090a:0b0c:0d0e:0f10'],
  ['%pi6', [0x3000], 'c0a8030405060708090a0b0c0d0e0f10'],
  ['tab\there\n', [], 'tab\there\n'],
])('%j', (f, args, want) => {
  expect(fmt(f, ...args)).toBe(want);
});

test.each<[string, (bigint | number)[]]>([
  ['%d', []], // more conversions than arguments
  ['%d %d', [1]],
  ['%q', [1]],
  ['%.3d', [1]], // no precision in bprintf
  ['%lq', [1]],
  ['%pZ', [1]],
  ['trailing %', [1]],
  ['\x01', []], // not printable
  ['caf\xe9', []], // not ASCII
])('refuses %j', (f, args) => {
  expect(fmt(f, ...args)).toBe(-22);
});

test('surplus arguments are ignored', () => {
  expect(fmt('%d', 1, 2, 3)).toBe('1');
});
