// Records printed the way libbpf-tools print their events: a header of upper-cased field
// names once, then one left-aligned row per record, each column as wide as its header or
// its type needs (a pid 7, a comm 16, ...), the last one unpadded (a path or a message).
// A value wider than its column pushes the row, as printf does, and widens the column for
// the rows after it.

import type { BtfSpec } from '../../protocol/btf.js';
import { stripQualifiers } from './btfDecode.js';
import { isJsonObject, type JsonValue } from './jsonValue.js';

/** Columns a value of BTF type `id` usually needs. */
function typeWidth(btf: BtfSpec | null, id: number): number {
  if (!btf) return 0;
  const t = btf.types[stripQualifiers(btf, id)];
  if (!t) return 0;
  switch (t.kind) {
    case 'int':
      if (t.bool) return 5;
      return ({ 1: 3, 2: 5, 4: 7, 8: 12 } as Record<number, number>)[t.size] ?? 0;
    case 'enum':
      return Math.max(0, ...t.values.map((v) => v.name.length));
    case 'ptr':
      return 14;
    case 'float':
      return 10;
    case 'array': {
      const e = btf.types[stripQualifiers(btf, t.type)];
      return e?.kind === 'int' && e.size === 1 ? Math.min(16, t.nelems) : 0;
    }
    default:
      return 0;
  }
}

function cell(v: JsonValue, last: boolean): string {
  if (typeof v === 'string') return !last && (v === '' || /\s/.test(v)) ? JSON.stringify(v) : v;
  if (isJsonObject(v)) return `{${Object.entries(v).map(([k, x]) => `${k}=${cell(x, false)}`).join(' ')}}`;
  if (Array.isArray(v)) return `[${v.map((x) => cell(x, false)).join(',')}]`;
  return String(v);
}

export class RecordTable {
  private widths: number[] | null = null;
  private names: string[] = [];

  /**
   * `prefix` starts every line (the map's name when several maps carry records);
   * `typeId` is the record's struct, for column widths.
   */
  constructor(
    private readonly btf: BtfSpec | null,
    private readonly typeId: number | undefined,
    private readonly prefix: string,
    private readonly withTime: boolean,
  ) {}

  private columns(v: { [k: string]: JsonValue }): void {
    this.names = Object.keys(v);
    const t = this.btf && this.typeId !== undefined ? this.btf.types[stripQualifiers(this.btf, this.typeId)] : undefined;
    const memberType = new Map<string, number>();
    if (t && (t.kind === 'struct' || t.kind === 'union')) for (const m of t.members) memberType.set(m.name, m.type);
    this.widths = this.names.map((n) => Math.max(n.length, typeWidth(this.btf, memberType.get(n) ?? 0)));
  }

  private line(cells: string[], time: string | null): string {
    const parts = cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(this.widths![i])));
    return `${this.prefix}${time !== null ? `${time.padEnd(8)} ` : ''}${parts.join(' ')}`.trimEnd();
  }

  /** The lines for one decoded record (the header first, the first time). */
  rows(v: JsonValue, time: string | null): string[] {
    if (!isJsonObject(v)) return [`${this.prefix}${time !== null ? `${time} ` : ''}${cell(v, true)}`];
    const out: string[] = [];
    if (this.widths === null) {
      this.columns(v);
      out.push(this.line(this.names.map((n) => n.toUpperCase()), this.withTime ? 'TIME' : null));
    }
    const cells = this.names.map((n, i) => cell(v[n] ?? null, i === this.names.length - 1));
    cells.forEach((c, i) => {
      if (i < cells.length - 1 && c.length > this.widths![i]) this.widths![i] = c.length;
    });
    out.push(this.line(cells, time));
    return out;
  }
}
