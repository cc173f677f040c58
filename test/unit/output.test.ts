import { PassThrough } from 'stream';
import { loadObject } from '../../host/loader/loadObject';
import { decodeValue } from '../../host/output/btfDecode';
import { EventPrinter } from '../../host/output/EventPrinter';
import { decodeRecord } from '../../host/output/records';
import { mapsText } from '../../host/output/mapText';
import { histRows } from '../../host/output/hist';
import type { MapDump } from '../../protocol/messages';
import type { ObjectSpec } from '../../protocol/spec';
import type { BtfSpec } from '../../protocol/btf';
import { bpfObjectPath } from '../support/paths';

const o: ObjectSpec = loadObject(bpfObjectPath('output_events'));
const btf = o.btf!;
const mapOf = (name: string) => o.maps.find((m) => m.name === name)!;
const structId = (name: string) => btf.types.findIndex((t) => t.kind === 'struct' && t.name === name);

function le(size: number, v: bigint | number): Buffer {
  const b = Buffer.alloc(size);
  let x = BigInt.asUintN(size * 8, BigInt(v));
  for (let i = 0; i < size; i++, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
}
const b64 = (b: Buffer) => b.toString('base64');

/** A struct event as the program writes it. */
function eventBytes(): Buffer {
  const b = Buffer.alloc(56);
  b.writeUInt32LE(123, 0);
  b.writeInt32LE(-2, 4);
  b.write('bash', 8);
  b.writeBigUInt64LE(2n ** 64n - 1n, 24);
  b.writeUInt32LE(1, 32);
  b[36] = 5 | (3 << 3); // flags:3 = 5, mode:5 = 3
  b.writeInt16LE(-7, 38);
  b.writeUInt32LE(1, 40);
  b.writeUInt32LE(2, 44);
  b.writeUInt32LE(3, 48);
  return b;
}
const eventValue = { pid: 123, ret: -2, comm: 'bash', big: '18446744073709551615', st: 'ST_RUN', flags: 5, mode: 3, delta: -7, arr: [1, 2, 3] };

function capture(opts: Partial<ConstructorParameters<typeof EventPrinter>[0]> = {}) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => (text += c));
  const p = new EventPrinter({ objects: [o], json: false, out, ...opts });
  return { p, text: () => text };
}

describe('decodeValue', () => {
  test('struct with char array, enum, bitfields, signed and big u64', () => {
    expect(decodeValue(btf, structId('event'), eventBytes())).toEqual(eventValue);
  });
  test('ints of every size and sign, via typedefs', () => {
    const m = mapOf('total');
    expect(decodeValue(btf, m.btfValueTypeId, le(8, -5))).toBe(-5);
    expect(decodeValue(btf, m.btfKeyTypeId, le(4, 0xffffffff))).toBe(4294967295);
    expect(decodeValue(btf, mapOf('counts').btfValueTypeId, le(8, 2n ** 53n))).toBe('9007199254740992');
    expect(decodeValue(btf, mapOf('counts').btfValueTypeId, le(8, 2n ** 53n - 1n))).toBe(2 ** 53 - 1);
    const synthetic: BtfSpec = {
      types: [
        { kind: 'void' },
        { kind: 'int', name: '__int128', size: 16, signed: true, char: false, bool: false, bits: 128, offsetBits: 0 },
        { kind: 'int', name: '_Bool', size: 1, signed: false, char: false, bool: true, bits: 8, offsetBits: 0 },
        { kind: 'ptr', type: 0 },
        { kind: 'int', name: 'short', size: 2, signed: true, char: false, bool: false, bits: 16, offsetBits: 0 },
      ],
    };
    expect(decodeValue(synthetic, 1, le(16, -(2n ** 100n)))).toBe((-(2n ** 100n)).toString());
    expect(decodeValue(synthetic, 2, Buffer.from([1]))).toBe(true);
    expect(decodeValue(synthetic, 3, le(8, 0x7ffd1234n))).toBe('0x7ffd1234');
    expect(decodeValue(synthetic, 4, le(2, -300))).toBe(-300);
  });
  test('char array keys are strings; no BTF or type 0 is hex', () => {
    const k = Buffer.alloc(16);
    k.write('victim');
    expect(decodeValue(btf, mapOf('by_comm').btfKeyTypeId, k)).toBe('victim');
    expect(decodeValue(btf, 0, Buffer.from([1, 2, 0xab]))).toBe('0x0102ab');
    expect(decodeValue(null, 5, Buffer.from([0xff]))).toBe('0xff');
  });
});

