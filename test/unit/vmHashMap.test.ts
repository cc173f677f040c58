// Property test of the VM's C hash map (vm/src/hashmap.c, the native engine's BPF_MAP_TYPE_HASH)
// against a model with the kernel's semantics: BPF_ANY / BPF_NOEXIST / BPF_EXIST, E2BIG when
// full, ENOENT for missing keys, and entries that survive any mix of deletes (tombstones and
// rebuilds). Runs the native build through its batch CLI (bpfvm-native `hash` jobs).
import * as fc from 'fast-check';
import { runNative, toHex } from '../support/vmSupport';

const KS = 4;
const VS = 8;
const SEED = Number(process.env.VM_HASH_SEED ?? 4242);
const RUNS = Number(process.env.VM_HASH_RUNS ?? 200);

type Op = { op: 1 | 2 | 3; flags: number; key: number; value: number };
const opArb: fc.Arbitrary<Op> = fc.record({
  op: fc.constantFrom(1, 2, 2, 3) as fc.Arbitrary<1 | 2 | 3>,
  flags: fc.constantFrom(0, 0, 1, 2, 3),
  key: fc.integer({ min: 0, max: 11 }), // few keys: collisions, reinsertions, churn
  value: fc.integer({ min: 0, max: 0xffff }),
});
const caseArb = fc.record({ max: fc.integer({ min: 1, max: 8 }), ops: fc.array(opArb, { minLength: 1, maxLength: 120 }) });

const le = (v: number, n: number): Uint8Array => {
  const b = new Uint8Array(n);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};

/** The kernel's answers for the same operations. */
function model(max: number, ops: Op[]): string {
  const m = new Map<number, number>();
  const out: string[] = [];
  for (const o of ops) {
    if (o.op === 1) out.push(m.has(o.key) ? toHex(le(m.get(o.key)!, VS)) : '-');
    else if (o.op === 3) out.push(m.delete(o.key) ? '0' : '-2');
    else if (o.flags > 2) out.push('-22');
    else if (m.has(o.key)) out.push(o.flags === 1 ? '-17' : (m.set(o.key, o.value), '0'));
    else if (o.flags === 2) out.push('-2');
    else if (m.size >= max) out.push('-7');
    else out.push((m.set(o.key, o.value), '0'));
  }
  return `${out.join(' ')} n=${m.size}`;
}

test(`the C hash map behaves as the kernel's on ${RUNS} random operation sequences (seed ${SEED})`, () => {
  const cases = fc.sample(caseArb, { seed: SEED, numRuns: RUNS });
  const lines = cases.map(({ max, ops }) => {
    const bytes = ops.flatMap((o) => [o.op, o.flags, ...le(o.key, KS), ...le(o.value, VS)]);
    return `hash ${KS} ${VS} ${max} ${toHex(new Uint8Array(bytes))}`;
  });
  const got = runNative(lines, []);
  cases.forEach(({ max, ops }, i) => {
    expect({ case: i, got: got[i] }).toEqual({ case: i, got: model(max, ops) });
  });
});
