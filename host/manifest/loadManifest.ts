// The edge: JSON text → validated, typed Manifest with absolute paths. Everything behind this
// (buildLoadRequest, the CLI) trusts the types and never re-checks the JSON's shape.

import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject } from 'ajv';
import type { AttachSpec } from '../../protocol/spec.js';
import { syscallTracepointProblem } from '../../protocol/syscalls.js';
import schema from './manifest.schema.json';
import { ManifestError, manifestError, pointerKey } from './errors.js';
import { MAX_INTERVAL_S, MIN_INTERVAL_S } from './limits.js';
import type { InitValue, Manifest, MapEntryConfig, MetricsManifest, ObjectConfig, OutputConfig, ProgramConfig, Target } from './types.js';

/** The manifest as the schema guarantees it (before paths are resolved). */
interface RawProgram {
  disabled?: boolean;
  type?: 'uprobe' | 'uretprobe' | 'uprobe_override' | 'syscall' | 'usdt';
  provider?: string;
  probe?: string;
  binary?: string;
  symbol?: string;
  offset?: number;
  address?: string;
  phase?: 'enter' | 'exit';
  syscall?: string;
  cookie?: string | number;
}
interface RawManifest {
  syscalls?: 'rewrite' | 'stalker';
  hooks?: 'interceptor' | 'inline';
  target?: { spawn?: string[]; env?: Record<string, string>; cwd?: string; pid?: number };
  objects: { path: string; programs?: Record<string, RawProgram | RawProgram[]>; rodata?: Record<string, InitValue>; maps?: Record<string, MapEntryConfig[]> }[];
  output?: { json?: boolean; interval?: number; histograms?: string[]; records?: Record<string, string>; syscalls?: string[]; maps?: string[]; timestamps?: boolean; metrics?: MetricsManifest };
}

// Compiled once per process: the schema is fixed.
const ajv = new Ajv({ allErrors: false, verbose: true, allowUnionTypes: true });
const validate = ajv.compile<RawManifest>(schema);

