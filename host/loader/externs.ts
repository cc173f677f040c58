// Extern variables of an object (`extern ... __kconfig`, `__ksym`, kfuncs), resolved the way
// libbpf resolves them where a user-space runtime can: `__kconfig` externs become variables
// of a read-only `.kconfig` map (libbpf builds the same map), with the values below; a weak
// one we know nothing about is 0, as libbpf makes it. Kernel symbols (`__ksym`) and kfuncs
// name kernel objects and functions, which do not exist here: the programs that reach them
// are reported, not the whole object (ProgramSpec.unresolvedExterns).

import * as os from 'os';
import type { BtfSpec } from '../../protocol/btf';
import type { MapSpec } from '../../protocol/spec';
import { btfType, findDatasec, skipModifiers, typeSize } from './btf';
import { SHN_UNDEF, STB_WEAK, STT_SECTION, type ElfSymbol } from './elf';
import { withContext } from './errors';
import type { LoadedMap } from './maps';

/** How a relocation against an undefined symbol turns out. */
export type ExternResolution = { kind: 'value'; map: number; offset: number } | { kind: 'unresolved'; reason: string };

/** Section index of the synthetic `.kconfig` map (it is in no ELF section). */
export const KCONFIG_SECTION = -1;

/** KERNEL_VERSION(a, b, c) of the machine's kernel, as libbpf computes LINUX_KERNEL_VERSION. */
function kernelVersion(): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(os.release());
  if (!m) return 0;
  return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(255, Number(m[3] ?? 0));
}

/**
 * Values of the `__kconfig` externs this runtime answers. LINUX_HAS_BPF_COOKIE is true: every
 * attach point here carries a cookie (libbpf's usdt.bpf.h then finds a USDT's spec through
 * bpf_get_attach_cookie). LINUX_HAS_SYSCALL_WRAPPER is x86-64's answer (BPF_KSYSCALL).
 */
function knownKconfig(name: string): bigint | undefined {
  switch (name) {
    case 'LINUX_HAS_BPF_COOKIE':
    case 'LINUX_HAS_SYSCALL_WRAPPER':
      return 1n;
    case 'LINUX_KERNEL_VERSION':
      return BigInt(kernelVersion());
    default:
      return undefined;
  }
}

export interface Externs {
  /** The `.kconfig` map, when the object declares `__kconfig` externs. */
  kconfig: LoadedMap | null;
  /** Resolution of a relocation against the undefined symbol `name`; `call` when the instruction is a call (a kfunc). */
  resolve(name: string, call: boolean): ExternResolution;
}

export function collectExterns(btf: BtfSpec | null, symbols: readonly ElfSymbol[]): Externs {
  const weak = new Set(symbols.filter((s) => s.shndx === SHN_UNDEF && s.bind === STB_WEAK && s.type !== STT_SECTION).map((s) => s.name));
  const kconfigVars = new Map<string, { offset: number; size: number; btfTypeId: number }>();
  let kconfig: LoadedMap | null = null;
  const ds = btf ? findDatasec(btf, '.kconfig') : undefined;
  if (btf && ds) {
    withContext('section ".kconfig"', () => {
      let offset = 0;
      const vars: NonNullable<MapSpec['vars']> = [];
      const known: { offset: number; size: number; value: bigint; btfTypeId: number }[] = [];
      for (const v of ds.type.vars) {
        const varTy = btfType(btf, v.type);
        if (varTy.kind !== 'var') continue;
        const size = typeSize(btf, varTy.type);
        const align = Math.min(8, size > 0 ? 1 << Math.floor(Math.log2(size)) : 1);
        offset = Math.ceil(offset / align) * align;
        const value = knownKconfig(varTy.name);
        if (value !== undefined || weak.has(varTy.name)) {
          kconfigVars.set(varTy.name, { offset, size, btfTypeId: varTy.type });
          vars.push({ name: varTy.name, offset, size, btfTypeId: varTy.type });
          if (value !== undefined) known.push({ offset, size, value, btfTypeId: varTy.type });
        }
        offset += Math.max(size, 1);
      }
      const data = new Uint8Array(Math.max(8, Math.ceil(offset / 8) * 8));
      for (const k of known) {
        const ty = btfType(btf, skipModifiers(btf, k.btfTypeId));
        const v = ty.kind === 'int' && ty.bool ? (k.value !== 0n ? 1n : 0n) : k.value;
        for (let i = 0; i < k.size; i++) data[k.offset + i] = Number((v >> BigInt(8 * i)) & 0xffn);
      }
      kconfig = {
        spec: {
          index: 0,
          name: '.kconfig',
          type: 'array',
          keySize: 4,
          valueSize: data.length,
          maxEntries: 1,
          flags: 0,
          origin: 'rodata',
          readOnly: true,
          initialData: Buffer.from(data).toString('base64'),
          btfKeyTypeId: 0,
          btfValueTypeId: ds.id,
          vars,
        },
        sectionIndex: KCONFIG_SECTION,
        sectionOffset: 0,
      };
    });
  }
  const ksyms = new Set<string>();
  const ksymDs = btf ? findDatasec(btf, '.ksyms') : undefined;
  if (btf && ksymDs) {
    for (const v of ksymDs.type.vars) {
      const t = btf.types[v.type];
      if (t && (t.kind === 'var' || t.kind === 'func')) ksyms.add(t.name);
    }
  }
  return {
    kconfig,
    resolve(name, call) {
      if (call) return { kind: 'unresolved', reason: `kfunc ${name}() is a kernel function` };
      const k = kconfigVars.get(name);
      if (k && kconfig) return { kind: 'value', map: kconfig.spec.index, offset: k.offset };
      if (ds?.type.vars.some((v) => btf!.types[v.type]?.kind === 'var' && (btf!.types[v.type] as { name: string }).name === name)) {
        return { kind: 'unresolved', reason: `__kconfig extern ${name} is not known here (declare it __weak to read 0)` };
      }
      if (ksyms.has(name)) return { kind: 'unresolved', reason: `__ksym extern ${name} names a kernel symbol` };
      return { kind: 'unresolved', reason: `extern ${name} is defined nowhere in the object` };
    },
  };
}
