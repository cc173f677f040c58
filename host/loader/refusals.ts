// Everything in an object a run would refuse, found before anything is spawned and reported
// all at once (inspect lists it; a run refuses with all of it in one line): map types we do
// not have or definitions the kernel would refuse, helpers we do not provide, externs we
// cannot resolve. Programs whose section cannot run in user space are not refusals: a run
// skips them (with a warning), as they could never have been meant to run here. Warnings
// are things that run, but not as written (an override that an attach type ignores).

import { helperName } from '../../protocol/helperNames';
import { isSupportedHelper } from '../../protocol/helperSupport';
import {
  BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_STACK_BUILD_ID, BPF_F_WRONLY, BPF_F_WRONLY_PROG, BPF_F_ZERO_SEED,
  type AttachSpec, type MapSpec, type ObjectSpec, type ProgramSpec,
} from '../../protocol/spec';

/** bpf_override_return. */
const OVERRIDE_RETURN = 58;
const ACCESS = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
/** The kernel's LPM_DATA_SIZE_MAX and LPM_VAL_SIZE_MAX. */
const LPM_DATA_MAX = 256;
const LPM_VALUE_MAX = (1 << 16) - 1 - 4 - 8 - 8 - 8 * 2;

export interface Refusal {
  kind: 'map' | 'helper' | 'extern';
  /** The map or program it concerns. */
  name: string;
  reason: string;
}

/** Why the kernel would refuse this map definition (bpf_map_alloc_check of its type), or null. */
export function mapDefinitionProblem(m: MapSpec): string | null {
  const extraFlags = (allowed: number): string | null => (m.flags & ~allowed ? `map_flags 0x${m.flags.toString(16)} has flags a ${m.type} does not take` : null);
  if (m.unsupported) return m.unsupported.reason;
  switch (m.type) {
    case 'queue':
    case 'stack':
      if (m.keySize !== 0) return `a ${m.type} has no key (key_size must be 0, not ${m.keySize})`;
      if (m.valueSize <= 0 || m.maxEntries <= 0) return `a ${m.type} needs value_size and max_entries > 0`;
      return extraFlags(BPF_F_NUMA_NODE | ACCESS);
    case 'bloom_filter':
      if (m.keySize !== 0) return `a bloom_filter has no key (key_size must be 0, not ${m.keySize})`;
      if (m.valueSize <= 0 || m.maxEntries <= 0) return 'a bloom_filter needs value_size and max_entries > 0';
      if ((m.mapExtra ?? 0) & ~0xf) return `map_extra ${m.mapExtra} is not a number of hash functions (0..15)`;
      return extraFlags(BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | ACCESS);
    case 'lpm_trie':
      if (m.keySize < 5 || m.keySize > 4 + LPM_DATA_MAX) return `an lpm_trie key is a u32 prefix length and 1..${LPM_DATA_MAX} data bytes (key_size ${m.keySize})`;
      if (m.valueSize <= 0 || m.valueSize > LPM_VALUE_MAX || m.maxEntries <= 0) return 'an lpm_trie needs value_size and max_entries > 0';
      if (!(m.flags & BPF_F_NO_PREALLOC)) return 'an lpm_trie needs map_flags BPF_F_NO_PREALLOC (the kernel refuses it without)';
      return extraFlags(BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | ACCESS);
    case 'stack_trace':
      if (m.keySize !== 4) return `a stack_trace key is a u32 stack id (key_size ${m.keySize})`;
      if (m.valueSize < 8 || m.valueSize % 8 !== 0 || m.maxEntries <= 0) return 'a stack_trace value is an array of u64 addresses (value_size a multiple of 8) and max_entries > 0';
      if (m.flags & BPF_F_STACK_BUILD_ID) return 'BPF_F_STACK_BUILD_ID stacks (build id + offset) are not supported; addresses are';
      return extraFlags(BPF_F_NUMA_NODE | ACCESS);
    default:
      return null;
  }
}

/** What the object's maps and the given programs need that this runtime does not provide. */
export function refusals(obj: ObjectSpec, programs: readonly ProgramSpec[] = obj.programs): Refusal[] {
  const out: Refusal[] = [];
  for (const m of obj.maps) {
    const problem = mapDefinitionProblem(m);
    if (problem !== null) out.push({ kind: 'map', name: m.name, reason: problem });
  }
  for (const p of programs) {
    const missing = p.helpers.filter((h) => !isSupportedHelper(h));
    if (missing.length) {
      out.push({ kind: 'helper', name: p.name, reason: `calls ${missing.map((h) => `${helperName(h)} (#${h})`).join(', ')}, which bpftime-ts does not provide` });
    }
    for (const e of p.unresolvedExterns ?? []) out.push({ kind: 'extern', name: p.name, reason: e.reason });
  }
  return out;
}

/** One line for a refusal: `map "q": ...` / `program "p": ...`. */
export function describeRefusal(r: Refusal): string {
  return `${r.kind === 'map' ? 'map' : 'program'} "${r.name}": ${r.reason}`;
}

/** A program that calls bpf_override_return attached where no override can happen: the call just fails. */
export function overrideIgnored(p: ProgramSpec, attach: AttachSpec | null): string | null {
  if (!p.helpers.includes(OVERRIDE_RETURN)) return null;
  if (attach === null) return `program "${p.name}" calls bpf_override_return: attach it with type "uprobe_override" (as "uprobe" the override is ignored)`;
  if (attach.kind === 'uprobe' && attach.mode !== 'override') {
    return `program "${p.name}" calls bpf_override_return but attaches as a ${attach.mode === 'entry' ? 'uprobe' : 'uretprobe'}: the override is ignored (use type "uprobe_override")`;
  }
  return null;
}
