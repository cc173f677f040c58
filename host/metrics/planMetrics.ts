// `--metrics` + `output.metrics` → one checked MetricsConfig. Map names, key fields and
// decoders are checked against the loaded objects here, before anything is spawned, with the
// JSON path of the mistake (the manifest schema has already checked the shape).

import type { ObjectSpec } from '../../protocol/spec.js';
import { decodeValue } from '../output/btfDecode.js';
import { isJsonObject, type JsonValue } from '../output/jsonValue.js';
import type { MetricsManifest } from '../manifest/types.js';
import {
  DEFAULT_CACHE_SECONDS,
  DEFAULT_MAX_SERIES,
  DEFAULT_PREFIX,
  MetricsConfigError,
  parseListen,
  type MapMetricConfig,
  type MetricsConfig,
} from './metricsConfig.js';

/** Names a metric can be configured under: maps, and global variables of .data/.bss (one gauge each). */
function exportableNames(objects: ObjectSpec[]): Map<string, { obj: ObjectSpec; keyTypeId: number; keySize: number } | null> {
  const names = new Map<string, { obj: ObjectSpec; keyTypeId: number; keySize: number } | null>();
  for (const obj of objects) {
    for (const m of obj.maps) {
      if (m.origin === 'data' || m.origin === 'bss') for (const v of m.vars ?? []) names.set(v.name, null);
      else if (m.origin !== 'rodata') names.set(m.name, { obj, keyTypeId: m.btfKeyTypeId, keySize: m.keySize });
    }
  }
  return names;
}

/** Key field paths as keyLabels names them (`key` for a scalar key, `a_b` for nested fields). */
function keyFields(obj: ObjectSpec, keyTypeId: number, keySize: number): string[] {
  const zero = decodeValue(obj.btf, keyTypeId, new Uint8Array(keySize));
  if (!isJsonObject(zero)) return ['key'];
  const out: string[] = [];
  const walk = (v: JsonValue, path: string) => {
    if (isJsonObject(v)) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}_${k}` : k);
    else out.push(path);
  };
  walk(zero, '');
  return out;
}

export interface MetricsPlanInput {
  /** `--metrics [HOST:]PORT`, which wins over the manifest's listen. */
  option?: string;
  manifest?: { file: string; metrics?: MetricsManifest };
  objects: ObjectSpec[];
}

/** null when metrics were not asked for. Throws MetricsConfigError (one line) on a mistake. */
export function planMetrics(input: MetricsPlanInput): MetricsConfig | null {
  const raw = input.manifest?.metrics;
  if (input.option === undefined && raw === undefined) return null;
  const file = input.manifest?.file ?? '';
  const at = (pointer: string) => `${file}: /output/metrics${pointer}`;
  let listen: { host: string; port: number };
  let source: string;
  if (input.option !== undefined) {
    listen = parseListen(input.option, '--metrics');
    source = '--metrics';
  } else if (raw?.listen !== undefined) {
    listen = parseListen(raw.listen, at('/listen'));
    source = at('/listen');
  } else {
    throw new MetricsConfigError(`${at('')}: missing "listen" ([HOST:]PORT), or give --metrics`);
  }
  const names = exportableNames(input.objects);
  const maps: Record<string, MapMetricConfig> = {};
  for (const [name, m] of Object.entries(raw?.maps ?? {})) {
    const pointer = `/maps/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!names.has(name)) {
      const known = [...names.keys()];
      throw new MetricsConfigError(`${at(pointer)}: no map or global variable "${name}" in the loaded objects${known.length ? ` (there are: ${known.join(', ')})` : ''}`);
    }
    const key = names.get(name)!;
    const fields = key ? keyFields(key.obj, key.keyTypeId, key.keySize) : [];
    for (const [what, table] of [['labels', m.labels], ['decoders', m.decoders]] as const) {
      for (const field of Object.keys(table ?? {})) {
        if (!fields.includes(field)) {
          throw new MetricsConfigError(`${at(`${pointer}/${what}/${field}`)}: ${name} has no key field "${field}"${fields.length ? ` (its key fields: ${fields.join(', ')})` : ' (it has no key)'}`);
        }
      }
    }
    maps[name] = {
      metric: m.metric,
      type: m.type,
      help: m.help,
      labels: { ...(m.labels ?? {}) },
      decoders: { ...(m.decoders ?? {}) },
      scale: m.scale,
      maxSeries: m.maxSeries,
      disabled: m.disabled === true,
    };
  }
  return {
    ...listen,
    cacheSeconds: raw?.cacheSeconds ?? DEFAULT_CACHE_SECONDS,
    maxSeries: raw?.maxSeries ?? DEFAULT_MAX_SERIES,
    prefix: raw?.prefix ?? DEFAULT_PREFIX,
    maps,
    source,
  };
}
