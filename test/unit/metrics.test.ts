// Maps → Prometheus families (host/metrics), on a real clang object's BTF: labels from struct
// keys, log2 histograms with cumulative buckets, decoders, series limits, and the plan-time
// checks that name the JSON path of a mistake.
import { loadObject } from '../../host/loader/loadObject';
import { decodeAll } from '../../host/output/mapText';
import { bucketUpperBound, keyLabels, mapFamilies, type FamilyOptions } from '../../host/metrics/mapFamilies';
import { MetricsConfigError, parseListen, sanitizeName, type MapMetricConfig } from '../../host/metrics/metricsConfig';
import { planMetrics } from '../../host/metrics/planMetrics';
import type { MapDump } from '../../protocol/messages';
import { bpfObjectPath } from '../support/paths';

const obj = loadObject(bpfObjectPath('metrics_demo'));
const index = (name: string) => obj.maps.findIndex((m) => m.name === name);

function u(size: number, v: number | bigint): string {
  const b = Buffer.alloc(size);
  let x = BigInt(v);
  for (let i = 0; i < size; i++, x >>= 8n) b[i] = Number(x & 0xffn);
  return b.toString('base64');
}

/** The dump the agent would send after work(i) for i = 0..n-1 (what metrics_demo.bpf.c computes). */
function dumpFor(n: number): MapDump[] {
  const calls = new Map<string, number>();
  const hist = new Array<number>(64).fill(0);
  for (let i = 0; i < n; i++) {
    const k = `${i & 1},${i % 3}`;
    calls.set(k, (calls.get(k) ?? 0) + 1);
    hist[i <= 1 ? 0 : Math.floor(Math.log2(i))]++;
  }
  const callsEntries = [...calls].map(([k, v]) => {
    const [p, m] = k.split(',').map(Number);
    return { key: Buffer.concat([Buffer.from(u(4, p), 'base64'), Buffer.from(u(4, m), 'base64')]).toString('base64'), value: u(8, v) };
  });
  return [
    { object: 0, map: index('calls'), name: 'calls', entries: callsEntries },
    { object: 0, map: index('arg_hist'), name: 'arg_hist', entries: hist.map((v, i) => ({ key: u(4, i), value: u(8, v) })) },
    { object: 0, map: index('by_nr'), name: 'by_nr', entries: [0, 1, 2, 3].map((k) => ({ key: u(4, k), value: u(8, Math.floor(n / 4)) })) },
    { object: 0, map: index('by_ip'), name: 'by_ip', entries: [{ key: u(8, 0x5555_0000_1234n), value: u(8, n) }] },
    { object: 0, map: index('.bss'), name: '.bss', entries: [{ key: u(4, 0), value: u(8, n) }] },
  ];
}

function options(maps: Record<string, Partial<MapMetricConfig>> = {}, maxSeries = 1000): FamilyOptions {
  const full: Record<string, MapMetricConfig> = {};
  for (const [k, v] of Object.entries(maps)) full[k] = { labels: {}, decoders: {}, disabled: false, ...v };
  return {
    prefix: 'bpftime',
    maps: full,
    maxSeries,
    histTop: new Map(),
    decoders: { syscallName: (nr) => ['read', 'write', 'open', 'close'][nr], symbol: (a) => (a === 0x5555_0000_1234n ? 'metrics_target!work' : undefined) },
  };
}

