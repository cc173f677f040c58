import * as fs from 'fs';
import * as path from 'path';
import { conformanceDir } from '../support/paths';
import { vmModule } from '../support/vmSupport';
import { parseConformance, runConformance } from '../../vm/ts/conformance';
import { BpfVm, VmLoadError } from '../../vm/ts/vm';
import { assemble } from '../../vm/ts/asm';

const testsDir = path.join(conformanceDir, 'tests');
const negDir = path.join(conformanceDir, 'negative');
const list = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.data')).sort();

describe('bpf_conformance tests/', () => {
  for (const f of list(testsDir)) {
    test(f, () => {
      const t = parseConformance(fs.readFileSync(path.join(testsDir, f), 'utf8'), f);
      const out = runConformance(vmModule(), t);
      // One assertion that shows the VM's detail when the test fails.
      expect({ pass: out.pass, detail: out.pass ? '' : out.detail }).toEqual({ pass: true, detail: '' });
    });
  }
});

describe('bpf_conformance negative/', () => {
  for (const f of list(negDir)) {
    const text = (): string => fs.readFileSync(path.join(negDir, f), 'utf8');
    if (f.startsWith('unused-')) {
      test(`${f} is rejected at load`, () => {
        const t = parseConformance(text(), f);
        expect(t.raw).toBeDefined();
        const vm = BpfVm.create(vmModule(), { roArenaBytes: 4096, rwArenaBytes: 65536 });
        expect(() => vm.load(t.raw!)).toThrow(VmLoadError);
        expect(runConformance(vmModule(), t).pass).toBe(true); // "-- error" expected and produced
      });
    } else if (f.startsWith('invalid_') || f.startsWith('empty')) {
      test(`${f} is refused by the parser/assembler`, () => {
        let refused = false;
        try {
          const t = parseConformance(text(), f);
          if (t.raw === undefined) assemble(t.asm!);
        } catch {
          refused = true;
        }
        expect(refused).toBe(true);
      });
    } else {
      test(`${f} is reported as failing`, () => {
        const out = runConformance(vmModule(), parseConformance(text(), f));
        expect(out.pass).toBe(false);
      });
    }
  }
});
