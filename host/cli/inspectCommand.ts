// `bpftime-ts inspect FILE.bpf.o [--json]`: what the loader makes of an object file.

import type { Command } from 'commander';
import type { AttachSpec, ObjectSpec } from '../../protocol/spec';
import { LoaderError } from '../loader/errors';
import { helperName } from '../../protocol/helperNames';
import { exitCodeFor } from './exitCodes';
import { loadObject } from '../loader/loadObject';
import { describeRefusal, overrideIgnored, refusals } from '../loader/refusals';

export function describeAttach(a: AttachSpec | null): string {
  if (!a) return '(none)';
  if (a.kind === 'syscall') return `syscall ${a.phase} ${a.syscall}`;
  if (a.kind === 'usdt') return `usdt ${a.binary ?? '(target)'}:${a.provider}:${a.name}`;
  let target = a.address ?? a.symbol ?? '';
  if (a.binary !== undefined) target = `${a.binary}:${a.symbol ?? ''}`;
  if (a.offset !== undefined) target += a.symbol ? `+0x${a.offset.toString(16)}` : `0x${a.offset.toString(16)}`;
  return `uprobe ${a.mode} ${target}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

/** The human-readable report printed by `inspect`. */
export function formatObject(spec: ObjectSpec): string {
  const out: string[] = [];
  out.push(`${spec.path}: license "${spec.license}"${spec.kernelVersion ? `, version 0x${spec.kernelVersion.toString(16)}` : ''}, BTF ${spec.btf ? `${spec.btf.types.length - 1} types` : 'absent'}`);
  out.push('', `programs (${spec.programs.length}):`);
  if (spec.programs.length) {
    const rows = [['NAME', 'SECTION', 'ATTACH', 'INSNS', 'HELPERS']];
    for (const p of spec.programs) {
      rows.push([p.name, p.section, describeAttach(p.attach), String(p.insnCount), p.helpers.map(helperName).join(',') || '-']);
    }
    out.push(table(rows).replace(/^/gm, '  '));
    for (const p of spec.programs) if (p.attachNote) out.push(`  note: ${p.name}: ${p.attachNote}`);
    for (const p of spec.programs) {
      const w = overrideIgnored(p, p.attach);
      if (w !== null) out.push(`  warning: ${w}`);
    }
  }
  out.push('', `maps (${spec.maps.length}):`);
  if (spec.maps.length) {
    const rows = [['#', 'NAME', 'TYPE', 'KEY', 'VALUE', 'MAX', 'FLAGS', 'ORIGIN']];
    for (const m of spec.maps) {
      rows.push([String(m.index), m.name, m.unsupported ? `${m.unsupported.kernelType} (unsupported)` : m.type, String(m.keySize), String(m.valueSize), String(m.maxEntries), `0x${m.flags.toString(16)}`, m.origin + (m.readOnly ? ' (ro)' : '')]);
    }
    out.push(table(rows).replace(/^/gm, '  '));
  }
  if (spec.unsupported.length) {
    out.push('', `unsupported (${spec.unsupported.length}):`);
    for (const u of spec.unsupported) out.push(`  ${u.name} (${u.section}): ${u.reason}`);
  }
  const refused = refusals(spec);
  if (refused.length) {
    out.push('', `a run refuses (${refused.length}):`);
    for (const r of refused) out.push(`  ${describeRefusal(r)}`);
  }
  return out.join('\n');
}

/** JSON summary: the ObjectSpec without the (large) BTF table and code. */
export function objectSummary(spec: ObjectSpec): unknown {
  return {
    path: spec.path,
    license: spec.license,
    kernelVersion: spec.kernelVersion,
    btfTypes: spec.btf ? spec.btf.types.length - 1 : 0,
    programs: spec.programs.map((p) => ({
      name: p.name,
      section: p.section,
      attach: p.attach,
      ...(p.attachNote ? { attachNote: p.attachNote } : {}),
      insnCount: p.insnCount,
      helpers: p.helpers.map((id) => ({ id, name: helperName(id) })),
      maps: p.maps,
    })),
    maps: spec.maps.map(({ initialData, ...m }) => ({ ...m, ...(initialData !== undefined ? { initialDataBytes: Buffer.from(initialData, 'base64').length } : {}) })),
    unsupported: spec.unsupported,
    refusals: refusals(spec),
    warnings: spec.programs.map((p) => overrideIgnored(p, p.attach)).filter((w): w is string => w !== null),
  };
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('show the programs and maps the loader finds in a clang-built eBPF object')
    .argument('<file>', 'eBPF object file (.bpf.o)')
    .option('--json', 'print the object summary as JSON')
    .addHelpText('after', '\nExample:\n  $ bpftime-ts inspect examples/build/count.bpf.o')
    .action((file: string, opts: { json?: boolean }) => {
      try {
        const spec = loadObject(file);
        process.stdout.write(`${opts.json ? JSON.stringify(objectSummary(spec), null, 2) : formatObject(spec)}\n`);
      } catch (e) {
        if (!(e instanceof LoaderError)) throw e;
        process.stderr.write(`bpftime-ts: error: ${e.message}\n`);
        process.exitCode = exitCodeFor(e);
      }
    });
}
