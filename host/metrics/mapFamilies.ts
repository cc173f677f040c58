// Decoded maps → Prometheus metric families, after Cloudflare's ebpf_exporter: one series per
// key with labels from the BTF-decoded key, log2-histogram maps as Prometheus histograms,
// globals as gauges. Pure: the server (MetricsServer.ts) feeds it what the agent dumped.

import type { DecodedMap } from '../output/mapText.js';
import { isJsonObject, type JsonValue } from '../output/jsonValue.js';
import { sanitizeName, type LabelDecoder, type MapMetricConfig, type MetricKind } from './metricsConfig.js';

export interface Sample {
  /** Set for histogram parts (`_bucket`, `_sum`, `_count`); else the family's name. */
  metricName?: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: MetricKind;
  samples: Sample[];
}

/** What decoders need from outside: syscall names and symbols of the target. */
export interface LabelDecoders {
  syscallName(nr: number): string | undefined;
  symbol(address: bigint): string | undefined;
}

/** Labels every series carries (the target's pid and comm); key labels may not take these names. */
export const TARGET_LABELS = ['pid', 'comm'] as const;

export interface FamilyOptions {
  prefix: string;
  /** Per-map settings by map (or global variable) name. */
  maps: Record<string, MapMetricConfig>;
  maxSeries: number;
  decoders: LabelDecoders;
  /** Highest log2 bucket shown so far per histogram: bucket sets only grow, so rate() stays meaningful. */
  histTop: Map<string, number>;
}

export interface MapFamilies {
  families: Family[];
  /** Series left out per map because of its series limit. */
  droppedSeries: Record<string, number>;
  /** Maps whose values are not numbers (strings, byte arrays): not exportable, named once by the caller. */
  skipped: string[];
}

function asNumber(v: JsonValue): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

/** Struct values with numeric fields become one family per field (`<metric>_<field>`). */
function numericFields(v: JsonValue, prefix = ''): [string, number][] | undefined {
  const n = asNumber(v);
  if (n !== undefined) return [[prefix, n]];
  if (!isJsonObject(v)) return undefined;
  const out: [string, number][] = [];
  for (const [k, x] of Object.entries(v)) {
    const sub = numericFields(x, prefix ? `${prefix}_${k}` : k);
    if (sub === undefined) return undefined;
    out.push(...sub);
  }
  return out;
}

