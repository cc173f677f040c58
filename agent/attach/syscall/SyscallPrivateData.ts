import type { AttachSpec } from '../../../protocol/spec.js';
import { AttachError, type AttachPrivateData } from '../../runtime/AttachImpl.js';
import { syscallNumber } from './syscallTable.js';

/**
 * A syscall tracepoint's attach point: enter or exit, and one syscall number or all of
 * them (raw_syscalls), after bpftime's syscall_trace_attach_private_data.
 */
export class SyscallPrivateData implements AttachPrivateData {
  readonly description: string;

  constructor(
    readonly phase: 'enter' | 'exit',
    /** x86-64 syscall number; null for raw_syscalls (every syscall). */
    readonly nr: number | null,
    name: string,
  ) {
    this.description = nr === null ? `raw_syscalls:sys_${phase}` : `syscalls:sys_${phase}_${name}`;
  }

  static fromSpec(spec: AttachSpec): SyscallPrivateData {
    if (spec.kind !== 'syscall') throw new AttachError(`not a syscall tracepoint: ${JSON.stringify(spec)}`);
    if (spec.phase !== 'enter' && spec.phase !== 'exit') throw new AttachError(`syscall phase must be enter or exit, not ${String(spec.phase)}`);
    if (spec.syscall === '*') return new SyscallPrivateData(spec.phase, null, '*');
    // The kernel names some tracepoints after a wrapper-free name (sys_enter_newfstatat is
    // the event of newfstatat); the table already uses the kernel's names.
    const nr = syscallNumber(spec.syscall);
    if (nr === undefined) throw new AttachError(`unknown x86-64 syscall ${spec.syscall} (tracepoint syscalls/sys_${spec.phase}_${spec.syscall})`);
    return new SyscallPrivateData(spec.phase, nr, spec.syscall);
  }
}