function describeError(e: ErrorObject): string {
  // Combinators carry a human sentence in the sub-schema's `description`; ajv's own text
  // ("must match a schema in anyOf") would not tell the user what to write.
  const desc = (e.parentSchema as { description?: unknown } | undefined)?.description;
  if ((e.keyword === 'anyOf' || e.keyword === 'not' || e.keyword === 'oneOf') && typeof desc === 'string') return desc;
  switch (e.keyword) {
    case 'enum':
      return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    case 'required':
      return `missing required property "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `unknown property "${extra}"${allowed.length ? ` (expected one of ${allowed.map((k) => `"${k}"`).join(', ')})` : ''}`;
    }
    case 'dependencies': {
      const p = e.params as { property: string; missingProperty: string };
      return `"${p.property}" needs "${p.missingProperty}"`;
    }
    case 'type': {
      const t = (e.params as { type: string | string[] }).type;
      return typeof desc === 'string' && Array.isArray(t) ? `must be ${desc}` : `must be ${Array.isArray(t) ? t.join(' or ') : t === 'integer' ? 'an integer' : t === 'object' ? 'an object' : t === 'array' ? 'an array' : `a ${t}`}`;
    }
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

/** Picks the error that says the most: a described combinator beats its branches' noise. */
function firstUsefulError(errors: ErrorObject[]): ErrorObject {
  const described = errors.find((e) => (e.keyword === 'anyOf' || e.keyword === 'not') && typeof (e.parentSchema as { description?: unknown })?.description === 'string');
  return described ?? errors.find((e) => e.keyword !== 'if') ?? errors[0];
}

/** Line and column of a character offset, for JSON syntax errors. */
function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

/** True when `text` fails only because it stops early (it is a prefix of some valid JSON). */
function failsAtEnd(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch (err) {
    const message = (err as Error).message;
    if (/end of (JSON )?input|Unterminated string/i.test(message)) return true;
    // Node 20 reports a prefix cut short as "Expected ... at position N" with N at (or
    // past) its end, rather than as the end of input.
    const at = /at position (\d+)/.exec(message);
    return at !== null && Number(at[1]) >= text.length;
  }
}

/**
 * Offset of the first bad character. Node 20+ often names no position, so find it: every
 * prefix before the bad character fails only "at the end", every prefix including it fails
 * on the character, so the boundary can be bisected.
 */
function errorOffset(text: string): number {
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (failsAtEnd(text.slice(0, mid + 1))) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // Newer Node quotes the whole input in the message; keep one line.
    const msg = (err instanceof Error ? err.message : String(err)).replace(/,? (\.\.\.)?".*" is not valid JSON$/s, '').replace(/\s+/g, ' ');
    const pos = errorOffset(text);
    const where = pos < text.length ? ` at ${lineCol(text, pos)}` : ' (the text ends early)';
    throw new ManifestError(`${file}: invalid JSON${where}: ${msg.replace(/ in JSON at position \d+.*$/, '')}`);
  }
}

function resolveUnder(dir: string, p: string): string {
  return path.isAbsolute(p) ? p : path.resolve(dir, p);
}

function requireFile(file: string, pointer: string, abs: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw manifestError(file, pointer, `${what} not found: ${abs}`);
  }
  if (what === 'folder' ? !st.isDirectory() : !st.isFile()) throw manifestError(file, pointer, `${abs} is not a ${what === 'folder' ? 'folder' : 'file'}`);
}

function toTarget(file: string, dir: string, raw: NonNullable<RawManifest['target']>): Target {
  if (raw.pid !== undefined) return { kind: 'pid', pid: raw.pid };
  const argv = [...(raw.spawn ?? [])];
  // `victim` alone is looked up in PATH like a shell would; `./victim` or `bin/victim` is a file here.
  if (argv[0].includes('/')) {
    argv[0] = resolveUnder(dir, argv[0]);
    requireFile(file, '/target/spawn/0', argv[0], 'program');
  }
  const t: Target = { kind: 'spawn', argv };
  if (raw.env) t.env = { ...raw.env };
  if (raw.cwd !== undefined) {
    t.cwd = resolveUnder(dir, raw.cwd);
    requireFile(file, '/target/cwd', t.cwd, 'folder');
  }
  return t;
}

function toProgram(file: string, pointer: string, dir: string, raw: RawProgram): ProgramConfig {
  const cfg: ProgramConfig = { disabled: raw.disabled === true };
  if (raw.cookie !== undefined) cfg.cookie = cookieValue(file, `${pointer}/cookie`, raw.cookie);
  if (raw.type === 'syscall') {
    const problem = raw.syscall === '*' ? null : syscallTracepointProblem(raw.syscall!);
    if (problem !== null) throw manifestError(file, `${pointer}/syscall`, problem);
    cfg.attach = { kind: 'syscall', phase: raw.phase!, syscall: raw.syscall! };
  } else if (raw.type === 'usdt') {
    const binary = /^\.\.?\//.test(raw.binary!) ? path.resolve(dir, raw.binary!) : raw.binary!;
    cfg.attach = { kind: 'usdt', binary, provider: raw.provider!, name: raw.probe! };
  } else if (raw.type !== undefined) {
    const mode = raw.type === 'uprobe' ? 'entry' : raw.type === 'uretprobe' ? 'return' : 'override';
    const a: AttachSpec = { kind: 'uprobe', mode };
    // Only explicit relative paths are files here; `libc.so.6` is a library name for the agent.
    if (raw.binary !== undefined) a.binary = /^\.\.?\//.test(raw.binary) ? path.resolve(dir, raw.binary) : raw.binary;
    if (raw.symbol !== undefined) a.symbol = raw.symbol;
    if (raw.offset !== undefined) a.offset = raw.offset;
    if (raw.address !== undefined) a.address = raw.address;
    cfg.attach = a;
  }
  return cfg;
}

function toOutput(file: string, raw: RawManifest['output']): OutputConfig {
  const out: OutputConfig = {
    json: raw?.json ?? false,
    histograms: [...(raw?.histograms ?? [])],
    records: { ...(raw?.records ?? {}) },
    syscalls: [...(raw?.syscalls ?? [])],
    timestamps: raw?.timestamps ?? false,
  };
  if (raw?.interval !== undefined) {
    if (!(raw.interval >= MIN_INTERVAL_S && raw.interval <= MAX_INTERVAL_S)) {
      throw manifestError(file, '/output/interval', `must be between ${MIN_INTERVAL_S} and ${MAX_INTERVAL_S} seconds, got ${raw.interval}`);
    }
    out.interval = raw.interval;
  }
  if (raw?.maps !== undefined) out.maps = [...raw.maps];
  if (raw?.metrics !== undefined) out.metrics = structuredClone(raw.metrics);
  return out;
}

/** Validates an already-parsed manifest; `file` names it in errors and its folder anchors relative paths. */
export function manifestFromJson(file: string, json: unknown): Manifest {
  if (!validate(json)) {
    const e = firstUsefulError(validate.errors ?? []);
    throw manifestError(file, e.instancePath || '/', describeError(e));
  }
  const dir = path.dirname(path.resolve(file));
  const objects: ObjectConfig[] = json.objects.map((o, i) => {
    const pointer = `/objects/${i}`;
    const abs = resolveUnder(dir, o.path);
    requireFile(file, `${pointer}/path`, abs, 'object');
    const programs: Record<string, ProgramConfig> = {};
    for (const [name, p] of Object.entries(o.programs ?? {})) {
      const at = `${pointer}/programs/${pointerKey(name)}`;
      if (!Array.isArray(p)) {
        programs[name] = toProgram(file, at, dir, p);
        continue;
      }
      // A list: one program on several attach points.
      const [first, ...rest] = p.map((x, k) => toProgram(file, `${at}/${k}`, dir, x));
      programs[name] = { ...first, more: rest.map((r) => ({ attach: r.attach!, ...(r.cookie !== undefined ? { cookie: r.cookie } : {}) })) };
    }
    return { path: abs, programs, rodata: { ...(o.rodata ?? {}) }, maps: { ...(o.maps ?? {}) }, source: { file, pointer } };
  });
  for (const [i, o] of json.objects.entries()) {
    for (const [name, p] of Object.entries(o.programs ?? {})) {
      (Array.isArray(p) ? p : [p]).forEach((x, k) => {
        const b = x.binary;
        const at = `/objects/${i}/programs/${pointerKey(name)}${Array.isArray(p) ? `/${k}` : ''}/binary`;
        if (b !== undefined && /^\.\.?\//.test(b)) requireFile(file, at, path.resolve(dir, b), 'binary');
      });
    }
  }
  const m: Manifest = { file, dir, objects, output: toOutput(file, json.output) };
  if (json.syscalls) m.syscalls = json.syscalls;
  if (json.hooks) m.hooks = json.hooks;
  if (json.target) m.target = toTarget(file, dir, json.target);
  return m;
}

/** Reads, parses and validates `file`. Throws ManifestError (one line) on any problem. */
export function loadManifest(file: string): Manifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError(`${file}: cannot read manifest${code === 'ENOENT' ? ': no such file' : code ? ` (${code})` : ''}`);
  }
  return manifestFromJson(file, parseJson(file, text));
}

/** bpf_get_attach_cookie returns a u64: a decimal or 0x integer in 0 .. 2^64-1. */
function cookieValue(file: string, pointer: string, raw: string | number): string {
  const text = String(raw);
  let v: bigint | null = null;
  if (typeof raw === 'number' ? Number.isSafeInteger(raw) : /^(0x[0-9a-f]+|\d+)$/i.test(text)) v = BigInt(text);
  if (v === null || v < 0n || v > 0xffff_ffff_ffff_ffffn) {
    throw manifestError(file, pointer, `must be an integer from 0 to 2^64-1 (a string for values above 2^53), got ${text}`);
  }
  return v.toString();
}
