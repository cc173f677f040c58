// Cost per operation of the map types added for libbpf-tools-style programs (queue, stack,
// bloom filter, LPM trie, stack trace), called as their helpers call them, against the hash
// map's lookup and update measured in the same run (the map every program uses). Runs the
// map classes over the wasm VM's arena in Node: the map logic alone, without the JS-entry
// cost a helper call from a hook adds in the target (about 2-5 µs, README).
// Usage: node dist/bench/maps.bench.js [ops] [runs]

import * as fs from 'fs';
import * as path from 'path';
import { median, table } from './stats';
import { BpfVm } from '../vm/ts/vm';
import { createMap } from '../agent/maps/createMap';
import type { BloomFilterMap } from '../agent/maps/BloomFilterMap';
import type { LpmTrieMap } from '../agent/maps/LpmTrieMap';
import type { QueueStackMap } from '../agent/maps/QueueStackMap';
import type { StackTraceMap } from '../agent/maps/StackTraceMap';
import type { MapSpec } from '../protocol/spec';

const root = path.resolve(__dirname, '..', '..');
const ops = Number(process.argv[2] ?? 200000);
const runs = Number(process.argv[3] ?? 5);

function spec(p: Partial<MapSpec> & Pick<MapSpec, 'type'>): MapSpec {
  return { index: 0, name: p.type, keySize: 4, valueSize: 8, maxEntries: 1024, flags: 0, origin: 'btf', readOnly: false, btfKeyTypeId: 0, btfValueTypeId: 0, ...p };
}

function nsPerOp(f: (i: number) => void): number {
  for (let i = 0; i < 10000; i++) f(i); // warm up the JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) f(i);
  return Number(process.hrtime.bigint() - t0) / ops;
}

function main(): void {
  const vm = BpfVm.create(fs.readFileSync(path.join(root, 'vm', 'build', 'bpfvm.wasm')), { rwArenaBytes: 64 << 20, roArenaBytes: 1 << 16 });
  const mem = (): Uint8Array => vm.memory();
  const key = new Uint8Array(4);
  const kv = new DataView(key.buffer);
  const val = new Uint8Array(8);
  const hash = createMap(vm, spec({ type: 'hash' }), 1n, 1);
  for (let i = 0; i < 512; i++) hash.update(new Uint8Array(new Uint32Array([i]).buffer), val, 0, 0);
  const queue = createMap(vm, spec({ type: 'queue', keySize: 0 }), 2n, 1) as QueueStackMap;
  const stack = createMap(vm, spec({ type: 'stack', keySize: 0 }), 3n, 1) as QueueStackMap;
  const bloom = createMap(vm, spec({ type: 'bloom_filter', keySize: 0, valueSize: 8, maxEntries: 10000 }), 4n, 1) as BloomFilterMap;
  const lpm = createMap(vm, spec({ type: 'lpm_trie', keySize: 8, flags: 1 }), 5n, 1) as LpmTrieMap;
  for (let len = 8; len <= 32; len += 4) lpm.update(new Uint8Array([len, 0, 0, 0, 10, 1, 2, 3]), val, 0, 0);
  const lpmKey = new Uint8Array([32, 0, 0, 0, 10, 1, 2, 3]);
  const st = createMap(vm, spec({ type: 'stack_trace', valueSize: 16 * 8, maxEntries: 4096 }), 6n, 1) as StackTraceMap;
  const stacks = Array.from({ length: 64 }, (_, s) => Array.from({ length: 12 }, (_, d) => BigInt(0x400000 + s * 4096 + d * 16)));
  const dst = vm.allocRw(8);
  const valueAt = vm.allocRw(8);

  const cases: [string, (i: number) => void][] = [
    ['hash lookup (baseline)', (i) => { kv.setUint32(0, i & 511, true); hash.lookupAddr(key, 0); }],
    ['hash update (existing key)', (i) => { kv.setUint32(0, i & 511, true); hash.update(key, val, 0, 0); }],
    ['queue push + pop', () => { queue.push(val, 0); queue.take(dst, true); }],
    ['stack push + pop', () => { stack.push(val, 0); stack.take(dst, true); }],
    ['bloom push + peek (5 hashes)', (i) => { kv.setUint32(0, i, true); mem().set(key, valueAt); bloom.pushAt(mem(), valueAt, 0); bloom.testAt(mem(), valueAt); }],
    ['LPM lookup, 7 prefix lengths', () => { lpm.lookupAddr(lpmKey, 0); }],
    ['stack id of a 12-frame stack (64 distinct)', (i) => { st.stackId(stacks[i & 63], 0n); }],
  ];
  const rows = cases.map(([name, f]) => {
    const s: number[] = [];
    for (let r = 0; r < runs; r++) s.push(nsPerOp(f));
    return { name, ns: median(s) };
  });
  const base = rows[0].ns;
  console.log(`map operations, ${ops} per run, median of ${runs} runs (Node ${process.version}, wasm VM arena)\n`);
  console.log(table(['operation', 'ns per op', 'vs hash lookup'], rows.map((r) => [r.name, r.ns.toFixed(0), `${(r.ns / base).toFixed(1)}x`])));
}

main();
