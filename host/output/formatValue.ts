// Human spellings of decoded values: bpftrace-like for maps (`@m[a, b]: { .x = 1 }`) and
// `field=value` pairs for records, so one decoder serves both.

import { isJsonObject, type JsonValue } from './jsonValue.js';

/** A map value or nested field, bpftrace style: structs as `{ .f = v, ... }`, strings bare. */
export function formatValue(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map(formatValue).join(',')}]`;
  if (isJsonObject(v)) return `{ ${Object.entries(v).map(([k, x]) => `.${k} = ${formatValue(x)}`).join(', ')} }`;
  return String(v);
}

/** A map key: struct keys list their fields like bpftrace's tuple keys (`pid, cpu`). */
export function formatKey(v: JsonValue): string {
  if (isJsonObject(v)) return Object.values(v).map(formatValue).join(', ');
  return formatValue(v);
}

/** A record as `field=value` pairs; strings with spaces are quoted so the line stays splittable. */
export function formatRecord(v: JsonValue): string {
  if (!isJsonObject(v)) return formatValue(v);
  const field = (x: JsonValue): string => {
    if (typeof x === 'string') return /[\s"=]/.test(x) || x === '' ? JSON.stringify(x) : x;
    if (isJsonObject(x)) return `{${Object.entries(x).map(([k, y]) => `${k}=${field(y)}`).join(' ')}}`;
    if (Array.isArray(x)) return `[${x.map(field).join(',')}]`;
    return String(x);
  };
  return Object.entries(v).map(([k, x]) => `${k}=${field(x)}`).join(' ');
}
