// The rewrite handlers' picture of where Frida's agent's code lies (agentText.ts), from
// /proc/self/maps lines as Linux prints them for a memfd-loaded agent.
import { agentTextRanges } from '../../agent/attach/syscall/rewrite/agentText';

const MAPS = [
  '7f395db8e000-7f395dd54000 r--p 00000000 00:01 3743                       /memfd:frida-agent-64.so (deleted)',
  '7f395dd54000-7f395f2d3000 r-xp 001c6000 00:01 3743                       /memfd:frida-agent-64.so (deleted)',
  '7f395f2d3000-7f395f2d4000 r-xp 01745000 00:01 3743                       /memfd:frida-agent-64.so (deleted)',
  '7f395f2de000-7f395fd75000 r--p 01750000 00:01 3743                       /memfd:frida-agent-64.so (deleted)',
  '7f3965306000-7f39653f2000 r-xp 00090000 08:01 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6',
  '7f3970000000-7f3970100000 r-xp 001c6000 00:01 9999                       /memfd:frida-agent-64.so (deleted)',
  '7f39654c4000-7f39654d4000 rwxp 00000000 00:00 0 ',
].join('\n');

test('each agent library: its executable mappings merged; other libraries and anonymous code left out', () => {
  expect(agentTextRanges(MAPS)).toEqual([
    [0x7f395dd54000n, 0x7f395f2d4000n],
    [0x7f3970000000n, 0x7f3970100000n],
  ]);
});

test('no agent mapped: no ranges', () => {
  expect(agentTextRanges('7f3965306000-7f39653f2000 r-xp 00090000 08:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6\n')).toEqual([]);
});
