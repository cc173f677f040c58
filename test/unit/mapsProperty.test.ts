import * as fc from 'fast-check';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, ENOENT } from '../../agent/maps/BpfMap';
import { createMap } from '../../agent/maps/createMap';
import { mapSpec, newVm } from '../support/fakeEnv';

// A hash map must behave like a JS Map (keyed by the key bytes) with the kernel's flag and
// capacity rules, whatever the sequence of operations.
const MAX = 8;
const KEY = 5;
type Op = { kind: 'update'; key: number[]; value: number; flags: number } | { kind: 'delete'; key: number[] } | { kind: 'lookup'; key: number[] };

// Few distinct keys so updates hit existing ones, deletes succeed and the map fills up.
const keyArb = fc.integer({ min: 0, max: 12 }).map((i) => [i, i * 7 & 0xff, 0, i % 3, 255 - i]);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('update' as const), key: keyArb, value: fc.integer({ min: 0, max: 1 << 30 }), flags: fc.constantFrom(BPF_ANY, BPF_NOEXIST, BPF_EXIST) }),
  fc.record({ kind: fc.constant('delete' as const), key: keyArb }),
  fc.record({ kind: fc.constant('lookup' as const), key: keyArb }),
);

test('hash map matches a Map model', () => {
  const vm = newVm();
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
      const m = createMap(vm, mapSpec({ type: 'hash', keySize: KEY, valueSize: 4, maxEntries: MAX }), 1n, 2);
      const model = new Map<string, number>();
      for (const op of ops) {
        const k = new Uint8Array(op.key);
        const ks = op.key.join(',');
        if (op.kind === 'update') {
          const has = model.has(ks);
          let want = 0;
          if (has && op.flags === BPF_NOEXIST) want = -EEXIST;
          else if (!has && op.flags === BPF_EXIST) want = -ENOENT;
          else if (!has && model.size >= MAX) want = -E2BIG;
          const got = m.update(k, new Uint8Array(new Uint32Array([op.value]).buffer), op.flags, 0);
          expect(got).toBe(want);
          if (want === 0) model.set(ks, op.value);
        } else if (op.kind === 'delete') {
          expect(m.delete(k)).toBe(model.delete(ks) ? 0 : -ENOENT);
        } else {
          const v = m.lookup(k) as Uint8Array | null;
          const addr = m.lookupAddr(k, 0);
          if (model.has(ks)) {
            expect(new Uint32Array(v!.slice().buffer)[0]).toBe(model.get(ks));
            expect(new Uint32Array(vm.read(addr, 4).buffer)[0]).toBe(model.get(ks));
          } else {
            expect(v).toBeNull();
            expect(addr).toBe(0);
          }
        }
      }
      const entries = m.entries().map((e) => [Array.from(e.key).join(','), new Uint32Array((e.value as Uint8Array).slice().buffer)[0]] as const);
      expect(new Map(entries)).toEqual(model);
    }),
    { seed: 0x5eed, numRuns: 200 },
  );
});
