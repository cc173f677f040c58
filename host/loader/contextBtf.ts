// Our own description of the context structs a program reads through CO-RE: the layout the
// agent builds in memory (x86-64 kernel `struct pt_regs`, syscall tracepoint records).
// CO-RE relocations against these names are resolved to these layouts.

export type CtxType =
  | { kind: 'int'; size: number; signed: boolean }
  | { kind: 'struct'; name: string; size: number; fields: CtxField[] }
  | { kind: 'array'; elem: CtxType; nelems: number };

export interface CtxField {
  name: string;
  /** Byte offset in the enclosing struct. */
  offset: number;
  type: CtxType;
}

const ulong: CtxType = { kind: 'int', size: 8, signed: false };
const long: CtxType = { kind: 'int', size: 8, signed: true };

const PT_REGS_FIELDS = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8',
  'ax', 'cx', 'dx', 'si', 'di', 'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss',
];

/** Kernel x86-64 pt_regs: 21 unsigned longs, 168 bytes. */
const ptRegs: CtxType = {
  kind: 'struct',
  name: 'pt_regs',
  size: 168,
  fields: PT_REGS_FIELDS.map((name, i) => ({ name, offset: i * 8, type: ulong })),
};

/** struct trace_entry: u16 type; u8 flags; u8 preempt_count; s32 pid. */
const traceEntry: CtxType = {
  kind: 'struct',
  name: 'trace_entry',
  size: 8,
  fields: [
    { name: 'type', offset: 0, type: { kind: 'int', size: 2, signed: false } },
    { name: 'flags', offset: 2, type: { kind: 'int', size: 1, signed: false } },
    { name: 'preempt_count', offset: 3, type: { kind: 'int', size: 1, signed: false } },
    { name: 'pid', offset: 4, type: { kind: 'int', size: 4, signed: true } },
  ],
};

const sysEnter: CtxType = {
  kind: 'struct',
  name: 'trace_event_raw_sys_enter',
  size: 64,
  fields: [
    { name: 'ent', offset: 0, type: traceEntry },
    { name: 'id', offset: 8, type: long },
    { name: 'args', offset: 16, type: { kind: 'array', elem: ulong, nelems: 6 } },
  ],
};

const sysExit: CtxType = {
  kind: 'struct',
  name: 'trace_event_raw_sys_exit',
  size: 24,
  fields: [
    { name: 'ent', offset: 0, type: traceEntry },
    { name: 'id', offset: 8, type: long },
    { name: 'ret', offset: 16, type: long },
  ],
};

export const CONTEXT_STRUCTS: ReadonlyMap<string, CtxType> = new Map([
  ['pt_regs', ptRegs],
  ['trace_entry', traceEntry],
  ['trace_event_raw_sys_enter', sysEnter],
  ['trace_event_raw_sys_exit', sysExit],
]);

export function ctxTypeSize(t: CtxType): number {
  return t.kind === 'array' ? ctxTypeSize(t.elem) * t.nelems : t.size;
}
