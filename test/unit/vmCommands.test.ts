import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { conformanceDir } from '../support/paths';
import { ensureVmBuilt } from '../support/vmSupport';
import { registerVmCommands, findRepoRoot, type VmCommandIo } from '../../host/cli/vmCommands';

async function cli(args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
  ensureVmBuilt();
  const res = { out: [] as string[], err: [] as string[], code: 0 };
  const io: VmCommandIo = { out: (l) => res.out.push(l), err: (l) => res.err.push(l), fail: (c) => (res.code = c) };
  const program = new Command('bpftime-ts').exitOverride();
  registerVmCommands(program, io);
  await program.parseAsync(['node', 'bpftime-ts', ...args]);
  return res;
}

describe('bpftime-ts vm', () => {
  test('finds the repository root', () => {
    expect(fs.existsSync(path.join(findRepoRoot(), 'vm', 'Makefile'))).toBe(true);
  });
  test('vm run --hex with --mem', async () => {
    // ldxh %r0, [%r1]; be16 %r0; exit
    const r = await cli(['vm', 'run', '--hex', '6910000000000000dc00000010000000' + '9500000000000000', '--mem', '1122']);
    expect(r).toEqual({ out: ['4386'], err: [], code: 0 });
  });
  test('vm run FILE prints unsigned r0', async () => {
    const f = path.join(os.tmpdir(), `vmrun-${process.pid}.bin`);
    fs.writeFileSync(f, Buffer.from('b7000000ffffffff9500000000000000', 'hex'));
    const r = await cli(['vm', 'run', f]);
    fs.unlinkSync(f);
    expect(r.out).toEqual(['18446744073709551615']);
  });
  test('vm run errors: one line on stderr, exit code 1', async () => {
    const load = await cli(['vm', 'run', '--hex', 'ff00000000000000']);
    expect(load.out).toEqual([]);
    expect(load.err).toHaveLength(1);
    expect(load.err[0]).toMatch(/^bpftime-ts: error: .*pc 0: unknown opcode 0xff/);
    expect(load.code).toBe(1);
    const f = await cli(['vm', 'run', '--hex', '79100000000000009500000000000000']);
    expect(f.err[0]).toMatch(/^bpftime-ts: error: memory fault: pc 0: .*address 0x0/);
    expect(f.code).toBe(1);
    expect((await cli(['vm', 'run'])).code).toBe(1);
  });
  test('vm test prints PASS/FAIL and a summary', async () => {
    const good = ['add.data', 'call_local.data'].map((f) => path.join(conformanceDir, 'tests', f));
    const r = await cli(['vm', 'test', ...good]);
    expect(r.out).toEqual(['PASS add.data', 'PASS call_local.data', '2 passed, 0 failed']);
    expect(r.code).toBe(0);
    const bad = path.join(conformanceDir, 'negative', 'incorrect_return_value_high_bits.data');
    const inv = path.join(conformanceDir, 'negative', 'invalid_register.data');
    const r2 = await cli(['vm', 'test', good[0], bad, inv]);
    expect(r2.out[0]).toBe('PASS add.data');
    expect(r2.out[1]).toMatch(/^FAIL incorrect_return_value_high_bits.data: expected r0=0x8977665544332211, got 0x8877665544332211$/);
    expect(r2.out[2]).toMatch(/^FAIL invalid_register.data: .*invalid register/);
    expect(r2.out[3]).toBe('1 passed, 2 failed');
    expect(r2.code).toBe(1);
  });
});
