// Mutated real objects: the loader may reject them, but only with a LoaderError, and quickly.
import { loadObjectFromBytes } from '../../host/loader/loadObject';
import { LoaderError } from '../../host/loader/errors';
import { copy, elfOf, fixtureBytes, prng, setU32 } from '../support/loaderElf';

const FIXTURES = ['loader_maps_globals', 'loader_kprobe_vmlinux', 'loader_tracepoint', 'loader_legacy', 'loader_core', 'loader_override', 'loader_callbacks', 'output_dwarf'];
const ITERATIONS = 1000;
const INTERESTING = [0, 1, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff8];

function mutate(src: Uint8Array, regions: { offset: number; size: number }[], rnd: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(rnd() * n);
  const choice = pick(10);
  if (choice === 0) return src.slice(0, pick(src.length));
  const b = copy(src);
  const n = 1 + pick(6);
  for (let k = 0; k < n; k++) {
    // Half the mutations land in a structural region (headers, symbols, relocations, BTF, code).
    const r = rnd() < 0.5 && regions.length ? regions[pick(regions.length)] : { offset: 0, size: b.length };
    const at = r.offset + pick(Math.max(1, r.size));
    if (at >= b.length) continue;
    if (rnd() < 0.5) b[at] ^= 1 << pick(8);
    else if (at + 4 <= b.length) setU32(b, at & ~3, INTERESTING[pick(INTERESTING.length)]);
  }
  return b;
}

describe('loader fuzz: only LoaderError, never a hang', () => {
  test.each(FIXTURES)('%s', (name) => {
    const src = fixtureBytes(name);
    const elf = elfOf(src);
    const view = new DataView(src.buffer, src.byteOffset);
    const shoff = Number(view.getBigUint64(40, true));
    const regions = [{ offset: 0, size: 64 }, { offset: shoff, size: elf.sections.length * 64 }];
    for (const s of elf.sections) {
      if (s.type === 2 || s.type === 9 || s.type === 4 || s.name === '.BTF' || s.name === '.BTF.ext' || s.name === '.maps' || s.name.startsWith('.debug_') || s.flags & 4) {
        regions.push({ offset: s.offset, size: s.size });
      }
    }
    const rnd = prng(0xb9f + name.length * 7919);
    const start = Date.now();
    let rejected = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const m = mutate(src, regions, rnd);
      const t0 = Date.now();
      try {
        const spec = loadObjectFromBytes(m, name);
        JSON.stringify(spec);
      } catch (e) {
        if (!(e instanceof LoaderError)) {
          throw new Error(`iteration ${i}: ${(e as Error)?.stack ?? e}`);
        }
        expect(e.message.startsWith(`${name}: `)).toBe(true);
        // A non-LoaderError converted at the top ("malformed input (...)") means a missed check.
        if (e.message.includes('malformed input (')) throw new Error(`iteration ${i}: unguarded failure: ${e.message}`);
        rejected++;
      }
      expect(Date.now() - t0).toBeLessThan(2000);
    }
    expect(rejected).toBeGreaterThan(0);
    expect(Date.now() - start).toBeLessThan(15000);
  });
});
