// Record structs clang left out of BTF, read from DWARF (versions 5 and 4) and decoded like
// BTF ones; each record map gets the structs its writers hold.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadObject, loadObjectFromBytes } from '../../host/loader/loadObject';
import { decodeRecord, findStruct, recordTypeId } from '../../host/output/records';
import type { ObjectSpec } from '../../protocol/spec';
import { bpfObjectPath, repoRoot } from '../support/paths';
import { copy, fixtureBytes, sectionByName } from '../support/loaderElf';

function openEventBytes(): Buffer {
  const b = Buffer.alloc(72);
  b.writeUInt32LE(7, 0);
  b.writeInt32LE(-2, 4);
  b.write('cat', 8);
  b.write('/etc/hosts', 24);
  b[35] = 0xaa; // garbage after the path's NUL
  b.writeInt32LE(-1, 48); // kind = KIND_CLOSE
  b.writeUInt16LE(5 | (300 << 3), 52); // mode:3 = 5, extra:9 = 300
  b.writeInt16LE(-3, 54);
  b.writeInt16LE(9, 56);
  b.set([1, 2, 3, 4, 5, 6], 58);
  b.writeBigInt64LE(-5n, 64);
  return b;
}
const openEvent = {
  pid: 7,
  ret: -2,
  comm: 'cat',
  path: '/etc/hosts',
  kind: 'KIND_CLOSE',
  mode: 5,
  extra: 300,
  range: { lo: -3, hi: 9 },
  grid: ['0x010203', '0x040506'],
  delta: -5,
};

function check(o: ObjectSpec): void {
  const rb = o.maps.find((m) => m.name === 'rb')!;
  const exits = o.maps.find((m) => m.name === 'exits')!;
  expect(rb.recordTypes).toHaveLength(1);
  expect(exits.recordTypes).toHaveLength(1);
  expect(o.btf!.types[rb.recordTypes![0]]).toMatchObject({ kind: 'struct', name: 'open_event', size: 72 });
  expect(decodeRecord(o, rb.index, openEventBytes())).toEqual(openEvent);
  const x = Buffer.alloc(16);
  x.writeUInt32LE(8, 0);
  x.writeBigInt64LE(-1n, 8);
  expect(decodeRecord(o, exits.index, x)).toEqual({ pid: 8, code: -1 });
  // A record cut short (variable-length, like sslsniff's) still decodes as the writers' struct.
  expect(decodeRecord(o, rb.index, openEventBytes().subarray(0, 40))).toMatchObject({ pid: 7, ret: -2, comm: 'cat', path: '/etc/hosts', kind: 0, delta: 0 });
  // The manifest can name a DWARF-only struct too.
  expect(findStruct(o.btf!, 'exit_event')).toBeDefined();
  expect(recordTypeId(o, rb.index, 16, 'exit_event')).toBe(findStruct(o.btf!, 'exit_event'));
}

test('DWARF 5 (clang 14 default): ring-buffer and perf records decode with their DWARF structs', () => {
  const o = loadObject(bpfObjectPath('output_dwarf'));
  expect(o.btf!.types.some((t) => t.kind === 'struct' && t.name === 'open_event')).toBe(true);
  check(o);
});

test('DWARF 4 objects too', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dwarf4-'));
  try {
    const out = path.join(dir, 'output_dwarf4.bpf.o');
    const fixtures = path.join(repoRoot, 'test', 'fixtures');
    execFileSync('clang', ['-O2', '-g', '-gdwarf-4', '-target', 'bpf', '-I', path.join(fixtures, 'bpf'), '-c', path.join(fixtures, 'bpf', 'output_dwarf.bpf.c'), '-o', out]);
    check(loadObject(out));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('types BTF already has are not added twice; clang\'s ids keep their meaning', () => {
  const withBtf = loadObject(bpfObjectPath('output_events'));
  const names = withBtf.btf!.types.filter((t) => t.kind === 'struct' && t.name === 'event');
  expect(names).toHaveLength(1);
});

test('unreadable debug info never fails a load: records fall back to hex', () => {
  const b = copy(fixtureBytes('output_dwarf'));
  const abbrev = sectionByName(b, '.debug_abbrev');
  b.fill(0xff, abbrev.offset, abbrev.offset + abbrev.size);
  const o = loadObjectFromBytes(b, 'broken.bpf.o');
  expect(o.programs.map((p) => p.name).sort()).toEqual(['on_exit', 'on_open']);
  expect(o.btf!.types.some((t) => t.kind === 'struct' && t.name === 'open_event')).toBe(false);
  expect(decodeRecord(o, o.maps.find((m) => m.name === 'rb')!.index, Buffer.from([1, 2]))).toBe('0x0102');
});
