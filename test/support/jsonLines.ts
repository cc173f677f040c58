/** The JSON objects a `--json` run printed on stdout, in order. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

type MapRows = { key?: unknown; value: unknown }[];

/** The last `maps` line's maps (the final dump). */
export function finalMaps(stdout: string): Record<string, MapRows> {
  const maps = jsonLines(stdout).filter((l) => l.type === 'maps');
  if (!maps.length) throw new Error(`no maps line in:\n${stdout}`);
  return maps[maps.length - 1].maps as Record<string, MapRows>;
}

/** Value of key `k` in a decoded map dump (arrays and hashes alike). */
export function mapValue(rows: MapRows | undefined, key: unknown): unknown {
  return rows?.find((r) => JSON.stringify(r.key) === JSON.stringify(key))?.value;
}