describe('records', () => {
  test('unique struct by size, named struct, hex otherwise', () => {
    const ev = mapOf('events').index;
    expect(decodeRecord(o, ev, eventBytes())).toEqual(eventValue);
    expect(decodeRecord(o, ev, le(8, 0x0000000200000001n))).toEqual({ pid: 1, cpu: 2 });
    expect(decodeRecord(o, ev, le(8, 1n), 'event')).toMatchObject({ pid: 1, comm: '' });
    expect(decodeRecord(o, ev, Buffer.from([1, 2, 3]))).toBe('0x010203');
  });
  test('human and JSON lines', () => {
    const ev = { type: 'record' as const, object: 0, map: mapOf('events').index, cpu: 0, data: b64(eventBytes()) };
    const h = capture();
    h.p.record(ev);
    h.p.record(ev);
    // libbpf-tools style: a header once, columns as wide as the header or the type needs.
    expect(h.text()).toBe(
      'PID     RET     COMM             BIG          ST      FLAGS MODE DELTA ARR\n' +
        '123     -2      bash             18446744073709551615 ST_RUN  5     3    -7    [1,2,3]\n' +
        '123     -2      bash             18446744073709551615 ST_RUN  5     3    -7    [1,2,3]\n',
    );
    const t = capture({ timestamps: true });
    t.p.record({ ...ev, timeMs: new Date(2026, 0, 2, 3, 4, 5).getTime() });
    expect(t.text().split('\n')[0]).toMatch(/^TIME     PID     RET /);
    expect(t.text().split('\n')[1]).toMatch(/^03:04:05 123     -2 /);
    const tj = capture({ json: true, timestamps: true });
    tj.p.record({ ...ev, timeMs: new Date(2026, 0, 2, 3, 4, 5).getTime() });
    expect(JSON.parse(tj.text())).toMatchObject({ type: 'event', time: '03:04:05', map: 'events' });
    const j = capture({ json: true, records: { events: 'event' } });
    j.p.record(ev);
    expect(JSON.parse(j.text())).toEqual({ type: 'event', map: 'events', data: eventValue });
  });
  test('unknown record struct is refused up front', () => {
    expect(() => capture({ records: { events: 'nope' } })).toThrow(/no BTF or DWARF struct "nope"/);
    expect(() => capture({ records: { nomap: 'event' } })).toThrow(/no map "nomap"/);
  });
});

