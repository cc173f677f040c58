import { Command } from 'commander';
import { registerInspectCommand } from '../../host/cli/inspectCommand';
import { bpfObjectPath } from '../support/paths';

async function run(args: string[]): Promise<{ out: string; err: string; code: number | undefined }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    const program = new Command().exitOverride();
    registerInspectCommand(program);
    await program.parseAsync(['node', 'bpftime-ts', 'inspect', ...args]);
    return { out, err, code: process.exitCode as number | undefined };
  } finally {
    process.exitCode = saved;
    o.mockRestore();
    e.mockRestore();
  }
}

describe('inspect command', () => {
  test('human-readable listing', async () => {
    const r = await run([bpfObjectPath('loader_maps_globals')]);
    expect(r.code).toBeUndefined();
    expect(r.err).toBe('');
    expect(r.out).toMatch(/license "Dual BSD\/GPL"/);
    expect(r.out).toMatch(/on_target\s+uprobe\/\.\/victim:target_func\s+uprobe entry \.\/victim:target_func\s+68\s+map_lookup_elem,map_update_elem,trace_printk,get_current_pid_tgid/);
    expect(r.out).toMatch(/on_go\s+.*uprobe entry victim:runtime\.casgstatus\+0x10/);
    expect(r.out).toMatch(/counts\s+hash\s+4\s+8\s+1024\s+0x0\s+btf/);
    expect(r.out).toMatch(/\.rodata\s+array\s+4\s+\d+\s+1\s+0x0\s+rodata \(ro\)/);
    expect(r.out).toMatch(/note: on_bare: bare uprobe section/);
  });

  test('unsupported programs are listed', async () => {
    const r = await run([bpfObjectPath('loader_override')]);
    expect(r.out).toMatch(/force_ok\s+uprobe\/\.\/victim:check\s+uprobe override \.\/victim:check/);
    expect(r.out).toMatch(/unsupported \(4\):/);
    expect(r.out).toMatch(/xdp_pass \(xdp\): XDP programs/);
  });

  test('--json', async () => {
    const r = await run([bpfObjectPath('loader_tracepoint'), '--json']);
    const j = JSON.parse(r.out);
    expect(j.programs[0]).toMatchObject({
      name: 'tp_openat',
      section: 'tracepoint/syscalls/sys_enter_openat',
      attach: { kind: 'syscall', phase: 'enter', syscall: 'openat' },
      insnCount: 16,
      helpers: [{ id: 25, name: 'perf_event_output' }],
      maps: [0],
    });
    expect(j.maps[0]).toMatchObject({ name: 'out', type: 'perf_event_array', keySize: 4, valueSize: 4 });
    expect(j.unsupported).toEqual([]);
  });

  test('everything a run would refuse is listed at once', async () => {
    const r = await run([bpfObjectPath('loader_badmap')]);
    expect(r.code).toBeUndefined();
    expect(r.out).toMatch(/my_socks\s+sockmap \(unsupported\)/);
    expect(r.out).toMatch(/a run refuses \(6\):/);
    expect(r.out).toContain('  program "wants_kfunc": kfunc bpf_cast_to_kern_ctx() is a kernel function');
    const j = JSON.parse((await run([bpfObjectPath('loader_badmap'), '--json'])).out);
    expect(j.refusals).toHaveLength(6);
    expect(j.refusals[0]).toEqual({ kind: 'map', name: 'my_socks', reason: 'map type 15 (sockmap) is not supported: sockets are kernel objects' });
  });

  test('an override an attach type would ignore is a warning', async () => {
    const r = await run([bpfObjectPath('cli_override_bare')]);
    expect(r.out).toMatch(/warning: program "\w+" calls bpf_override_return: attach it with type "uprobe_override"/);
  });

  test('errors: one line on stderr, the load-failure exit code (3)', async () => {
    const m = await run(['/nonexistent.bpf.o']);
    expect(m.code).toBe(3);
    expect(m.err).toBe('bpftime-ts: error: /nonexistent.bpf.o: cannot read file (ENOENT)\n');
  });
});
