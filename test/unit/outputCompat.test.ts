// libbpf-tools-style output: syscall names for syscall-number keys, u8 buffers as text,
// .bss arrays drawn as histograms when named, --maps selection, stacks like ustack, queues.
import { loadObject } from '../../host/loader/loadObject';
import { mapsText } from '../../host/output/mapText';
import { EventPrinter, unknownOutputName } from '../../host/output/EventPrinter';
import { PassThrough } from 'stream';
import type { MapDump } from '../../protocol/messages';
import { bpfObjectPath } from '../support/paths';

const o = loadObject(bpfObjectPath('output_compat'));
const idx = (name: string) => o.maps.find((m) => m.name === name)!.index;
const u32 = (v: number) => Buffer.from(new Uint32Array([v]).buffer);
const u64 = (v: number | bigint) => Buffer.from(new BigUint64Array([BigInt(v)]).buffer);
const b64 = (b: Buffer) => b.toString('base64');
const dump = (name: string, entries: MapDump['entries'], symbols?: Record<string, string>): MapDump => ({ object: 0, map: idx(name), name, entries, ...(symbols ? { symbols } : {}) });

test('syscall numbers print by name: maps named for syscalls, struct key fields, maps the manifest lists', () => {
  const counts = dump('syscall_counts', [
    { key: b64(u32(0)), value: b64(u64(5)) },
    { key: b64(u32(257)), value: b64(u64(2)) },
    { key: b64(u32(4)), value: b64(u64(1)) },
  ]);
  expect(mapsText([o], [counts])).toBe('@syscall_counts[stat]: 1\n@syscall_counts[openat]: 2\n@syscall_counts[read]: 5\n\n');
  const perPid = dump('per_pid', [{ key: b64(Buffer.concat([u32(42), u32(166)])), value: b64(u64(3)) }]);
  expect(mapsText([o], [perPid])).toBe('@per_pid[42, umount2]: 3\n\n');
  const plain = dump('data', [{ key: b64(u32(1)), value: b64(u64(9)) }]);
  expect(mapsText([o], [plain])).toBe('@data[1]: 9\n\n');
  expect(mapsText([o], [plain], { syscalls: ['data'] })).toBe('@data[write]: 9\n\n');
  // JSON keeps the number and adds the name.
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => (text += c));
  new EventPrinter({ objects: [o], json: true, out }).maps([counts]);
  expect(JSON.parse(text).maps.syscall_counts[0]).toEqual({ key: 4, name: 'stat', value: 1 });
});

test('u8 buffers: text when they hold text (garbage after the NUL ignored), hex otherwise', () => {
  const v = Buffer.alloc(13);
  v.write('open', 0);
  v[5] = 0x99; // after the NUL: whatever the program's buffer held
  v.set([10, 0, 0, 1], 8);
  v[12] = 0xff;
  expect(mapsText([o], [dump('buffers', [{ key: b64(u32(1)), value: b64(v) }])])).toBe('@buffers[1]: { .text = open, .bin = 0x0a000001, .neg = -1 }\n\n');
});

test('.bss arrays and struct hist globals drawn as histograms when named; the rest stay scalars', () => {
  const bss = Buffer.alloc(104);
  bss.writeBigUInt64LE(4n, 8); // hist_slots[1]
  bss.writeBigUInt64LE(8n, 16); // hist_slots[2]
  bss.writeUInt32LE(3, 64 + 8); // lat_hist.slots[2]
  bss.writeBigUInt64LE(7n, 96);
  const d = dump('.bss', [{ key: b64(u32(0)), value: b64(bss) }]);
  const text = mapsText([o], [d], { histograms: ['hist_slots', 'lat_hist'] });
  expect(text).toContain(`@hist_slots:\n[2, 4)                 4 |${'@'.repeat(26).padEnd(52)}|\n[4, 8)                 8 |${'@'.repeat(52)}|\n\n`);
  expect(text).toContain(`@lat_hist:\n[4, 8)                 3 |${'@'.repeat(52)}|\n\n`);
  expect(text).toContain('@plain_total: 7\n');
  // --maps: only what was asked for.
  expect(mapsText([o], [d], { histograms: ['hist_slots'], only: ['plain_total'] })).toBe('@plain_total: 7\n\n');
});

test('stack maps print like bpftrace ustack, symbolised by the agent; queues in pop order', () => {
  const frames = Buffer.concat([u64(0x401000), u64(0x402000), u64(0x7f0000001234n), u64(0)]);
  const s = dump('stacks', [{ key: b64(u32(3)), value: b64(frames) }], { '0x401000': 'leaf+4', '0x402000': 'main+20' });
  expect(mapsText([o], [s])).toBe('@stacks[3]:\n    leaf+4\n    main+20\n    0x7f0000001234\n\n');
  const q = dump('pending', [
    { key: b64(u32(0)), value: b64(u64(30)) },
    { key: b64(u32(1)), value: b64(u64(10)) },
  ]);
  expect(mapsText([o], [q])).toBe('@pending[0]: 30\n@pending[1]: 10\n\n');
});

test('names in output options that match nothing are refused up front', () => {
  expect(unknownOutputName([o], { maps: ['plain_total', 'stacks'] })).toBeNull();
  expect(unknownOutputName([o], { maps: ['nope'] })).toMatch(/^--maps: no map or global "nope"/);
  expect(unknownOutputName([o], { histograms: ['hist_slotz'] })).toMatch(/^output.histograms: no map or global "hist_slotz"/);
  expect(unknownOutputName([o], { syscalls: ['x'] })).toMatch(/^output.syscalls/);
});
