// Does serving Prometheus metrics slow the target? A counter program on hotloop's hot(),
// per-hit cost measured inside the victim, with no metrics, with --metrics but no scraper,
// and with a scraper hammering /metrics at 20 Hz; plus what one scrape costs (ms, p50/max).
// Usage: node dist/bench/metrics.bench.js [calls] [runs]

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { max, median, table } from './stats';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'bin', 'bpftime-ts');
const victim = path.join(root, 'test', 'fixtures', 'build', 'victims', 'hotloop');
const object = path.join(root, 'test', 'fixtures', 'build', 'bpf', 'bench_hot.bpf.o');
const calls = Number(process.argv[2] ?? 5_000_000);
const runs = Number(process.argv[3] ?? 3);
const env = { ...process.env, BPFTIME_TS_BACKEND: process.env.BPFTIME_TS_BACKEND ?? 'sidecar' };

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function manifest(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-bench-')), 'm.json');
  const programs = Object.fromEntries(['on_entry', 'on_return', 'on_override', 'on_empty', 'on_entry_hash', 'on_entry_js'].map((p) => [p, p === 'on_entry_hash' ? {} : { disabled: true }]));
  fs.writeFileSync(file, JSON.stringify({ objects: [{ path: object, programs }] }));
  return file;
}

/** One traced run; resolves with the victim's ns per call and the scrape latencies seen. */
async function run(mode: 'plain' | 'served' | 'scraped'): Promise<{ ns: number; scrapes: number[] }> {
  const port = await freePort();
  const args = ['spawn', '-m', manifest(), ...(mode === 'plain' ? [] : ['--metrics', String(port)]), victim, String(calls)];
  const child = spawn(cli, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const done = new Promise<void>((r) => child.on('close', () => r()));
  const scrapes: number[] = [];
  let running = true;
  void done.then(() => (running = false));
  if (mode === 'scraped') {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        const body = await res.text();
        if (body.includes('bpftime_program_hits_total')) scrapes.push(performance.now() - t0);
      } catch {
        /* not listening yet, or gone */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await done;
  const m = /ns_per_call ([\d.]+)/.exec(out);
  if (!m) throw new Error(`no timing in output:\n${out}`);
  return { ns: Number(m[1]), scrapes };
}

async function main(): Promise<void> {
  const rows: Record<string, number[]> = { plain: [], served: [], scraped: [] };
  const scrapeMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const mode of ['plain', 'served', 'scraped'] as const) {
      const r = await run(mode);
      rows[mode].push(r.ns);
      scrapeMs.push(...r.scrapes);
    }
  }
  const base = median(rows.plain);
  const label = { plain: 'hash-map counter uprobe, no --metrics (baseline)', served: 'with --metrics, nobody scraping', scraped: 'with --metrics, scraped at 20 Hz' };
  console.log(`per-hit cost, ${calls} calls per run, median of ${runs} runs\n`);
  console.log(
    table(
      ['run', 'ns per call', 'vs baseline'],
      (['plain', 'served', 'scraped'] as const).map((m) => [label[m], median(rows[m]).toFixed(1), `${(median(rows[m]) / base).toFixed(2)}x`]),
    ),
  );
  if (scrapeMs.length) console.log(`\none scrape (map dump RPC, decode, format): median ${median(scrapeMs).toFixed(1)} ms, max ${max(scrapeMs).toFixed(1)} ms over ${scrapeMs.length} scrapes`);
}

void main();
