// The shape every decoded value takes: plain JSON, so --json output is JSON.stringify of it
// and human output is a formatting of the same tree (one decoder, two presentations).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function isJsonObject(v: JsonValue): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
