// `--metrics` end to end: a real Prometheus server (Debian's package, installed by
// scripts/setup.sh) scrapes bpftime-ts attached to a real victim; what Prometheus stored is
// compared with what the victim did and with the map dump bpftime-ts prints at exit.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { runCli, sleep, startCli, waitForOutput } from '../support/cli';
import { bpfObjectPath, victimPath } from '../support/paths';
import { isAlive, startVictim } from '../support/victim';
import { formatSoak, runSoak } from '../support/soak';

const PROMETHEUS = '/usr/bin/prometheus';
const CALLS = 200;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function writeManifest(dir: string, listen: string, extra: object = {}): string {
  const file = path.join(dir, 'metrics.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      objects: [{ path: bpfObjectPath('metrics_demo'), programs: { on_work: { type: 'uprobe', binary: victimPath('metrics_target'), symbol: 'work' } } }],
      output: {
        metrics: {
          listen,
          maps: {
            calls: { type: 'counter', help: 'calls of work() by parity and i mod 3' },
            by_nr: { decoders: { key: 'syscall' }, labels: { key: 'syscall' } },
            by_ip: { decoders: { key: 'symbol' }, labels: { key: 'function' } },
          },
          ...extra,
        },
      },
    }),
  );
  return file;
}

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(port: number, q: string): Promise<PromResult[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: PromResult[] } };
  if (body.status !== 'success') throw new Error(`prometheus: ${JSON.stringify(body)}`);
  return body.data.result;
}

async function startPrometheus(dir: string, target: number): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: bpftime\n    static_configs:\n      - targets: ['127.0.0.1:${target}']\n`);
  const child = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const end = Date.now() + 20000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/-/ready`)).ok) return { child, port };
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error('prometheus did not become ready');
    await sleep(200);
  }
}

/** Polls until `pred` holds for the query's result (Prometheus scrapes once a second). */
async function until(port: number, q: string, pred: (r: PromResult[]) => boolean, ms = 20000): Promise<PromResult[]> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await query(port, q);
    if (pred(r)) return r;
    if (Date.now() > end) throw new Error(`timed out on ${q}: ${JSON.stringify(r)}`);
    await sleep(300);
  }
}

const value = (r: PromResult[], labels: Record<string, string> = {}) =>
  Number(r.find((x) => Object.entries(labels).every(([k, v]) => x.metric[k] === v))?.value[1]);

