// Where Frida's agent's code lies in this process, for the handlers' "the agent's heap"
// test (rewriteHandlers.c, agent_heap_syscall): every executable mapping of a frida-agent
// library (one per Frida that injected this process), merged per library. Frida cloaks
// these from Process.enumerateRanges; /proc/self/maps still lists them. No Frida API here,
// so the parsing is unit-tested on real maps lines.

/** How many [lo, hi) ranges the handlers read; more agents than this are not told apart. */
export const AGENT_TEXT_RANGES = 4;

/** [lo, hi) of each frida-agent library's executable mappings, in maps order. */
export function agentTextRanges(maps: string): [bigint, bigint][] {
  const byFile = new Map<string, [bigint, bigint]>();
  for (const line of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) ..x. \S+ \S+ (\S+)\s+(\S*frida-agent\S*)/.exec(line);
    if (!m) continue;
    const lo = BigInt(`0x${m[1]}`);
    const hi = BigInt(`0x${m[2]}`);
    const key = `${m[3]} ${m[4]}`; // inode and name: two agents' memfds share the name
    const r = byFile.get(key);
    if (r === undefined) byFile.set(key, [lo, hi]);
    else byFile.set(key, [lo < r[0] ? lo : r[0], hi > r[1] ? hi : r[1]]);
  }
  return [...byFile.values()];
}
