// The one table of the helpers bpftime-ts provides: kernel id, name, the kinds of its
// arguments and result (what the VM's verifier needs to follow pointers through a call),
// and where it runs. The TypeScript side reads it directly (helperSupport.ts, the runtime);
// the C side reads vm/src/bpfvm_helpers.h, generated from it by helperHeader()
// (scripts/gen-helpers.sh; test/unit/helperTable.test.ts checks the file is current).

/**
 * An argument: a map handle; a pointer the helper reads or writes (`size` is the argument,
 * 1-based, holding the byte count when there is one); the ringbuf record the helper takes
 * (submit / discard: the record is gone afterwards); a plain number; anything (a target
 * address the helper reads with a fault-safe copy, a context pointer).
 */
export type HelperArg =
  | { kind: 'map' }
  | { kind: 'read' | 'write'; size?: number }
  | { kind: 'record_release' }
  | { kind: 'scalar' }
  | { kind: 'any' };

/** What r0 holds afterwards: a number, a pointer to a value of the map in argument 1 (or NULL),
 * a ringbuf record of the size in argument 2 (or NULL). */
export type HelperResult = 'scalar' | 'map_value' | 'ringbuf_record';

/** Where the helper runs: inside the VM (C, both builds), in C in the native build and in
 * JavaScript in the wasm build, or always in JavaScript (the agent's helper table). */
export type HelperPlace = 'vm' | 'native' | 'js';

export interface HelperInfo {
  id: number;
  name: string;
  args: HelperArg[];
  result: HelperResult;
  runs: HelperPlace;
}

const map = { kind: 'map' } as const;
const num = { kind: 'scalar' } as const;
const any = { kind: 'any' } as const;
const read = (size?: number): HelperArg => ({ kind: 'read', size });
const write = (size?: number): HelperArg => ({ kind: 'write', size });
const release = { kind: 'record_release' } as const;

export const HELPERS: readonly HelperInfo[] = [
  { id: 1, name: 'map_lookup_elem', args: [map, read()], result: 'map_value', runs: 'vm' },
  { id: 2, name: 'map_update_elem', args: [map, read(), read(), num], result: 'scalar', runs: 'vm' },
  { id: 3, name: 'map_delete_elem', args: [map, read()], result: 'scalar', runs: 'vm' },
  { id: 4, name: 'probe_read', args: [write(2), num, any], result: 'scalar', runs: 'js' },
  { id: 5, name: 'ktime_get_ns', args: [], result: 'scalar', runs: 'native' },
  { id: 6, name: 'trace_printk', args: [read(2), num, any, any, any], result: 'scalar', runs: 'js' },
  { id: 7, name: 'get_prandom_u32', args: [], result: 'scalar', runs: 'js' },
  { id: 8, name: 'get_smp_processor_id', args: [], result: 'scalar', runs: 'native' },
  { id: 12, name: 'tail_call', args: [any, map, num], result: 'scalar', runs: 'js' },
  { id: 14, name: 'get_current_pid_tgid', args: [], result: 'scalar', runs: 'native' },
  { id: 15, name: 'get_current_uid_gid', args: [], result: 'scalar', runs: 'native' },
  { id: 16, name: 'get_current_comm', args: [write(2), num], result: 'scalar', runs: 'native' },
  { id: 25, name: 'perf_event_output', args: [any, map, num, read(5), num], result: 'scalar', runs: 'js' },
  { id: 27, name: 'get_stackid', args: [any, map, num], result: 'scalar', runs: 'js' },
  { id: 45, name: 'probe_read_str', args: [write(2), num, any], result: 'scalar', runs: 'js' },
  { id: 58, name: 'override_return', args: [any, num], result: 'scalar', runs: 'native' },
  { id: 67, name: 'get_stack', args: [any, write(3), num, num], result: 'scalar', runs: 'js' },
  { id: 87, name: 'map_push_elem', args: [map, read(), num], result: 'scalar', runs: 'js' },
  { id: 88, name: 'map_pop_elem', args: [map, write()], result: 'scalar', runs: 'js' },
  { id: 89, name: 'map_peek_elem', args: [map, write()], result: 'scalar', runs: 'js' },
  { id: 112, name: 'probe_read_user', args: [write(2), num, any], result: 'scalar', runs: 'native' },
  { id: 113, name: 'probe_read_kernel', args: [write(2), num, any], result: 'scalar', runs: 'js' },
  { id: 114, name: 'probe_read_user_str', args: [write(2), num, any], result: 'scalar', runs: 'native' },
  { id: 115, name: 'probe_read_kernel_str', args: [write(2), num, any], result: 'scalar', runs: 'js' },
  { id: 125, name: 'ktime_get_boot_ns', args: [], result: 'scalar', runs: 'native' },
  { id: 130, name: 'ringbuf_output', args: [map, read(3), num, num], result: 'scalar', runs: 'js' },
  { id: 131, name: 'ringbuf_reserve', args: [map, num, num], result: 'ringbuf_record', runs: 'js' },
  { id: 132, name: 'ringbuf_submit', args: [release, num], result: 'scalar', runs: 'js' },
  { id: 133, name: 'ringbuf_discard', args: [release, num], result: 'scalar', runs: 'js' },
  { id: 134, name: 'ringbuf_query', args: [map, num], result: 'scalar', runs: 'js' },
  { id: 165, name: 'snprintf', args: [write(2), num, read(), read(5), num], result: 'scalar', runs: 'js' },
  { id: 173, name: 'get_func_ip', args: [any], result: 'scalar', runs: 'js' },
  { id: 174, name: 'get_attach_cookie', args: [any], result: 'scalar', runs: 'js' },
  { id: 177, name: 'trace_vprintk', args: [read(2), num, read(4), num], result: 'scalar', runs: 'js' },
  // bpf_loop: an interpreter intrinsic (PSEUDO_FUNC callbacks run inside the VM).
  { id: 181, name: 'loop', args: [num, any, any, num], result: 'scalar', runs: 'vm' },
  { id: 182, name: 'strncmp', args: [read(2), num, read()], result: 'scalar', runs: 'js' },
];

