// USDT under stress (npm run stress): many attach/detach cycles on targets that fire their
// probes from several threads in tight loops and fork children that inherit the
// breakpoints. The target must never crash, hang or leave a byte changed.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readUsdtBinary } from '../../host/usdt/stapsdt';
import { runCli, waitForOutput } from '../support/cli';
import { bpfObjectPath, repoRoot, victimPath } from '../support/paths';
import { isAlive, liveBytes } from '../support/victim';

const CYCLES = Number(process.env.STRESS_CYCLES ?? 10);
jest.setTimeout(CYCLES * 30_000 + 30_000);

function baseOf(pid: number, bin: string): bigint {
  const real = fs.realpathSync(bin);
  return BigInt('0x' + fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(real))!.split('-')[0]);
}

test(`${CYCLES} attach/detach cycles on a forking target: children inherit the int3s and exit 0`, async () => {
  const bin = victimPath('sdtfork');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usdt-stress-'));
  const manifest = path.join(dir, 'm.json');
  fs.writeFileSync(manifest, JSON.stringify({ objects: [{ path: bpfObjectPath('sdt_step'), programs: { on_step: { type: 'usdt', binary: bin, provider: 'fk', probe: 'step' } } }] }));
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  try {
    await waitForOutput(child, (t) => /ready \d+/.test(t));
    const pid = child.pid!;
    const site = readUsdtBinary(bin).sites[0];
    const base = baseOf(pid, bin);
    const original = fs.readFileSync(bin)[site.fileOffset];
    for (let c = 0; c < CYCLES; c++) {
      const r = await runCli(['attach', '--pid', String(pid), '-m', manifest, '--duration', '1']);
      expect(r.code).toBe(0);
      expect(Number(/^@steps: (\d+)$/m.exec(r.stdout)?.[1])).toBeGreaterThan(0);
      expect(isAlive(pid)).toBe(true);
      expect(liveBytes(pid, base + BigInt(site.fileOffset), 1)[0]).toBe(original);
    }
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    const [, children, failed] = /children=(\d+) failed=(\d+)/.exec(out)!.map(Number);
    expect(children).toBeGreaterThan(CYCLES * 5);
    expect(failed).toBe(0);
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(`${CYCLES} detaches (--duration) from 3 threads hammering adjacent USDT sites`, async () => {
  const bin = path.join(repoRoot, 'examples', 'build', 'sdt_app');
  const child = spawn(bin, ['0', '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await waitForOutput(child, (t) => /ready \d+/.test(t));
    const pid = child.pid!;
    const sites = readUsdtBinary(bin).sites;
    const base = baseOf(pid, bin);
    const file = fs.readFileSync(bin);
    for (let c = 0; c < CYCLES; c++) {
      const r = await runCli(['attach', '--pid', String(pid), '-m', path.join(repoRoot, 'examples', 'usdtreq.manifest.json'), '--duration', '0.5']);
      expect(r.code).toBe(0);
      expect(isAlive(pid)).toBe(true);
      for (const s of sites) expect(liveBytes(pid, base + BigInt(s.fileOffset), 1)[0]).toBe(file[s.fileOffset]);
    }
  } finally {
    child.kill('SIGKILL');
  }
});
