// log2 histograms drawn the way bpftrace's hist() draws them: one row per bucket from the
// first to the last non-empty one, a 52-column bar scaled to the largest bucket.

const BAR_WIDTH = 52;

/** Power-of-two bound with bpftrace's binary suffixes: 1024 → "1K", 2^20 → "1M". */
export function log2Label(power: number): string {
  const suffixes = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  const unit = Math.min(Math.floor(power / 10), suffixes.length - 1);
  return `${(2n ** BigInt(power - unit * 10)).toString()}${suffixes[unit]}`;
}

/**
 * Range of bucket `i` as libbpf-tools' log2l() fills them: bucket 0 holds 0 and 1 (log2 of
 * both is 0), bucket i ≥ 1 holds [2^i, 2^(i+1)).
 */
export function bucketLabel(i: number): string {
  return i === 0 ? '[0, 2)' : `[${log2Label(i)}, ${log2Label(i + 1)})`;
}

/** Rows for buckets index → count; counts are bigint so u64 counters stay exact. */
export function histRows(buckets: Map<number, bigint>): string[] {
  const used = [...buckets.entries()].filter(([, v]) => v !== 0n).map(([k]) => k);
  if (used.length === 0) return [];
  const first = Math.min(...used);
  const last = Math.max(...used);
  let max = 0n;
  for (const v of buckets.values()) if (v > max) max = v;
  const rows: string[] = [];
  for (let i = first; i <= last; i++) {
    const v = buckets.get(i) ?? 0n;
    const bar = '@'.repeat(Number((v * BigInt(BAR_WIDTH)) / max));
    rows.push(`${bucketLabel(i).padEnd(16)}${v.toString().padStart(8)} |${bar.padEnd(BAR_WIDTH)}|`);
  }
  return rows;
}
