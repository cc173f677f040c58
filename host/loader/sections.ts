// Section name → attach point, following libbpf's SEC() conventions. Programs whose section
// names a type we cannot run in user space come back as `unsupported` with a reason.

import type { AttachSpec } from '../../protocol/spec';
import { syscallTracepointProblem } from '../../protocol/syscalls';

export type SectionAttach =
  | { ok: true; attach: AttachSpec | null; note?: string }
  | { ok: false; reason: string };

/** bpf_override_return: a uprobe calling it replaces the function instead of observing it. */
export const HELPER_OVERRIDE_RETURN = 58;

const UNSUPPORTED_PREFIXES: [string, string][] = [
  ['kprobe.multi', 'kprobe.multi'],
  ['kretprobe.multi', 'kretprobe.multi'],
  ['uprobe.multi', 'uprobe.multi'],
  ['uretprobe.multi', 'uretprobe.multi'],
  ['ksyscall', 'ksyscall'],
  ['kretsyscall', 'kretsyscall'],
  ['fentry', 'fentry'],
  ['fexit', 'fexit'],
  ['fmod_ret', 'fmod_ret'],
  ['freplace', 'freplace'],
  ['lsm', 'LSM'],
  ['iter', 'iterator'],
  ['tp_btf', 'BTF tracepoint'],
  ['raw_tracepoint', 'raw tracepoint'],
  ['raw_tp', 'raw tracepoint'],
  ['perf_event', 'perf_event'],
  ['xdp', 'XDP'],
  ['tc', 'TC'],
  ['tcx', 'TCX'],
  ['classifier', 'TC classifier'],
  ['action', 'TC action'],
  ['socket', 'socket filter'],
  ['sk_skb', 'sk_skb'],
  ['sk_msg', 'sk_msg'],
  ['sk_lookup', 'sk_lookup'],
  ['sk_reuseport', 'sk_reuseport'],
  ['sockops', 'sockops'],
  ['cgroup', 'cgroup'],
  ['cgroup_skb', 'cgroup skb'],
  ['lwt_in', 'LWT'],
  ['lwt_out', 'LWT'],
  ['lwt_xmit', 'LWT'],
  ['lwt_seg6local', 'LWT'],
  ['flow_dissector', 'flow dissector'],
  ['netfilter', 'netfilter'],
  ['struct_ops', 'struct_ops'],
  ['syscall', 'BPF syscall program'],
  ['sk_filter', 'socket filter'],
];

const NUM = /^(0x[0-9a-fA-F]+|[0-9]+)$/;

