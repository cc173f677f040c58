// What `--metrics` and the manifest's `output.metrics` ask for, as typed values. The manifest
// schema checks the shape; checkMetricsConfig (planMetrics.ts) checks it against the loaded
// objects (map and field names), so a scrape never meets a configuration error.

/** How a map's value becomes a Prometheus sample. */
export type MetricKind = 'counter' | 'gauge' | 'histogram';

/** How a key field becomes a label value: a syscall number as its name, an address as `symbol+0xoff`, raw bytes as hex. */
export type LabelDecoder = 'syscall' | 'symbol' | 'hex';

export interface MapMetricConfig {
  /** Metric name (without the global prefix); default: the map's name. */
  metric?: string;
  /** Default: histogram for maps output prints as histograms, else gauge. */
  type?: MetricKind;
  help?: string;
  /** Key field (or `key` for a scalar key) → label name; fields not listed keep their own name. */
  labels: Record<string, string>;
  /** Key field (or `key`) → decoder for its label value. */
  decoders: Record<string, LabelDecoder>;
  /** Multiplies values (and histogram bounds): 1e-9 turns nanoseconds into seconds. */
  scale?: number;
  /** Series beyond this are left out and counted (bpftime_metrics_series_dropped_total). */
  maxSeries?: number;
  /** Not exported at all. */
  disabled: boolean;
}

export interface MetricsConfig {
  host: string;
  port: number;
  /** Maps read at most this often; scrapes in between are served from the last read. */
  cacheSeconds: number;
  /** Default per-map series limit. */
  maxSeries: number;
  /** Prefix of every metric name. */
  prefix: string;
  maps: Record<string, MapMetricConfig>;
  /** Where configuration errors point (`m.json: /output/metrics`), or the option. */
  source: string;
}

export const DEFAULT_METRICS_PORT_HOST = '127.0.0.1';
export const DEFAULT_CACHE_SECONDS = 1;
export const DEFAULT_MAX_SERIES = 1000;
export const DEFAULT_PREFIX = 'bpftime';

export class MetricsConfigError extends Error {}

/**
 * `[HOST:]PORT`: `9435`, `0.0.0.0:9435`, `[::1]:9435`. Port 0 asks the kernel for a free one
 * (tests use it; the bound port is printed).
 */
export function parseListen(text: string, where: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  if (!m) throw new MetricsConfigError(`${where}: must be [HOST:]PORT (e.g. 9435 or 0.0.0.0:9435), got "${text}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new MetricsConfigError(`${where}: port must be at most 65535, got ${port}`);
  const host = m[1] === undefined ? DEFAULT_METRICS_PORT_HOST : m[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

/** Prometheus metric and label names: `[a-zA-Z_][a-zA-Z0-9_]*` (colons are for recording rules). */
export function sanitizeName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[a-zA-Z_]/.test(s) ? s : `_${s}`;
}