describe('Prometheus metrics', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-metrics-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a real Prometheus scrapes a traced victim: counters, histogram buckets and labels agree with the victim and the exit dump', async () => {
    const victim = await startVictim('metrics_target', [String(CALLS)]);
    const cli = startCli(['attach', '--pid', String(victim.pid), '-m', writeManifest(dir, '127.0.0.1:0')]);
    let prom: ChildProcess | null = null;
    try {
      const status = await waitForOutput(cli, (t) => /hook installed/.test(t), 30000);
      const metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(status)![1]);
      const p = await startPrometheus(dir, metricsPort);
      prom = p.child;
      await until(p.port, 'bpftime_attached', (r) => value(r) === 1);
      process.kill(victim.pid, 'SIGUSR1');
      await until(p.port, 'bpftime_total_calls', (r) => value(r) === CALLS);

      const calls = await query(p.port, 'bpftime_calls_total');
      expect(calls).toHaveLength(6);
      for (const parity of [0, 1]) {
        for (const mod3 of [0, 1, 2]) {
          let n = 0;
          for (let i = 0; i < CALLS; i++) if ((i & 1) === parity && i % 3 === mod3) n++;
          expect(value(calls, { parity: String(parity), mod3: String(mod3) })).toBe(n);
        }
      }
      expect(calls[0].metric).toMatchObject({ pid: String(victim.pid), comm: 'metrics_target', job: 'bpftime' });

      const buckets = await query(p.port, 'bpftime_arg_hist_bucket');
      const le = (b: string) => value(buckets, { le: b });
      // work(i) for i < 200: bucket [2^k, 2^(k+1)) has 2^k values, bucket 0 holds 0 and 1; cumulative.
      expect([le('1'), le('3'), le('7'), le('15'), le('31'), le('63'), le('127'), le('255'), le('+Inf')]).toEqual([2, 4, 8, 16, 32, 64, 128, 200, 200]);
      expect(value(await query(p.port, 'bpftime_arg_hist_count'))).toBe(CALLS);
      // histogram_quantile works on what we export: the median of 0..199 lies in [64, 128).
      const median = value(await query(p.port, 'histogram_quantile(0.5, bpftime_arg_hist_bucket)'));
      expect(median).toBeGreaterThanOrEqual(63);
      expect(median).toBeLessThanOrEqual(127);

      const byNr = await query(p.port, 'bpftime_by_nr');
      expect(byNr.map((r) => r.metric.syscall).sort()).toEqual(['close', 'open', 'read', 'write']);
      for (const r of byNr) expect(Number(r.value[1])).toBe(CALLS / 4);
      const byIp = await query(p.port, 'bpftime_by_ip');
      expect(byIp.map((r) => [r.metric.function, Number(r.value[1])])).toEqual([['work', CALLS]]);
      expect(value(await query(p.port, 'bpftime_program_hits_total'), { program: 'on_work' })).toBe(CALLS);

      cli.kill('SIGINT');
      const result = await cli.result;
      expect(result.code).toBe(0);
      // The exit dump says the same as Prometheus.
      expect(result.stdout).toContain(`@total_calls: ${CALLS}`);
      expect(result.stdout).toContain('@by_nr[0]: 50');
      expect(result.stdout).toMatch(/\[64, 128\)\s+64 \|/);
      expect(result.stdout).toContain(`on_work ${CALLS} hits, 0 faults`);
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      prom?.kill('SIGKILL');
      if (cli.exitCode === null) cli.kill('SIGKILL');
      victim.stop();
    }
  }, 90000);

  // The short version of test/stress/metrics.stress.ts (minutes, or hours by environment).
  test('20 s attached and scraped at 10 Hz: target memory flat, host memory bounded, every scrape answered', async () => {
    const r = await runSoak({ victim: 'metrics_busy', cliArgs: ['-o', bpfObjectPath('soak_native'), '--metrics', '127.0.0.1:0'], seconds: 20, sampleEverySeconds: 2, scrapeHz: 10 });
    const report = formatSoak(r);
    expect([r.targetAlive, r.cliCode, r.failedScrapes]).toEqual([true, 0, 0]);
    expect(r.scrapes).toBeGreaterThan(100);
    expect(r.hitsAtLastScrape).toBeGreaterThan(200_000);
    expect({ bounded: r.growthKb.target < 1024 && r.growthKb.cli < 8 * 1024 && r.growthKb.sidecar < 4 * 1024, report }).toEqual({ bounded: true, report });
  }, 90000);

  test('a port in use fails the run with one line and exit 2 before the target is touched', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const marker = path.join(dir, 'ran');
      const r = await runCli(['spawn', '--metrics', String(port), '-o', bpfObjectPath('rt_count'), '/bin/sh', '-c', `touch ${marker}`]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(`bpftime-ts: error: --metrics: cannot listen on 127.0.0.1:${port}: address already in use`);
      expect(fs.existsSync(marker)).toBe(false);
    } finally {
      blocker.close();
    }
  });

  test('malformed metrics configuration: one line naming the JSON path or option, exit 2', async () => {
    const cases: [string[], string][] = [
      [['--metrics', 'localhost:99999'], 'bpftime-ts: error: --metrics: port must be at most 65535, got 99999'],
      [['--metrics', ':80'], 'bpftime-ts: error: --metrics: must be [HOST:]PORT (e.g. 9435 or 0.0.0.0:9435), got ":80"'],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(['spawn', ...args, '-o', bpfObjectPath('rt_count'), '/bin/true']);
      expect([r.code, r.stderr.trim()]).toEqual([2, line]);
    }
    const m = writeManifest(dir, '9435', { maps: { calls: { type: 'summary' } } });
    const bad = await runCli(['attach', '--pid', String(process.pid), '-m', m]);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, `bpftime-ts: error: ${m}: /output/metrics/maps/calls/type: must be one of "counter", "gauge", "histogram"`]);
    const m2 = writeManifest(dir, '9435', { maps: { callz: {} } });
    const unknown = await runCli(['attach', '--pid', String(process.pid), '-m', m2]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe(`bpftime-ts: error: ${m2}: /output/metrics/maps/callz: no map or global variable "callz" in the loaded objects (there are: calls, arg_hist, by_nr, by_ip, total_calls)`);
  });
});