function labelText(v: JsonValue): string {
  if (typeof v === 'string') return v;
  if (v === null) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function decodeLabel(v: JsonValue, decoder: LabelDecoder | undefined, d: LabelDecoders): string {
  if (decoder === undefined) return labelText(v);
  const n = typeof v === 'number' ? BigInt(v) : typeof v === 'string' && /^\d+$/.test(v) ? BigInt(v) : undefined;
  if (n === undefined) return labelText(v);
  if (decoder === 'hex') return `0x${n.toString(16)}`;
  if (decoder === 'syscall') return d.syscallName(Number(n)) ?? String(n);
  return d.symbol(n) ?? `0x${n.toString(16)}`;
}

/** Key → labels: a scalar key is `key`; struct fields by name (nested as `a_b`); target label names are prefixed `key_`. */
export function keyLabels(key: JsonValue, cfg: MapMetricConfig | undefined, d: LabelDecoders): Record<string, string> {
  const fields: [string, JsonValue][] = [];
  const walk = (v: JsonValue, path: string) => {
    if (isJsonObject(v)) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}_${k}` : k);
    else fields.push([path, v]);
  };
  if (isJsonObject(key)) walk(key, '');
  else fields.push(['key', key]);
  const labels: Record<string, string> = {};
  for (const [field, v] of fields) {
    let name = cfg?.labels[field] ?? sanitizeName(field);
    if (cfg?.labels[field] === undefined && (TARGET_LABELS as readonly string[]).includes(name)) name = `key_${name}`;
    labels[name] = decodeLabel(v, cfg?.decoders[field], d);
  }
  return labels;
}

/** Upper bound of log2 bucket i as libbpf-tools fill them: bucket 0 holds 0 and 1, bucket i ≥ 1 holds [2^i, 2^(i+1)). */
export function bucketUpperBound(i: number): number {
  return 2 ** (i + 1) - 1;
}

/** A value inside bucket i, for the documented `_sum` estimate: 0.5 for bucket 0, 1.5 · 2^i above. */
function bucketMidpoint(i: number): number {
  return i === 0 ? 0.5 : 1.5 * 2 ** i;
}

function histogramSamples(m: DecodedMap, name: string, scale: number, top: Map<string, number>): Sample[] {
  const counts = new Map<number, number>();
  for (const e of m.entries) counts.set(e.key as number, asNumber(e.value) ?? 0);
  const highest = Math.max(top.get(m.name) ?? 0, ...counts.keys());
  top.set(m.name, highest);
  const samples: Sample[] = [];
  let cumulative = 0;
  let sum = 0;
  for (let i = 0; i <= highest; i++) {
    const c = counts.get(i) ?? 0;
    cumulative += c;
    sum += c * bucketMidpoint(i) * scale;
    // toPrecision: 127 * 1e-9 would otherwise print as 1.2700000000000001e-7.
    samples.push({ metricName: `${name}_bucket`, labels: { le: String(Number((bucketUpperBound(i) * scale).toPrecision(12))) }, value: cumulative });
  }
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: cumulative });
  samples.push({ metricName: `${name}_sum`, labels: {}, value: sum });
  samples.push({ metricName: `${name}_count`, labels: {}, value: cumulative });
  return samples;
}

function familyName(prefix: string, metric: string, type: MetricKind): string {
  const base = `${prefix}_${sanitizeName(metric)}`;
  return type === 'counter' && !base.endsWith('_total') ? `${base}_total` : base;
}

/** Every map's families, in dump order. */
export function mapFamilies(decoded: DecodedMap[], opts: FamilyOptions): MapFamilies {
  const families: Family[] = [];
  const droppedSeries: Record<string, number> = {};
  const skipped: string[] = [];
  for (const m of decoded) {
    const cfg = opts.maps[m.name];
    // Stack maps hold frames, not quantities: their counts live in the map that keys by stack id.
    if (cfg?.disabled || m.kind === 'stacks') continue;
    const scale = cfg?.scale ?? 1;
    const type: MetricKind = cfg?.type ?? (m.kind === 'hist' ? 'histogram' : 'gauge');
    const help = cfg?.help ?? `bpftime-ts map ${m.name}`;
    if (type === 'histogram') {
      if (m.kind !== 'hist') {
        skipped.push(m.name);
        continue;
      }
      const name = `${opts.prefix}_${sanitizeName(cfg?.metric ?? m.name)}`;
      families.push({ name, help, type, samples: histogramSamples(m, name, scale, opts.histTop) });
      continue;
    }
    const byField = new Map<string, Family>();
    const limit = cfg?.maxSeries ?? opts.maxSeries;
    let series = 0;
    for (const e of m.entries) {
      const values = numericFields(e.value);
      if (values === undefined) {
        skipped.push(m.name);
        byField.clear();
        break;
      }
      if (series >= limit) {
        droppedSeries[m.name] = (droppedSeries[m.name] ?? 0) + 1;
        continue;
      }
      series++;
      const labels = m.kind === 'scalar' || e.key === null ? {} : keyLabels(e.key, cfg, opts.decoders);
      for (const [field, v] of values) {
        let f = byField.get(field);
        if (f === undefined) {
          const metric = field ? `${cfg?.metric ?? m.name}_${field}` : cfg?.metric ?? m.name;
          f = { name: familyName(opts.prefix, metric, type), help, type, samples: [] };
          byField.set(field, f);
        }
        f.samples.push({ labels, value: v * scale });
      }
    }
    families.push(...byField.values());
  }
  return { families, droppedSeries, skipped };
}
