// `/metrics` in the Prometheus text format while a session runs. Maps are read from the agent
// when a scrape comes (at most once per cacheSeconds, one read in flight at a time), never on
// the target's hit path; prom-client writes the exposition format.

import * as http from 'http';
import type { AddressInfo } from 'net';
import { Registry } from 'prom-client';
import type { MapDump, ProgramStats } from '../../protocol/messages.js';
import type { ObjectSpec } from '../../protocol/spec.js';
import { decodeAll, type MapPrintOptions } from '../output/mapText.js';
import { mapFamilies, type Family, type LabelDecoders } from './mapFamilies.js';
import { MetricsConfigError, type MetricsConfig } from './metricsConfig.js';

/** Where a scrape's data comes from: the session's RPC. */
export interface MetricsSource {
  maps(): Promise<MapDump[]>;
  stats(): Promise<{ programs: ProgramStats[]; droppedRecords: number }>;
  /** Symbols of addresses in the target (for the `symbol` decoder); null where none. */
  symbolize(addresses: bigint[]): Promise<string[]>;
}

/** Symbols kept between scrapes; beyond this many the cache starts over (long runs stay bounded). */
const MAX_CACHED_SYMBOLS = 100_000;

export interface MetricsServerOptions {
  config: MetricsConfig;
  objects: ObjectSpec[];
  /** How maps decode (output.histograms, output.syscalls), as in the printed dumps. */
  print: MapPrintOptions;
  /** Syscall number → name (the `syscall` decoder). */
  syscallName(nr: number): string | undefined;
  /** Tells the user once about maps that cannot be exported, or series dropped. */
  warn(text: string): void;
}

interface Snapshot {
  at: number;
  families: Family[];
}

export class MetricsServer {
  private readonly server: http.Server;
  private source: MetricsSource | null = null;
  private labels: Record<string, string> = {};
  private snapshot: Snapshot | null = null;
  private reading: Promise<Snapshot> | null = null;
  private readonly histTop = new Map<string, number>();
  private readonly seriesDropped: Record<string, number> = {};
  private readonly warned = new Set<string>();
  private readonly symbols = new Map<bigint, string | null>();
  private scrapes = 0;
  private attached = false;

  constructor(private readonly opts: MetricsServerOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  /** Binds before anything is attached, so a port in use fails the run before the target is touched. */
  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.opts.config;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' ? 'no such local address' : err.message;
        reject(new MetricsConfigError(`${this.opts.config.source}: cannot listen on ${host}:${port}: ${why}`));
      };
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const a = this.server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** The session is attached: scrapes read its maps from now on. */
  attach(source: MetricsSource, target: { pid: number; comm: string }): void {
    this.source = source;
    this.labels = { pid: String(target.pid), comm: target.comm };
    this.attached = true;
  }

  /** The session ended: scrapes keep serving the last values, with bpftime_attached 0. */
  detach(): void {
    this.attached = false;
    this.source = null;
  }

