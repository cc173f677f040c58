// Parser and runner for bpf_conformance `.data` test vectors (see test/conformance/README.md).
// Pure: takes file text, no file system access, so it also runs inside the agent.
import { assemble } from './asm.js';
import { BpfVm, VmFault, VmLoadError } from './vm.js';
import type { WasmModule } from './wasmApi.js';

export class ConformanceParseError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'ConformanceParseError';
  }
}

export interface ConformanceTest {
  name: string;
  asm?: string;
  raw?: Uint8Array;
  mem: Uint8Array;
  hasMem: boolean;
  result?: bigint;
  error?: string;
}

// Sections that carry no data for the runner but occur in the suite.
const IGNORED_SECTIONS = new Set(['c', 'no register offset']);
const KNOWN_SECTIONS = new Set(['asm', 'raw', 'mem', 'result', 'error', ...IGNORED_SECTIONS]);

function parseHexBytes(text: string, what: string): Uint8Array {
  const toks = text.split(/\s+/).filter((t) => t !== '');
  const out = new Uint8Array(toks.length);
  toks.forEach((t, i) => {
    if (!/^[0-9a-f]{2}$/i.test(t)) throw new ConformanceParseError(`bad byte '${t}' in ${what}`);
    out[i] = parseInt(t, 16);
  });
  return out;
}

function parseRaw(text: string): Uint8Array {
  const lines = text.split(/\r?\n/).map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '');
  const out = new Uint8Array(lines.length * 8);
  const dv = new DataView(out.buffer);
  lines.forEach((l, i) => {
    if (/^0x[0-9a-f]{1,16}$/i.test(l)) dv.setBigUint64(i * 8, BigInt(l), true);
    else {
      const b = parseHexBytes(l, 'raw');
      if (b.length !== 8) throw new ConformanceParseError(`raw line '${l}' is not 8 bytes`);
      out.set(b, i * 8);
    }
  });
  return out;
}

