// `bpftime-ts disasm FILE.bpf.o [--section S]`: the loaded (linked, relocated) programs
// in the same assembly syntax the VM's assembler reads.

import { Command } from 'commander';
import { disassemble } from '../../vm/ts/disasm';
import { loadObject } from '../loader/loadObject';
import { LoaderError } from '../loader/errors';
import { exitCodeFor } from './exitCodes';

export function disasmText(file: string, section?: string): string {
  const spec = loadObject(file);
  const programs = spec.programs.filter((p) => section === undefined || p.section === section || p.name === section);
  if (programs.length === 0) {
    const have = spec.programs.map((p) => `${p.section} (${p.name})`).join(', ') || 'none';
    throw new LoaderError(`${file}: no program in section "${section}"; programs: ${have}`);
  }
  const out: string[] = [];
  for (const p of programs) {
    out.push(`${p.name} (section ${p.section}, ${p.insnCount} instructions):`);
    for (const line of disassemble(new Uint8Array(Buffer.from(p.code, 'base64')), { withPc: true })) out.push(`  ${line}`);
    out.push('');
  }
  return out.join('\n');
}

export function registerDisasmCommand(program: Command): void {
  program
    .command('disasm')
    .description('disassemble the programs of a clang-built eBPF object after linking and relocation')
    .argument('<file>', 'eBPF object file (.bpf.o)')
    .option('-s, --section <section>', 'only the program in this section (or with this name)')
    .addHelpText('after', '\nExample:\n  $ bpftime-ts disasm count.bpf.o --section uprobe/./victim:target_add')
    .action((file: string, opts: { section?: string }) => {
      try {
        process.stdout.write(disasmText(file, opts.section));
      } catch (e) {
        if (!(e instanceof LoaderError)) throw e;
        process.stderr.write(`bpftime-ts: error: ${e.message}\n`);
        process.exitCode = exitCodeFor(e);
      }
    });
}