export const HELPER_BY_NAME: ReadonlyMap<string, HelperInfo> = new Map(HELPERS.map((h) => [h.name, h]));

/** The id of helper `name` (without the bpf_ prefix); throws for a helper not in the table. */
export function helperId(name: string): number {
  const h = HELPER_BY_NAME.get(name);
  if (!h) throw new Error(`no helper ${name} in protocol/helperTable.ts`);
  return h.id;
}

/** vm/src/bpfvm_helpers.h: the table as the C verifier and interpreter read it. */
export function helperHeader(): string {
  const argKind = (a: HelperArg): string =>
    ({ map: 'BPFVM_ARG_MAP', read: 'BPFVM_ARG_READ', write: 'BPFVM_ARG_WRITE', record_release: 'BPFVM_ARG_RELEASE', scalar: 'BPFVM_ARG_SCALAR', any: 'BPFVM_ARG_ANY' })[a.kind];
  const result = (r: HelperResult): string => ({ scalar: 'BPFVM_RET_SCALAR', map_value: 'BPFVM_RET_MAP_VALUE', ringbuf_record: 'BPFVM_RET_RECORD' })[r];
  const rows = HELPERS.map((h) => {
    const args = [0, 1, 2, 3, 4].map((i) => (h.args[i] ? argKind(h.args[i]) : 'BPFVM_ARG_NONE')).join(', ');
    const sizes = [0, 1, 2, 3, 4].map((i) => { const a = h.args[i]; return a && (a.kind === 'read' || a.kind === 'write') ? a.size ?? 0 : 0; }).join(', ');
    return `  {${h.id}, {${args}}, {${sizes}}, ${result(h.result)}}, /* ${h.name} */`;
  });
  return [
    '/* Generated from protocol/helperTable.ts by scripts/gen-helpers.sh; do not edit. */',
    '#ifndef BPFVM_HELPERS_H',
    '#define BPFVM_HELPERS_H',
    '#include <stdint.h>',
    '',
    'enum bpfvm_arg_kind { BPFVM_ARG_NONE, BPFVM_ARG_MAP, BPFVM_ARG_READ, BPFVM_ARG_WRITE, BPFVM_ARG_RELEASE, BPFVM_ARG_SCALAR, BPFVM_ARG_ANY };',
    'enum bpfvm_ret_kind { BPFVM_RET_SCALAR, BPFVM_RET_MAP_VALUE, BPFVM_RET_RECORD };',
    '',
    'typedef struct {',
    '  uint32_t id;',
    '  uint8_t arg[5];  /* enum bpfvm_arg_kind of r1..r5 */',
    '  uint8_t size[5]; /* read / write: the argument (1-based) holding the byte count, 0 if none */',
    '  uint8_t ret;     /* enum bpfvm_ret_kind */',
    '} bpfvm_helper_info;',
    '',
    `#define BPFVM_NHELPER_INFO ${HELPERS.length}`,
    'static const bpfvm_helper_info BPFVM_HELPER_INFO[BPFVM_NHELPER_INFO] = {',
    ...rows,
    '};',
    '',
    ...HELPERS.map((h) => `#define BPFVM_HELPER_${h.name.toUpperCase()} ${h.id}`),
    '',
    '#endif',
    '',
  ].join('\n');
}
