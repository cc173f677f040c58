// Long attaches that sample the resident memory of the target, the CLI and its sidecar
// while the target runs a hooked path in a loop (and, optionally, /metrics is scraped):
// the data behind "the target's memory stays flat" (#12) and "bounded memory for hours"
// (#17). The default suite runs them for seconds, `npm run stress` for minutes or hours.
import * as fs from 'fs';
import { sleep, startCli, waitForOutput } from './cli';
import { isAlive, startVictim } from './victim';

export interface RssSample {
  atSeconds: number;
  targetKb: number;
  cliKb: number;
  sidecarKb: number;
}

export interface SoakOptions {
  victim: string;
  /** CLI arguments after `attach --pid PID`. */
  cliArgs: string[];
  seconds: number;
  sampleEverySeconds: number;
  /** Scrape the /metrics URL the CLI prints this often (the run must pass --metrics or a manifest with it). */
  scrapeHz?: number;
}

export interface SoakResult {
  samples: RssSample[];
  scrapes: number;
  failedScrapes: number;
  /**
   * After a warm-up (the first quarter), the largest sample of the second half of the rest
   * minus the largest of its first half: peaks that keep rising, not the sawtooth of a
   * garbage collector.
   */
  growthKb: { target: number; cli: number; sidecar: number };
  targetAlive: boolean;
  cliCode: number | null;
  stdout: string;
  /** The last scrape's `bpftime_program_hits_total` summed over programs (0 without scraping). */
  hitsAtLastScrape: number;
}

function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Direct children of `pid` (the CLI's sidecar is its only long-lived child). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const victim = await startVictim(o.victim, []);
  const cli = startCli(['attach', '--pid', String(victim.pid), ...o.cliArgs]);
  const samples: RssSample[] = [];
  let scrapes = 0;
  let failedScrapes = 0;
  let hitsAtLastScrape = 0;
  try {
    const status = await waitForOutput(cli, (t) => /hooks? installed/.test(t) && (!o.scrapeHz || /metrics on http/.test(t)), 30000);
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(status)?.[1];
    const sidecar = childrenOf(cli.pid!)[0];
    const start = Date.now();
    let nextSample = 0;
    while ((Date.now() - start) / 1000 < o.seconds) {
      const at = (Date.now() - start) / 1000;
      if (at >= nextSample) {
        samples.push({ atSeconds: Math.round(at), targetKb: rssKb(victim.pid), cliKb: rssKb(cli.pid!), sidecarKb: sidecar ? rssKb(sidecar) : 0 });
        nextSample += o.sampleEverySeconds;
      }
      if (o.scrapeHz && url) {
        try {
          const text = await (await fetch(url)).text();
          scrapes++;
          const hits = [...text.matchAll(/^bpftime_program_hits_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
          if (hits) hitsAtLastScrape = hits;
        } catch {
          failedScrapes++;
        }
        await sleep(1000 / o.scrapeHz);
      } else {
        await sleep(Math.min(1000, o.sampleEverySeconds * 1000));
      }
    }
    cli.kill('SIGINT');
    const result = await cli.result;
    const warm = samples.slice(Math.floor(samples.length / 4));
    const half = Math.floor(warm.length / 2);
    const peak = (part: RssSample[], pick: (s: RssSample) => number) => Math.max(...part.map(pick));
    const growth = (pick: (s: RssSample) => number) => peak(warm.slice(half), pick) - peak(warm.slice(0, half), pick);
    return {
      samples,
      scrapes,
      failedScrapes,
      growthKb: { target: growth((s) => s.targetKb), cli: growth((s) => s.cliKb), sidecar: growth((s) => s.sidecarKb) },
      targetAlive: isAlive(victim.pid),
      cliCode: result.code,
      stdout: result.stdout,
      hitsAtLastScrape,
    };
  } finally {
    if (cli.exitCode === null) cli.kill('SIGKILL');
    victim.stop();
  }
}

export function formatSoak(r: SoakResult): string {
  const rows = r.samples.map((s) => `${String(s.atSeconds).padStart(6)} s  target ${s.targetKb} kB  cli ${s.cliKb} kB  sidecar ${s.sidecarKb} kB`);
  const scraped = r.scrapes ? `scrapes ${r.scrapes} (failed ${r.failedScrapes}), hits ${r.hitsAtLastScrape}, ` : '';
  return [...rows, `${scraped}growth after warm-up: target ${r.growthKb.target} kB, cli ${r.growthKb.cli} kB, sidecar ${r.growthKb.sidecar} kB`].join('\n');
}

/** Total hits from the CLI's final stats line (`programs: NAME N hits, …`). */
export function finalHits(stdout: string): number {
  return [...stdout.matchAll(/(\d+) hits/g)].reduce((n, m) => n + Number(m[1]), 0);
}
