import { describe, expect, it } from 'vitest';
import { formatInfo } from '../src/cli/info.ts';
import { runScenario } from '../src/run.ts';
import { presetInput } from '../src/scenario/load.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();

describe("QEMU's statistics for a postcopy run", () => {
  const { report } = runScenario(presetInput('xen-2017-hybrid'));

  it('fills query-migrate ram counters from the run', () => {
    const ram = report.ram;
    expect(ram.normal).toBe(65_536);
    expect(ram['normal-bytes']).toBe(65_536 * 4096);
    expect(ram.remaining).toBe(0);
    expect(ram.total).toBe(524_288 * 4096);
    // QEMU counts bytes by state: a pure postcopy run sends everything in postcopy.
    expect(ram['postcopy-bytes']).toBe(ram.transferred);
    expect(ram['downtime-bytes']).toBe(0);
    expect(ram.mbps).toBeCloseTo((ram.transferred * 8) / (report['total-time'] / 1000) / 1e6, 1);
    expect(ram['pages-per-second']).toBe(Math.round(65_536 / (report['total-time'] / 1000)));
    expect([ram.duplicate, ram['dirty-sync-count'], ram['multifd-bytes'], ram['precopy-bytes'], report['setup-time']]).toEqual([0, 0, 0, 0, 0]);
  });

  it("prints QEMU's info migrate layout", () => {
    const lines = formatInfo(report).trimEnd().split('\n');
    expect(lines[0]).toBe('Migration status: completed');
    expect(lines).toContain(`total time: ${Math.round(report['total-time'])} ms`);
    expect(lines).toContain('total ram: 2097152 kbytes');
    expect(lines).toContain('normal: 65536 pages');
    expect(lines).toContain('normal bytes: 262144 kbytes');
    expect(lines).toContain('page size: 4 kbytes');
    expect(lines).toContain(`throughput: ${report.ram.mbps.toFixed(2)} mbps`);
    expect(lines).toContain(`postcopy request count: ${report.ram['postcopy-requests']}`);
    expect(lines).toHaveLength(21);
    expect(lines.some((l) => l.startsWith('vfio'))).toBe(false);
  });

  it('ends with the VFIO devices\' bytes when devices migrated, as hmp_info_migrate does', () => {
    const { report: r } = runScenario(presetInput('vfio-000-2vf-warm'));
    const lines = formatInfo(r).trimEnd().split('\n');
    // Two VFs, each: its 64 KiB context read twice in 1.5 s of precopy (one read a second), and once at the stop.
    expect(lines.at(-1)).toBe(`vfio device transferred: ${r.vfio!.transferred >> 10} kbytes`);
    expect(r.vfio!.transferred).toBe(393_216);
  });

  it('run --format info prints it; a bad --format exits 2', async () => {
    const ok = await cli('run', '--preset', 'xen-2017-hybrid', '--set', 'memory.pages=4096', '--set', 'memory.outstanding={kind: all}',
      '--set', 'workload.region={start: 0, count: 1024}', '--format', 'info');
    expect(ok.code).toBe(0);
    expect(ok.out.split('\n')[0]).toBe('Migration status: completed');
    expect(ok.out).toContain('total ram: 16384 kbytes');
    const bad = await cli('run', '--preset', 'xen-2017-hybrid', '--format', 'xml');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('postcopy-emu: --format: must be table or info, got "xml"\n');
  });
});
