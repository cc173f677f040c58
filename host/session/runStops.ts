// What ends a run besides the target itself: SIGINT/SIGTERM, our stdout going away, and
// --duration. The first reason wins; runSession.ts waits on `stopped` while the target runs.

import type { Reporter } from '../output/Reporter';

export type StopReason = { kind: 'signal'; signal: string } | { kind: 'duration' } | { kind: 'ended' };

export class RunStops {
  readonly stopped: Promise<StopReason>;
  private resolve!: (why: StopReason) => void;
  private signal: string | null = null;
  private stdoutGone = false;

  /** Starts listening at once: a Ctrl-C while the backend starts must already count. */
  constructor(private readonly reporter: Reporter) {
    this.stopped = new Promise<StopReason>((resolve) => (this.resolve = resolve));
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.stdout.on('error', this.onStdoutError);
  }

  /** The first SIGINT/SIGTERM received, if any (a closed stdout is not one of them). */
  get signalled(): string | null {
    return this.signal;
  }

  /** Whether our stdout's reader went away (EPIPE). */
  get stdoutClosed(): boolean {
    return this.stdoutGone;
  }

  stop(why: StopReason): void {
    this.resolve(why);
  }

  /**
   * Stops listening for signals. The stdout listener stays: writes still queued in the
   * closed stream fail after the run has returned, and must not become uncaught errors.
   */
  release(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.signal ??= signal;
    this.reporter.status(`${signal}: detaching`);
    this.stop({ kind: 'signal', signal });
  };

  // `… | head -1`: the reader went away. Stop printing, detach, and end the way a Unix tool
  // killed by SIGPIPE does (status 141, nothing more said). Node ignores SIGPIPE and reports
  // EPIPE on the stream instead; every later write fails too and is dropped here.
  private readonly onStdoutError = (err: NodeJS.ErrnoException): void => {
    if (this.stdoutGone || err.code !== 'EPIPE') return;
    this.stdoutGone = true;
    this.stop({ kind: 'signal', signal: 'SIGPIPE' });
  };
}