function parseNumber(s: string): number | undefined {
  if (!NUM.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `BINARY:SYMBOL[+OFFSET]` or `BINARY:OFFSET` after `uprobe/`. */
function parseUprobeTarget(section: string, rest: string, mode: 'entry' | 'return'): SectionAttach {
  const kind = mode === 'entry' ? 'uprobe' : 'uretprobe';
  const colon = rest.indexOf(':');
  // `uprobe/SYMBOL` (bpftime's spelling; libbpf wants a binary): the symbol is looked up in
  // the main program, then in every loaded library.
  if (colon < 0 && /^[A-Za-z_.$][\w.$@]*$/.test(rest)) return { ok: true, attach: { kind: 'uprobe', mode, symbol: rest } };
  if (colon <= 0 || colon === rest.length - 1) {
    return { ok: true, attach: null, note: `section "${section}" is not ${kind}/BINARY:SYMBOL: give binary and symbol in the manifest` };
  }
  const binary = rest.slice(0, colon);
  const target = rest.slice(colon + 1);
  const asOffset = parseNumber(target);
  if (asOffset !== undefined) return { ok: true, attach: { kind: 'uprobe', mode, binary, offset: asOffset } };
  const plus = target.lastIndexOf('+');
  if (plus > 0) {
    const off = parseNumber(target.slice(plus + 1));
    if (off !== undefined) return { ok: true, attach: { kind: 'uprobe', mode, binary, symbol: target.slice(0, plus), offset: off } };
  }
  return { ok: true, attach: { kind: 'uprobe', mode, binary, symbol: target } };
}

/**
 * Attach point for a program in `section`. `helpers` are the ids the program calls: a uprobe
 * that calls bpf_override_return gets mode 'override'.
 */
export function sectionAttach(section: string, helpers: readonly number[] = []): SectionAttach {
  const slash = section.indexOf('/');
  const head = slash < 0 ? section : section.slice(0, slash);
  const rest = slash < 0 ? '' : section.slice(slash + 1);
  const override = helpers.includes(HELPER_OVERRIDE_RETURN);

  switch (head) {
    case 'uprobe':
    case 'uprobe.s':
    case 'uretprobe':
    case 'uretprobe.s': {
      const ret = head.startsWith('uretprobe');
      if (slash < 0 || rest === '') {
        return {
          ok: true,
          attach: null,
          note: `bare ${ret ? 'uretprobe' : 'uprobe'} section: give binary and symbol in the manifest`,
        };
      }
      const res = parseUprobeTarget(section, rest, ret ? 'return' : 'entry');
      if (res.ok && res.attach && res.attach.kind === 'uprobe' && !ret && override) res.attach.mode = 'override';
      return res;
    }
    case 'kprobe':
    case 'kretprobe': {
      const ret = head === 'kretprobe';
      const fn = rest ? ` (kernel function "${rest}")` : '';
      return {
        ok: true,
        attach: null,
        note: `${head} section${fn}: kprobes name kernel functions; point it at a user-space function in the manifest and it attaches as ${ret ? 'a uretprobe' : 'a uprobe'}`,
      };
    }
    case 'usdt':
    case 'usdt.s': {
      if (slash < 0 || rest === '') {
        return { ok: true, attach: null, note: 'bare usdt section: give binary, provider and probe in the manifest' };
      }
      // usdt/BINARY:PROVIDER:NAME, as libbpf spells it; the binary is what precedes the last two colons.
      const m = /^(.+):([^:]+):([^:]+)$/.exec(rest);
      // usdt/PROVIDER:NAME, as bpftrace's usdt:provider:name with -p: whatever binary of the
      // target has it (its main executable and loaded libraries, resolved with the target).
      const bare = /^([^:/]+):([^:/]+)$/.exec(rest);
      if (!m && bare) return { ok: true, attach: { kind: 'usdt', provider: bare[1], name: bare[2] } };
      if (!m) return { ok: true, attach: null, note: `section "${section}" is not usdt/BINARY:PROVIDER:NAME: give binary, provider and probe in the manifest` };
      return { ok: true, attach: { kind: 'usdt', binary: m[1], provider: m[2], name: m[3] } };
    }
    case 'tracepoint':
    case 'tp': {
      const parts = rest.split('/');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        return { ok: false, reason: `tracepoint section "${section}" is not tracepoint/CATEGORY/NAME` };
      }
      const [cat, name] = parts;
      if (cat === 'raw_syscalls' && (name === 'sys_enter' || name === 'sys_exit')) {
        return { ok: true, attach: { kind: 'syscall', phase: name === 'sys_enter' ? 'enter' : 'exit', syscall: '*' } };
      }
      if (cat === 'syscalls') {
        const m = /^sys_(enter|exit)_([A-Za-z0-9_]+)$/.exec(name);
        if (m) {
          // Unknown names are refused here, before anything is spawned (either spelling of
          // a renamed syscall is fine: sys_enter_umount and sys_enter_umount2 are both 166).
          const problem = syscallTracepointProblem(m[2]);
          if (problem !== null) return { ok: false, reason: `tracepoint syscalls/${name}: ${problem}` };
          return { ok: true, attach: { kind: 'syscall', phase: m[1] as 'enter' | 'exit', syscall: m[2] } };
        }
      }
      return { ok: false, reason: `tracepoint ${cat}/${name} is not a syscall tracepoint; only syscalls/sys_{enter,exit}_* and raw_syscalls/* are supported in user space` };
    }
    default:
      break;
  }
  for (const [prefix, what] of UNSUPPORTED_PREFIXES) {
    if (head === prefix || head.startsWith(`${prefix}.`) || head.startsWith(`${prefix}/`) || (prefix === 'cgroup' && head.startsWith('cgroup'))) {
      return { ok: false, reason: `${what} programs (section "${section}") cannot run in user space` };
    }
  }
  return { ok: false, reason: `unrecognized section name "${section}" (expected uprobe/, uretprobe/, usdt/, kprobe/, kretprobe/, tracepoint/ or tp/)` };
}