describe('maps as Prometheus families', () => {
  const decoded = decodeAll([obj], dumpFor(100));

  test('a struct-keyed hash map: one series per key, labels named after the key fields, counters get _total', () => {
    const { families } = mapFamilies(decoded, options({ calls: { type: 'counter' } }));
    const calls = families.find((f) => f.name === 'bpftime_calls_total')!;
    expect(calls.type).toBe('counter');
    expect(calls.samples).toHaveLength(6);
    expect(calls.samples.find((s) => s.labels.parity === '0' && s.labels.mod3 === '0')!.value).toBe(17);
    expect(calls.samples.reduce((a, s) => a + s.value, 0)).toBe(100);
  });

  test('a log2 histogram map: cumulative buckets with libbpf-tools bounds, +Inf, _count and the documented _sum estimate', () => {
    const { families } = mapFamilies(decoded, options());
    const h = families.find((f) => f.name === 'bpftime_arg_hist')!;
    expect(h.type).toBe('histogram');
    const buckets = h.samples.filter((s) => s.metricName === 'bpftime_arg_hist_bucket');
    expect(buckets.map((b) => b.labels.le)).toEqual(['1', '3', '7', '15', '31', '63', '127', '+Inf']);
    expect(buckets.map((b) => b.value)).toEqual([2, 4, 8, 16, 32, 64, 100, 100]);
    expect(h.samples.find((s) => s.metricName === 'bpftime_arg_hist_count')!.value).toBe(100);
    // bucket 0 counts as 0.5 each, bucket i as 1.5 * 2^i each
    const expectedSum = 2 * 0.5 + 2 * 3 + 4 * 6 + 8 * 12 + 16 * 24 + 32 * 48 + 36 * 96;
    expect(h.samples.find((s) => s.metricName === 'bpftime_arg_hist_sum')!.value).toBe(expectedSum);
    expect(bucketUpperBound(0)).toBe(1);
    expect(bucketUpperBound(10)).toBe(2047);
  });

  test('histogram bucket sets only grow between reads, and scale converts units (ns → s)', () => {
    const opts = options({ arg_hist: { scale: 1e-3 } });
    mapFamilies(decodeAll([obj], dumpFor(100)), opts);
    const later = mapFamilies(decodeAll([obj], dumpFor(10)), opts).families.find((f) => f.name === 'bpftime_arg_hist')!;
    const les = later.samples.filter((s) => s.metricName?.endsWith('_bucket')).map((s) => s.labels.le);
    expect(les).toEqual(['0.001', '0.003', '0.007', '0.015', '0.031', '0.063', '0.127', '+Inf']);
  });

  test('decoders: syscall numbers as names, addresses as symbols; labels renamed by config', () => {
    const { families } = mapFamilies(decoded, options({ by_nr: { decoders: { key: 'syscall' }, labels: { key: 'syscall' } }, by_ip: { decoders: { key: 'symbol' }, labels: { key: 'function' } } }));
    expect(families.find((f) => f.name === 'bpftime_by_nr')!.samples.map((s) => s.labels.syscall).sort()).toEqual(['close', 'open', 'read', 'write']);
    expect(families.find((f) => f.name === 'bpftime_by_ip')!.samples[0].labels).toEqual({ function: 'metrics_target!work' });
  });

  test('globals become gauges; a disabled map is not exported', () => {
    const { families } = mapFamilies(decoded, options({ calls: { disabled: true } }));
    expect(families.find((f) => f.name === 'bpftime_total_calls')!.samples).toEqual([{ labels: {}, value: 100 }]);
    expect(families.some((f) => f.name.startsWith('bpftime_calls'))).toBe(false);
  });

  test('series beyond a map\'s limit are left out and counted', () => {
    const out = mapFamilies(decoded, options({ calls: { maxSeries: 4 } }));
    expect(out.families.find((f) => f.name === 'bpftime_calls')!.samples).toHaveLength(4);
    expect(out.droppedSeries).toEqual({ calls: 2 });
  });

  test('key fields named like the target labels are prefixed, so pid/comm stay the target\'s', () => {
    const d = options().decoders;
    expect(keyLabels({ pid: 7, comm: 'x', cpu: 1 }, undefined, d)).toEqual({ key_pid: '7', key_comm: 'x', cpu: '1' });
    expect(keyLabels({ a: { b: 1 } }, undefined, d)).toEqual({ a_b: '1' });
    expect(keyLabels(5, undefined, d)).toEqual({ key: '5' });
  });
});

describe('metrics configuration', () => {
  const manifest = (metrics: object) => ({ file: 'm.json', metrics: metrics as never });

  test('[HOST:]PORT', () => {
    expect(parseListen('9435', '--metrics')).toEqual({ host: '127.0.0.1', port: 9435 });
    expect(parseListen('0.0.0.0:1', '--metrics')).toEqual({ host: '0.0.0.0', port: 1 });
    expect(parseListen('[::1]:80', '--metrics')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListen('70000', '--metrics')).toThrow('--metrics: port must be at most 65535, got 70000');
    expect(() => parseListen('host:', '--metrics')).toThrow('--metrics: must be [HOST:]PORT');
    expect(sanitizeName('a.b-c')).toBe('a_b_c');
    expect(sanitizeName('.bss')).toBe('_bss');
  });

  test('the command line wins over the manifest; defaults are filled in', () => {
    const c = planMetrics({ option: '127.0.0.1:0', manifest: manifest({ listen: '9999', cacheSeconds: 5 }), objects: [obj] })!;
    expect(c).toMatchObject({ host: '127.0.0.1', port: 0, cacheSeconds: 5, maxSeries: 1000, prefix: 'bpftime', source: '--metrics' });
    expect(planMetrics({ objects: [obj] })).toBeNull();
  });

  test('mistakes name the JSON path and what exists', () => {
    const err = (metrics: object) => {
      try {
        planMetrics({ manifest: manifest(metrics), objects: [obj] });
      } catch (e) {
        expect(e).toBeInstanceOf(MetricsConfigError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err({ maps: {} })).toBe('m.json: /output/metrics: missing "listen" ([HOST:]PORT), or give --metrics');
    expect(err({ listen: '1', maps: { nope: {} } })).toBe('m.json: /output/metrics/maps/nope: no map or global variable "nope" in the loaded objects (there are: calls, arg_hist, by_nr, by_ip, total_calls)');
    expect(err({ listen: '1', maps: { calls: { labels: { tid: 'x' } } } })).toBe('m.json: /output/metrics/maps/calls/labels/tid: calls has no key field "tid" (its key fields: parity, mod3)');
    expect(err({ listen: '1', maps: { total_calls: { decoders: { key: 'hex' } } } })).toBe('m.json: /output/metrics/maps/total_calls/decoders/key: total_calls has no key field "key" (it has no key)');
  });
});