/** Parses a `.data` file. Throws ConformanceParseError for malformed files. */
export function parseConformance(text: string, name = 'test'): ConformanceTest {
  const sections = new Map<string, string[]>();
  let cur: string[] | null = null;
  for (const line of text.split(/\r?\n/)) {
    const m = /^--\s*(.*?)\s*$/.exec(line);
    if (m) {
      const sec = m[1].toLowerCase();
      if (!KNOWN_SECTIONS.has(sec)) throw new ConformanceParseError(`unknown section '-- ${m[1]}'`);
      if (sections.has(sec)) throw new ConformanceParseError(`duplicate section '-- ${sec}'`);
      cur = [];
      sections.set(sec, cur);
      continue;
    }
    if (cur) cur.push(line);
    else if (line.trim() !== '' && !line.trim().startsWith('#')) throw new ConformanceParseError(`text outside a section: '${line}'`);
  }
  const t: ConformanceTest = { name, mem: new Uint8Array(0), hasMem: false };
  const get = (s: string): string | undefined => sections.get(s)?.join('\n');
  t.asm = get('asm');
  const raw = get('raw');
  if (raw !== undefined) t.raw = parseRaw(raw);
  if (t.asm === undefined && t.raw === undefined) throw new ConformanceParseError('no -- asm or -- raw section');
  if ((t.raw === undefined || t.raw.length === 0) && (t.asm === undefined || t.asm.replace(/#.*$/gm, '').trim() === ''))
    throw new ConformanceParseError('empty program');
  const mem = get('mem');
  if (mem !== undefined) {
    t.mem = parseHexBytes(mem.replace(/#.*$/gm, ''), 'mem');
    t.hasMem = true;
  }
  const result = get('result');
  const error = get('error');
  if (result !== undefined) {
    const r = result.replace(/#.*$/gm, '').trim();
    if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(r)) throw new ConformanceParseError(`bad result '${r}'`);
    t.result = BigInt.asUintN(64, BigInt(r));
  }
  if (error !== undefined) t.error = error.trim();
  if (t.result === undefined && t.error === undefined) throw new ConformanceParseError('no -- result or -- error section');
  return t;
}

/** Test helpers of the conformance suite (ids 0..5). */
export function registerTestHelpers(vm: BpfVm): void {
  vm.registerHelper(0, (a, b, c, d, e) => ((a & 0xffn) << 32n) | ((b & 0xffn) << 24n) | ((c & 0xffn) << 16n) | ((d & 0xffn) << 8n) | (e & 0xffn));
  vm.registerHelper(1, (p, len) => {
    const n = Number(len);
    if (!vm.isAccessible(p, n, true)) throw new Error(`memfrob: [${p}, +${len}) is not writable`);
    const b = vm.read(p, n);
    for (let i = 0; i < n; i++) b[i] ^= 42;
    vm.write(p, b);
    return 0n;
  });
  vm.registerHelper(2, () => 0n);
  vm.registerHelper(3, (a) => isqrt(a));
  vm.registerHelper(4, (a, b) => {
    for (let i = 0n; ; i++) {
      if (!vm.isAccessible(a + i, 1, false) || !vm.isAccessible(b + i, 1, false)) throw new Error('strcmp_ext: string not accessible');
      const x = vm.read(a + i, 1)[0];
      const y = vm.read(b + i, 1)[0];
      if (x !== y) return BigInt.asUintN(64, BigInt(x - y));
      if (x === 0) return 0n;
    }
  });
  vm.registerHelper(5, (a) => {
    if (a === 0n) vm.requestExit(0n);
    return a;
  });
}

export function isqrt(a: bigint): bigint {
  if (a < 2n) return a;
  let x = BigInt(Math.floor(Math.sqrt(Number(a))));
  while (x * x > a) x--;
  while ((x + 1n) * (x + 1n) <= a) x++;
  return x;
}

export interface ConformanceOutcome {
  pass: boolean;
  /** Why it failed, or what it did (r0 / error) when it passed. */
  detail: string;
  r0?: bigint;
}

/** Runs one parsed test on a fresh VM created from `module`. */
export function runConformance(module: WasmModule, t: ConformanceTest): ConformanceOutcome {
  let code: Uint8Array;
  try {
    code = t.raw ?? assemble(t.asm!);
    if (t.raw && t.asm !== undefined) {
      const a = assemble(t.asm);
      if (a.length !== t.raw.length || a.some((b, i) => b !== t.raw![i])) return { pass: false, detail: 'assembled -- asm differs from -- raw' };
    }
  } catch (e) {
    return { pass: false, detail: `assembler: ${(e as Error).message}` };
  }
  const vm = BpfVm.create(module, { roArenaBytes: 4096, rwArenaBytes: 65536 });
  registerTestHelpers(vm);
  let r0: bigint;
  try {
    const h = vm.load(code, { name: t.name });
    let ctx = 0;
    if (t.hasMem && t.mem.length > 0) {
      ctx = vm.allocRw(t.mem.length);
      vm.write(ctx, t.mem);
    }
    r0 = vm.run(h, ctx, t.mem.length);
  } catch (e) {
    if (e instanceof VmLoadError || e instanceof VmFault) {
      if (t.error !== undefined) return { pass: true, detail: `error as expected: ${e.message}` };
      return { pass: false, detail: `${e instanceof VmLoadError ? 'load error' : 'fault'}: ${e.message}` };
    }
    throw e;
  }
  if (t.error !== undefined) return { pass: false, detail: `expected an error, got r0=0x${r0.toString(16)}`, r0 };
  if (r0 !== t.result) return { pass: false, detail: `expected r0=0x${t.result!.toString(16)}, got 0x${r0.toString(16)}`, r0 };
  return { pass: true, detail: `r0=0x${r0.toString(16)}`, r0 };
}
