import type { HookTarget } from '../../protocol/messages';

/**
 * Parses the command-line spelling of a function to hook, as frida-trace and bpftrace
 * users write it: `SYMBOL`, `MODULE:SYMBOL`, `MODULE:SYMBOL+0x10`, `MODULE:0x1234` (a file
 * offset, as kernel uprobes take it) or `0x7f...` (an absolute address).
 */
export function parseHookTarget(text: string): HookTarget {
  const s = text.trim();
  if (s === '') throw new Error('empty hook target');
  if (/^0x[0-9a-f]+$/i.test(s)) return { address: s };
  const colon = s.lastIndexOf(':');
  const module = colon > 0 ? s.slice(0, colon) : undefined;
  const rest = colon >= 0 ? s.slice(colon + 1) : s;
  if (rest === '') throw new Error(`hook target "${text}" has no symbol after ':'`);
  if (/^(0x[0-9a-f]+|\d+)$/i.test(rest)) {
    if (!module) throw new Error(`hook target "${text}": an offset needs a module (MODULE:OFFSET)`);
    return { module, offset: Number(rest) };
  }
  const plus = rest.match(/^(.+)\+(0x[0-9a-f]+|\d+)$/i);
  if (plus) return { module, symbol: plus[1], offset: Number(plus[2]) };
  return module === undefined ? { symbol: rest } : { module, symbol: rest };
}
