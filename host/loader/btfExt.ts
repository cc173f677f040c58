// .BTF.ext: per-section func_info and CO-RE relocation records. Line info is skipped (we
// have no use for it yet). Record offsets are byte offsets into the named code section.

import { ByteReader, cString } from './elf';
import { fail, hex, withContext } from './errors';

const MAX_RECORDS = 1 << 20;

export interface FuncInfo {
  insnOff: number;
  typeId: number;
}

export interface CoreRelo {
  /** Byte offset of the instruction in its section. */
  insnOff: number;
  typeId: number;
  /** Access string, e.g. `0:1:2`. */
  access: string;
  kind: number;
}

export interface BtfExt {
  funcInfo: Map<string, FuncInfo[]>;
  coreRelos: Map<string, CoreRelo[]>;
}

export function parseBtfExt(data: Uint8Array, btfStrings: Uint8Array): BtfExt {
  const r = new ByteReader(data, 'BTF.ext');
  if (data.length < 24) fail(`header truncated (${data.length} bytes)`);
  const magic = r.u16(0);
  if (magic !== 0xeb9f) fail(`bad magic ${hex(magic)}`);
  if (r.u8(2) !== 1) fail(`unsupported version ${r.u8(2)}`);
  const hdrLen = r.u32(4);
  if (hdrLen < 24 || hdrLen > data.length) fail(`header length ${hdrLen} out of range`);
  const str = (off: number): string => cString(btfStrings, off, 'BTF string');

  const section = <T>(what: string, off: number, len: number, minRec: number, read: (o: number) => T): Map<string, T[]> => {
    return withContext(what, () => {
      const out = new Map<string, T[]>();
      if (len === 0) return out;
      const start = hdrLen + off;
      if (start + len > data.length || start + len < start) fail(`${hex(off)}+${hex(len)} is past the end (${data.length} bytes)`);
      const end = start + len;
      const recSize = r.u32(start);
      if (recSize < minRec || recSize > 256) fail(`record size ${recSize} out of range`);
      let o = start + 4;
      while (o < end) {
        const name = str(r.u32(o));
        const n = r.u32(o + 4);
        o += 8;
        if (n > MAX_RECORDS || o + n * recSize > end) fail(`section "${name}": ${n} records do not fit`);
        const list = out.get(name) ?? [];
        for (let i = 0; i < n; i++, o += recSize) list.push(read(o));
        out.set(name, list);
      }
      return out;
    });
  };

  const funcInfo = section('func_info', r.u32(8), r.u32(12), 8, (o) => ({ insnOff: r.u32(o), typeId: r.u32(o + 4) }));
  let coreRelos = new Map<string, CoreRelo[]>();
  if (hdrLen >= 32) {
    coreRelos = section('CO-RE relocations', r.u32(24), r.u32(28), 16, (o) => ({
      insnOff: r.u32(o),
      typeId: r.u32(o + 4),
      access: str(r.u32(o + 8)),
      kind: r.u32(o + 12),
    }));
  }
  return { funcInfo, coreRelos };
}
