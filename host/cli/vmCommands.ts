// `bpftime-ts vm run` / `bpftime-ts vm test`: run raw eBPF programs and conformance vectors
// on the wasm VM in this Node process (no target process involved).
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { repoRoot } from '../paths';
import { BpfVm, VmFault, VmLoadError, type WasmModule } from '../../vm/ts/vm.js';
import { toWasmModule } from '../../vm/ts/wasmApi.js';
import { exitCodeFor } from './exitCodes';
import { parseConformance, registerTestHelpers, runConformance } from '../../vm/ts/conformance.js';

export interface VmCommandIo {
  out(line: string): void;
  err(line: string): void;
  fail(code: number): void;
}

const defaultIo: VmCommandIo = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  fail: (code) => {
    process.exitCode = code;
  },
};

/** The repository root: the nearest ancestor of this file holding package.json. */
/** The checkout root (kept under this name for the tests that import it). */
export const findRepoRoot = repoRoot;

let cachedModule: WasmModule | undefined;
export function loadVmModule(): WasmModule {
  if (!cachedModule) {
    const p = path.join(findRepoRoot(), 'vm', 'build', 'bpfvm.wasm');
    if (!fs.existsSync(p)) throw new Error(`${p} is missing; run \`make -C vm\` (or npm run build)`);
    cachedModule = toWasmModule(fs.readFileSync(p));
  }
  return cachedModule;
}

export function parseHex(s: string, what: string): Uint8Array {
  const clean = s.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(clean)) throw new Error(`${what}: invalid hex string`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function registerVmCommands(program: Command, io: VmCommandIo = defaultIo): void {
  const vm = program
    .command('vm')
    .description('run eBPF programs on the built-in VM (no target process)')
    .addHelpText('after', '\nExamples:\n  $ bpftime-ts vm run --hex b7000000070000009500000000000000\n  $ bpftime-ts vm test test/conformance/bpf_conformance/tests/*.data');

  vm.command('run')
    .description('run a raw program (little-endian 8-byte instructions); prints r0 as unsigned decimal')
    .argument('[file]', 'file holding the raw instructions')
    .option('--hex <hex>', 'program as a hex string instead of FILE')
    .option('--mem <hex>', 'memory passed to the program: r1 = its address, r2 = its length')
    .addHelpText('after', '\nExample:\n  # mov %r0, 7; exit\n  $ bpftime-ts vm run --hex b7000000070000009500000000000000\n  7')
    .option('--budget <n>', 'instruction budget', (v) => Number(v))
    .action((file: string | undefined, opts: { hex?: string; mem?: string; budget?: number }) => {
      try {
        if ((file === undefined) === (opts.hex === undefined)) throw new Error('give exactly one of FILE or --hex');
        const code = opts.hex !== undefined ? parseHex(opts.hex, '--hex') : new Uint8Array(fs.readFileSync(file!));
        const mem = opts.mem !== undefined ? parseHex(opts.mem, '--mem') : new Uint8Array(0);
        if (opts.budget !== undefined && !(opts.budget > 0)) throw new Error('--budget must be a positive number');
        const machine = BpfVm.create(loadVmModule(), { budget: opts.budget, rwArenaBytes: Math.max(1 << 20, mem.length + 65536) });
        registerTestHelpers(machine);
        const h = machine.load(code, { name: file ? path.basename(file) : 'hex' });
        let ctx = 0;
        if (mem.length) {
          ctx = machine.allocRw(mem.length);
          machine.write(ctx, mem);
        }
        io.out(machine.run(h, ctx, mem.length).toString());
      } catch (e) {
        const msg = e instanceof VmLoadError ? `load: ${e.message}` : e instanceof VmFault ? `${e.kind} fault: ${e.message}` : (e as Error).message;
        io.err(`bpftime-ts: error: ${msg}`);
        io.fail(exitCodeFor(e));
      }
    });

  vm.command('test')
    .description('run bpf_conformance .data files; prints PASS/FAIL per file and a summary')
    .argument('<files...>', '.data files')
    .addHelpText('after', '\nExample:\n  $ bpftime-ts vm test test/conformance/bpf_conformance/tests/add.data')
    .action((files: string[]) => {
      let passed = 0;
      let failed = 0;
      for (const f of files) {
        const name = path.basename(f);
        let line: string;
        try {
          const t = parseConformance(fs.readFileSync(f, 'utf8'), name);
          const r = runConformance(loadVmModule(), t);
          line = r.pass ? `PASS ${name}` : `FAIL ${name}: ${r.detail}`;
          if (r.pass) passed++;
          else failed++;
        } catch (e) {
          line = `FAIL ${name}: ${(e as Error).message}`;
          failed++;
        }
        io.out(line);
      }
      io.out(`${passed} passed, ${failed} failed`);
      if (failed) io.fail(exitCodeFor({ kind: 'checks-failed' }));
    });
}
