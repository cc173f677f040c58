// What a run prints at its end: hit counts of --count functions, the final maps, per-program
// stats. The numbers come from three places, best last: the agent's periodic snapshots while
// it runs, dumps asked for just before a detach (a fallback for an agent that hangs or dies
// in it), and the agent's own snapshot taken once no hook could run any more (exact).

import type { AgentEvent, AgentStats, FinalSnapshot, MapDump } from '../../protocol/messages';
import type { EventPrinter } from '../output/EventPrinter';
import type { Reporter } from '../output/Reporter';

function statsOf(s: FinalSnapshot): AgentStats {
  return { programs: s.stats, droppedRecords: s.droppedRecords, pending: s.pending, records: s.records };
}

export class RunResults {
  counts: Record<string, number> = {};
  maps: MapDump[] | null = null;
  stats: AgentStats | null = null;
  private printed = false;

  constructor(
    /** Whether --count functions were hooked: only then are hit counts printed. */
    private readonly counting: boolean,
    private readonly reporter: Reporter,
    private readonly printer: EventPrinter,
  ) {}

  /** A snapshot the agent sent while running. */
  snapshot(ev: Extract<AgentEvent, { type: 'snapshot' }>): void {
    this.counts = ev.hitCounts;
    this.maps = ev.maps;
    this.stats = statsOf(ev);
  }

  /**
   * The agent's snapshot from the detach replaces whatever came before. Its maps and stats are
   * taken only when objects were loaded (`withObjects`): with --count alone there are none to show.
   */
  final(last: FinalSnapshot, withObjects: boolean): void {
    this.counts = last.hitCounts;
    if (withObjects) {
      this.maps = last.maps;
      this.stats = statsOf(last);
    }
  }

  /** Prints the results once; later calls do nothing (several exit paths end in a print). */
  print(delivered: ReadonlyMap<string, number>): void {
    if (this.printed) return;
    this.printed = true;
    if (this.counting) this.reporter.hitCounts(this.counts);
    if (this.maps) this.printer.maps(this.maps);
    if (this.stats) {
      const records = this.stats.records.map((r) => ({ ...r, delivered: delivered.get(`${r.object}:${r.map}`) ?? 0 }));
      this.printer.stats(this.stats.programs, this.stats.droppedRecords, records);
      for (const p of this.stats.pending) this.reporter.warn(`${p}: never attached: its library was not loaded while we were attached`);
    }
  }
}