  /** Stops serving; a scraper's keep-alive connection must not hold the CLI's exit. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><a href="/metrics">/metrics</a></body></html>\n');
      return;
    }
    if (url !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    try {
      const registry = await this.registry();
      const body = await registry.metrics();
      res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500).end(`${(err as Error).message}\n`);
    }
  }

  private async read(): Promise<Snapshot> {
    const now = Date.now();
    if (this.snapshot && (now - this.snapshot.at < this.opts.config.cacheSeconds * 1000 || this.source === null)) return this.snapshot;
    this.reading ??= this.readNow().finally(() => (this.reading = null));
    return this.reading;
  }

  private async readNow(): Promise<Snapshot> {
    const source = this.source;
    if (source === null) return (this.snapshot ??= { at: Date.now(), families: [] });
    let dumps: MapDump[];
    let stats: { programs: ProgramStats[]; droppedRecords: number };
    try {
      [dumps, stats] = await Promise.all([source.maps(), source.stats()]);
    } catch {
      // The target went away between scrapes: the last values stay (bpftime_attached says so).
      return (this.snapshot ??= { at: Date.now(), families: [] });
    }
    const { config } = this.opts;
    const decoded = decodeAll(this.opts.objects, dumps, this.opts.print);
    const misses = new Set<bigint>();
    const decoders: LabelDecoders = {
      syscallName: this.opts.syscallName,
      symbol: (a) => {
        const s = this.symbols.get(a);
        if (s === undefined) misses.add(a);
        return s ?? undefined;
      },
    };
    const families = () => mapFamilies(decoded, { prefix: config.prefix, maps: config.maps, maxSeries: config.maxSeries, decoders, histTop: this.histTop });
    let out = families();
    if (misses.size > 0) {
      // Addresses are resolved in the target (it knows its modules) once each, then cached.
      const wanted = [...misses];
      const names: (string | null)[] = await source.symbolize(wanted).catch(() => wanted.map(() => null));
      if (this.symbols.size + wanted.length > MAX_CACHED_SYMBOLS) this.symbols.clear();
      wanted.forEach((a, i) => this.symbols.set(a, names[i] ?? null));
      out = families();
    }
    for (const name of out.skipped) this.warnOnce(`skip:${name}`, `--metrics: map ${name} has values that are not numbers; it is not exported`);
    for (const [name, n] of Object.entries(out.droppedSeries)) {
      this.seriesDropped[name] = Math.max(this.seriesDropped[name] ?? 0, n);
      this.warnOnce(`drop:${name}`, `--metrics: map ${name} has more keys than its series limit; the rest are counted in ${config.prefix}_metrics_series_dropped_total`);
    }
    this.snapshot = { at: Date.now(), families: [...out.families, ...this.programFamilies(stats)] };
    return this.snapshot;
  }

  private programFamilies(stats: { programs: ProgramStats[]; droppedRecords: number }): Family[] {
    const p = this.opts.config.prefix;
    const objectName = (i: number) => {
      const path = this.opts.objects[i]?.path ?? `object#${i}`;
      return path.slice(path.lastIndexOf('/') + 1);
    };
    const per = (name: string, help: string, value: (s: ProgramStats) => number): Family => ({
      name: `${p}_${name}`,
      help,
      type: 'counter',
      samples: stats.programs.map((s) => ({ labels: { object: objectName(s.object), program: s.program }, value: value(s) })),
    });
    return [
      per('program_hits_total', 'Runs of each eBPF program', (s) => s.hits),
      per('program_faults_total', 'Faults of each eBPF program (a faulting program is disabled)', (s) => s.faults),
      { name: `${p}_dropped_records_total`, help: 'Ring-buffer and perf records the host did not receive', type: 'counter', samples: [{ labels: {}, value: stats.droppedRecords }] },
    ];
  }

  private warnOnce(key: string, text: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.opts.warn(text);
  }

  private async registry(): Promise<Registry> {
    const snap = await this.read();
    this.scrapes++;
    const p = this.opts.config.prefix;
    const families: Family[] = [
      ...snap.families,
      { name: `${p}_attached`, help: '1 while bpftime-ts is attached to the target', type: 'gauge', samples: [{ labels: {}, value: this.attached ? 1 : 0 }] },
      { name: `${p}_metrics_scrapes_total`, help: 'Scrapes of this endpoint', type: 'counter', samples: [{ labels: {}, value: this.scrapes }] },
      {
        name: `${p}_metrics_series_dropped_total`,
        help: 'Series left out because a map had more keys than its series limit (per map, at the last read)',
        type: 'counter',
        samples: Object.entries(this.seriesDropped).map(([map, value]) => ({ labels: { map }, value })),
      },
    ];
    const registry = new Registry();
    registry.setDefaultLabels(this.labels);
    for (const f of families) {
      if (registry.getSingleMetric(f.name) !== undefined) {
        this.warnOnce(`dup:${f.name}`, `--metrics: two maps both give metric ${f.name}; only the first is exported (rename one with output.metrics.maps.NAME.metric)`);
        continue;
      }
      // prom-client formats any object with get(): the values are computed already.
      registry.registerMetric({
        name: f.name,
        help: f.help,
        type: f.type,
        get: async () => ({ name: f.name, help: f.help, type: f.type, values: f.samples, aggregator: 'sum' }),
      } as unknown as Parameters<Registry['registerMetric']>[0]);
    }
    return registry;
  }
}
