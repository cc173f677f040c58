// What the CLI prints while and after a target runs: printk lines, records, maps and the
// stats line, as human text or one JSON object per line (--json).
//
// printk's human form is `<tid> <program>: text`. trace_pipe's own prefix
// (`comm-pid [cpu] flags timestamp: bpf_trace_printk:`) names a CPU and a timestamp we do not
// have; tid then program keeps the same order (who, then what) and stays greppable.

import type { Writable } from 'stream';
import type { AgentEvent, MapDump, ProgramStats, RecordStats } from '../../protocol/messages.js';
import type { ObjectSpec } from '../../protocol/spec.js';
import { decodeAll, mapText } from './mapText.js';
import { decodeRecord, findStruct, recordTypeId } from './records.js';
import { RecordTable } from './recordTable.js';
import type { JsonValue } from './jsonValue.js';

export interface EventPrinterOptions {
  objects: ObjectSpec[];
  json: boolean;
  out?: Writable | NodeJS.WritableStream;
  /** Map names to draw as log2 histograms (manifest output.histograms). */
  histograms?: string[];
  /** Ring buffer / perf map name → struct name of its records (manifest output.records). */
  records?: Record<string, string>;
  /** Maps whose integer keys are syscall numbers (manifest output.syscalls; `*syscall*` maps anyway). */
  syscalls?: string[];
  /** Only these maps and globals in map prints (--maps). */
  maps?: string[];
  /** A time column on records (--timestamps), like libbpf-tools' -T. */
  timestamps?: boolean;
}

/**
 * Names in output options that match nothing in the objects: a misspelt one would silently
 * print nothing (or hex) for the whole run, so the CLI refuses it before attaching.
 */
export function unknownOutputName(objects: ObjectSpec[], o: Pick<EventPrinterOptions, 'records' | 'histograms' | 'syscalls' | 'maps'>): string | null {
  const names = new Set<string>();
  for (const obj of objects) {
    for (const m of obj.maps) {
      names.add(m.name);
      for (const v of m.origin === 'rodata' ? [] : m.vars ?? []) names.add(v.name);
    }
  }
  for (const [mapName, struct] of Object.entries(o.records ?? {})) {
    const owners = objects.filter((x) => x.maps.some((m) => m.name === mapName));
    if (owners.length === 0) return `output.records: no map "${mapName}" in the loaded objects`;
    for (const x of owners) if (!x.btf || findStruct(x.btf, struct) === undefined) return `output.records: ${x.path} has no BTF or DWARF struct "${struct}" for records of "${mapName}"`;
  }
  for (const [what, list] of [['output.histograms', o.histograms], ['output.syscalls', o.syscalls], ['--maps', o.maps]] as const) {
    for (const n of list ?? []) if (!names.has(n)) return `${what}: no map or global "${n}" in the loaded objects (${[...names].filter((x) => !x.startsWith('.')).join(', ') || 'none'})`;
  }
  return null;
}

/** Wall-clock time of day as libbpf-tools print it (strftime %H:%M:%S). */
export function timeOfDay(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}

type PrintkEvent = Extract<AgentEvent, { type: 'printk' }>;
type RecordEvent = Extract<AgentEvent, { type: 'record' }>;

/** A record map's counts at the end: produced = delivered + dropped when nothing was lost unseen. */
export interface DeliveredRecords extends RecordStats {
  delivered: number;
}

export class EventPrinter {
  private readonly out: Writable | NodeJS.WritableStream;

  constructor(private readonly opts: EventPrinterOptions) {
    this.out = opts.out ?? process.stdout;
    const bad = unknownOutputName(opts.objects, opts);
    if (bad !== null) throw new Error(bad);
    const recordMaps = opts.objects.reduce((n, o) => n + o.maps.filter((m) => m.type === 'ringbuf' || m.type === 'perf_event_array').length, 0);
    this.prefixRecords = recordMaps > 1;
  }

  private readonly tables = new Map<string, RecordTable>();
  /** Rows start with the map's name when more than one map carries records. */
  private readonly prefixRecords: boolean;

  private line(obj: unknown): void {
    this.out.write(JSON.stringify(obj) + '\n');
  }