describe('maps as bpftrace prints them', () => {
  const dump = (name: string, entries: MapDump['entries']): MapDump => ({ object: 0, map: mapOf(name).index, name, entries });

  test('keyed map sorted by value, struct keys as tuples, scalar, globals, empty maps silent', () => {
    const dumps = [
      dump('counts', [
        { key: b64(le(4, 7)), value: b64(le(8, 30)) },
        { key: b64(le(4, 1)), value: b64(le(8, 5)) },
        { key: b64(le(4, 9)), value: b64(le(8, 12)) },
      ]),
      dump('by_key', [{ key: b64(Buffer.concat([le(4, 42), le(4, 3)])), value: b64(le(8, 1)) }]),
      dump('by_comm', []),
      dump('total', [{ key: b64(le(4, 0)), value: b64(le(8, -3)) }]),
      dump('.bss', [{ key: b64(le(4, 0)), value: b64(le(8, 42)) }]),
      dump('.data', [{ key: b64(le(4, 0)), value: b64(le(4, 3)) }]),
      dump('last', [{ key: b64(le(4, 123)), value: b64(eventBytes()) }]),
    ];
    expect(mapsText([o], dumps)).toBe(
      '@counts[1]: 5\n@counts[9]: 12\n@counts[7]: 30\n\n' +
        '@by_key[42, 3]: 1\n\n' +
        '@total: -3\n\n' +
        '@counter: 42\n\n' +
        '@level: 3\n\n' +
        '@last[123]: { .pid = 123, .ret = -2, .comm = bash, .big = 18446744073709551615, .st = ST_RUN, .flags = 5, .mode = 3, .delta = -7, .arr = [1,2,3] }\n\n',
    );
  });

  test('per-CPU ints are summed; zero array slots skipped', () => {
    const d = dump('percpu', [
      { key: b64(le(4, 0)), value: [b64(le(8, 1)), b64(le(8, 2))] },
      { key: b64(le(4, 1)), value: [b64(le(8, 0)), b64(le(8, 0))] },
      { key: b64(le(4, 2)), value: [b64(le(8, 10)), b64(le(8, 0))] },
    ]);
    expect(mapsText([o], [d])).toBe('@percpu[0]: 3\n@percpu[2]: 10\n\n');
  });

  test('log2 histogram by name, golden bars with K suffixes', () => {
    const counts: [number, number][] = [[0, 1], [2, 12], [3, 6], [10, 3]];
    const entries = Array.from({ length: 64 }, (_, i) => ({ key: b64(le(4, i)), value: b64(le(8, counts.find((c) => c[0] === i)?.[1] ?? 0)) }));
    const bar = (n: number) => '|' + '@'.repeat(n).padEnd(52) + '|';
    expect(mapsText([o], [dump('latency', entries)])).toBe(
      [
        '@latency:',
        `[0, 2)                 1 ${bar(4)}`,
        `[2, 4)                 0 ${bar(0)}`,
        `[4, 8)                12 ${bar(52)}`,
        `[8, 16)                6 ${bar(26)}`,
        `[16, 32)               0 ${bar(0)}`,
        `[32, 64)               0 ${bar(0)}`,
        `[64, 128)              0 ${bar(0)}`,
        `[128, 256)             0 ${bar(0)}`,
        `[256, 512)             0 ${bar(0)}`,
        `[512, 1K)              0 ${bar(0)}`,
        `[1K, 2K)               3 ${bar(13)}`,
        '',
        '',
      ].join('\n'),
    );
  });

  test('histogram when listed by the manifest; M suffix', () => {
    const d = dump('counts', [{ key: b64(le(4, 20)), value: b64(le(8, 2)) }]);
    expect(mapsText([o], [d], { histograms: ['counts'] })).toBe(`@counts:\n[1M, 2M)               2 |${'@'.repeat(52)}|\n\n`);
    expect(histRows(new Map())).toEqual([]);
  });

  test('EventPrinter.maps: header, JSON shape', () => {
    const dumps = [dump('counts', [{ key: b64(le(4, 7)), value: b64(le(8, 30)) }]), dump('.bss', [{ key: b64(le(4, 0)), value: b64(le(8, 42)) }]), dump('by_comm', [])];
    const h = capture();
    h.p.maps(dumps, '12:00:01');
    expect(h.text()).toBe('12:00:01\n@counts[7]: 30\n\n@counter: 42\n\n');
    const j = capture({ json: true });
    j.p.maps(dumps);
    expect(JSON.parse(j.text())).toEqual({ type: 'maps', maps: { counts: [{ key: 7, value: 30 }], counter: [{ value: 42 }] } });
  });
});

describe('printk and stats', () => {
  test('human and JSON', () => {
    const h = capture();
    h.p.printk({ type: 'printk', tid: 1235, program: 'on_add', text: 'hit 5\n' });
    h.p.stats([{ object: 0, program: 'on_add', hits: 1000, faults: 0 }], 0);
    expect(h.text()).toBe('1235 on_add: hit 5\nprograms: on_add 1000 hits, 0 faults; dropped records: 0\n');
    const j = capture({ json: true });
    j.p.printk({ type: 'printk', tid: 1235, program: 'on_add', text: 'hit 5' });
    j.p.stats([{ object: 0, program: 'on_add', hits: 1, faults: 1, disabled: 'bad read' }], 4);
    expect(j.text().split('\n').filter(Boolean).map((l) => JSON.parse(l))).toEqual([
      { type: 'printk', tid: 1235, program: 'on_add', text: 'hit 5' },
      { type: 'stats', programs: [{ object: 0, program: 'on_add', hits: 1, faults: 1, disabled: 'bad read' }], droppedRecords: 4 },
    ]);
  });
});
