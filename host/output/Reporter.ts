// Everything the user sees goes through here: status lines on stderr, results on stdout,
// as human text or as one JSON object per line (--json).

import type { AgentEvent } from '../../protocol/messages';

export interface ReporterOptions {
  json: boolean;
  verbose: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

export class Reporter {
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WritableStream;

  constructor(readonly opts: ReporterOptions) {
    this.out = opts.out ?? process.stdout;
    this.err = opts.err ?? process.stderr;
  }

  /** Progress (attaching, N hooks installed, detaching): stderr, silent with --json unless -v. */
  status(text: string): void {
    if (!this.opts.json || this.opts.verbose) this.err.write(`bpftime-ts: ${text}\n`);
  }

  /** Diagnostics only shown with -v. */
  debug(text: string): void {
    if (this.opts.verbose) this.err.write(`bpftime-ts: ${text}\n`);
  }

  /** One line, no stack: user errors and failures alike. */
  error(text: string): void {
    if (this.opts.json) this.json({ type: 'error', message: text });
    this.err.write(`bpftime-ts: error: ${text}\n`);
  }

  warn(text: string): void {
    if (this.opts.json) this.json({ type: 'warning', message: text });
    else this.err.write(`bpftime-ts: warning: ${text}\n`);
  }

  /** A program faulted and was disabled: the target runs on without it. */
  fault(ev: Extract<AgentEvent, { type: 'fault' }>): void {
    if (this.opts.json) this.json({ type: 'fault', program: ev.program, pc: ev.pc, message: ev.message });
    else this.err.write(`bpftime-ts: warning: program ${ev.program} faulted and is disabled: ${ev.message}\n`);
  }

  json(obj: unknown): void {
    this.out.write(JSON.stringify(obj) + '\n');
  }

  /** First hit on a hooked function: the moment tracing is proven live. */
  firstHit(ev: Extract<AgentEvent, { type: 'first-hit' }>, msSinceStart: number): void {
    if (this.opts.json) this.json({ type: 'first-hit', target: ev.target, tid: ev.tid, ms: Math.round(msSinceStart * 10) / 10 });
    else this.debug(`first hit on ${ev.target} (tid ${ev.tid}) ${msSinceStart.toFixed(1)} ms after start`);
  }

  /** `--count` results in bpftrace's map style. */
  hitCounts(counts: Record<string, number>): void {
    if (this.opts.json) {
      this.json({ type: 'maps', maps: { hits: Object.entries(counts).map(([key, value]) => ({ key, value })) } });
      return;
    }
    const rows = Object.entries(counts).sort((a, b) => a[1] - b[1]);
    for (const [name, n] of rows) this.out.write(`@hits[${name}]: ${n}\n`);
  }
}