  printk(ev: PrintkEvent): void {
    // bpf_printk format strings usually end without a newline, but some add one; print one line either way.
    const text = ev.text.replace(/\n$/, '');
    if (this.opts.json) this.line({ type: 'printk', tid: ev.tid, program: ev.program, text });
    else this.out.write(`${ev.tid} ${ev.program}: ${text}\n`);
  }

  /** Decoded record value (exposed for callers that print records their own way). */
  decode(ev: RecordEvent): { map: string; data: JsonValue } {
    const obj = this.opts.objects[ev.object];
    const map = obj?.maps[ev.map];
    const name = map?.name ?? `map#${ev.map}`;
    const bytes = Uint8Array.from(Buffer.from(ev.data, 'base64'));
    if (!obj) return { map: name, data: '0x' + Buffer.from(bytes).toString('hex') };
    return { map: name, data: decodeRecord(obj, ev.map, bytes, this.opts.records?.[name]) };
  }

  record(ev: RecordEvent): void {
    const { map, data } = this.decode(ev);
    const time = this.opts.timestamps ? timeOfDay(ev.timeMs ?? Date.now()) : null;
    if (this.opts.json) {
      this.line(time !== null ? { type: 'event', time, map, data } : { type: 'event', map, data });
      return;
    }
    const key = `${ev.object}/${ev.map}`;
    let table = this.tables.get(key);
    if (!table) {
      const obj = this.opts.objects[ev.object];
      const typeId = obj ? recordTypeId(obj, ev.map, Buffer.from(ev.data, 'base64').length, this.opts.records?.[map]) : undefined;
      table = new RecordTable(obj?.btf ?? null, typeId, this.prefixRecords ? `${map}: ` : '', time !== null);
      this.tables.set(key, table);
    }
    for (const row of table.rows(data, time)) this.out.write(`${row}\n`);
  }

  /** Map contents; `header` (e.g. a timestamp for --interval) precedes them. Empty maps print nothing. */
  maps(dumps: MapDump[], header?: string): void {
    const decoded = decodeAll(this.opts.objects, dumps, { histograms: this.opts.histograms, syscalls: this.opts.syscalls, only: this.opts.maps });
    if (this.opts.json) {
      const maps: Record<string, { key?: JsonValue; value: JsonValue; name?: string }[]> = {};
      for (const m of decoded) {
        maps[m.name] = m.entries.map((e) => (e.key === null ? { value: e.value } : e.keyName !== undefined ? { key: e.key, name: e.keyName, value: e.value } : { key: e.key, value: e.value }));
      }
      this.line(header !== undefined ? { type: 'maps', time: header, maps } : { type: 'maps', maps });
      return;
    }
    const text = decoded.map(mapText).join('');
    if (header !== undefined) this.out.write(`${header}\n`);
    this.out.write(text);
  }

  stats(programs: ProgramStats[], droppedRecords: number, records: DeliveredRecords[] = []): void {
    if (this.opts.json) {
      const perMap = records.map(({ object, name, produced, delivered, dropped }) => ({ object, map: name, produced, delivered, dropped }));
      this.line({ type: 'stats', programs, droppedRecords, ...(perMap.length ? { records: perMap } : {}) });
      return;
    }
    const parts = programs.map((p) => {
      const prefix = this.opts.objects.length > 1 ? `${this.objectName(p.object)}:` : '';
      return `${prefix}${p.program} ${p.hits} hit${p.hits === 1 ? '' : 's'}, ${p.faults} fault${p.faults === 1 ? '' : 's'}${p.disabled ? ` (disabled: ${p.disabled})` : ''}`;
    });
    this.out.write(`programs: ${parts.length ? parts.join('; ') : 'none'}; dropped records: ${droppedRecords}\n`);
    if (records.length) {
      const prefix = (r: DeliveredRecords) => (this.opts.objects.length > 1 ? `${this.objectName(r.object)}:` : '');
      const rows = records.map((r) => `${prefix(r)}${r.name} ${r.produced} produced, ${r.delivered} delivered, ${r.dropped} dropped`);
      this.out.write(`records: ${rows.join('; ')}\n`);
    }
  }

  private objectName(i: number): string {
    const p = this.opts.objects[i]?.path ?? `object#${i}`;
    return p.slice(p.lastIndexOf('/') + 1);
  }
}
