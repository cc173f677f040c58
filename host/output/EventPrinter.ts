// What the CLI prints while and after a target runs: printk lines, records, maps and the
// stats line, as human text or one JSON object per line (--json).
//
// printk's human form is `<tid> <program>: text`. trace_pipe's own prefix
// (`comm-pid [cpu] flags timestamp: bpf_trace_printk:`) names a CPU and a timestamp we do not
// have; tid then program keeps the same order (who, then what) and stays greppable.

import type { Writable } from 'stream';
import type { AgentEvent, MapDump, ProgramStats } from '../../protocol/messages.js';
import type { ObjectSpec } from '../../protocol/spec.js';
import { formatRecord } from './formatValue.js';
import { decodeAll, mapText } from './mapText.js';
import { decodeRecord, findStruct } from './records.js';
import type { JsonValue } from './jsonValue.js';

export interface EventPrinterOptions {
  objects: ObjectSpec[];
  json: boolean;
  out?: Writable | NodeJS.WritableStream;
  /** Map names to draw as log2 histograms (manifest output.histograms). */
  histograms?: string[];
  /** Ring buffer / perf map name → struct name of its records (manifest output.records). */
  records?: Record<string, string>;
}

type PrintkEvent = Extract<AgentEvent, { type: 'printk' }>;
type RecordEvent = Extract<AgentEvent, { type: 'record' }>;

export class EventPrinter {
  private readonly out: Writable | NodeJS.WritableStream;

  constructor(private readonly opts: EventPrinterOptions) {
    this.out = opts.out ?? process.stdout;
    // A misspelt struct name would silently print hex for the whole run: refuse it up front.
    for (const [mapName, struct] of Object.entries(opts.records ?? {})) {
      const owners = opts.objects.filter((o) => o.maps.some((m) => m.name === mapName));
      if (owners.length === 0) throw new Error(`output.records: no map "${mapName}" in the loaded objects`);
      for (const o of owners) {
        if (!o.btf || findStruct(o.btf, struct) === undefined) throw new Error(`output.records: ${o.path} has no BTF struct "${struct}" for records of "${mapName}"`);
      }
    }
  }

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
    if (this.opts.json) this.line({ type: 'event', map, data });
    else this.out.write(`${map}: ${formatRecord(data)}\n`);
  }

  /** Map contents; `header` (e.g. a timestamp for --interval) precedes them. Empty maps print nothing. */
  maps(dumps: MapDump[], header?: string): void {
    const decoded = decodeAll(this.opts.objects, dumps, { histograms: this.opts.histograms });
    if (this.opts.json) {
      const maps: Record<string, { key?: JsonValue; value: JsonValue }[]> = {};
      for (const m of decoded) maps[m.name] = m.entries.map((e) => (e.key === null ? { value: e.value } : { key: e.key, value: e.value }));
      this.line(header !== undefined ? { type: 'maps', time: header, maps } : { type: 'maps', maps });
      return;
    }
    const text = decoded.map(mapText).join('');
    if (header !== undefined) this.out.write(`${header}\n`);
    this.out.write(text);
  }

  stats(programs: ProgramStats[], droppedRecords: number): void {
    if (this.opts.json) {
      this.line({ type: 'stats', programs, droppedRecords });
      return;
    }
    const parts = programs.map((p) => {
      const prefix = this.opts.objects.length > 1 ? `${this.objectName(p.object)}:` : '';
      return `${prefix}${p.program} ${p.hits} hit${p.hits === 1 ? '' : 's'}, ${p.faults} fault${p.faults === 1 ? '' : 's'}${p.disabled ? ` (disabled: ${p.disabled})` : ''}`;
    });
    this.out.write(`programs: ${parts.length ? parts.join('; ') : 'none'}; dropped records: ${droppedRecords}\n`);
  }

  private objectName(i: number): string {
    const p = this.opts.objects[i]?.path ?? `object#${i}`;
    return p.slice(p.lastIndexOf('/') + 1);
  }
}
