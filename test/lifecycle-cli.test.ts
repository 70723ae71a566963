import { describe, expect, it } from 'vitest';
import { formatInfo } from '../src/cli/info.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();

/** 64 MiB at 1 Gbit/s; fio rewrites 16 MiB at 250 MB/s, faster than the 30 ms limit allows. */
const base: ScenarioInput = {
  memory: { pages: 16_384 },
  link: { rateMbps: 1000 },
  source: { policy: 'qemu' },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'idle' },
  migration: { mode: 'precopy' },
  precopy: { downtimeLimitMs: 30, dirtying: { kind: 'fio', region: { start: 0, count: 4096 }, bytesPerSec: 250e6 } },
};
const sets = ['--set', 'memory.pages=16384', '--set', 'link.rateMbps=1000', '--set', 'source.policy=qemu', '--set', 'mapper.mapping={kind: none}',
  '--set', 'workload.kind=idle', '--set', 'migration.mode=precopy', '--set', 'precopy.downtimeLimitMs=30',
  '--set', 'precopy.dirtying={kind: fio, region: {start: 0, count: 4096}, bytesPerSec: 250000000}'];

describe("QEMU's info migrate for a migration that is still running", () => {
  it('shows the expected downtime and the dirty rate, not a downtime', () => {
    const lines = formatInfo(buildReport(new Emulator({ ...base, limits: { horizonNs: 1.5e9 } }).run())).trimEnd().split('\n');
    expect(lines.slice(0, 4)).toEqual(['Migration status: active', 'total time: 1500 ms', 'expected downtime: 143 ms', 'setup: 2 ms']);
    expect(lines.some((l) => l.startsWith('downtime:'))).toBe(false);
    // The seed's order: pages-per-second, then the dirty rate, then precopy ram.
    const at = lines.indexOf('dirty pages rate: 18406 pages');
    expect(lines[at - 1]).toBe('pages-per-second: 28670');
    expect(lines[at + 1]).toBe('precopy ram: 176215 kbytes');
    expect(lines).toContain('remaining ram: 10496 kbytes');
    expect(lines.some((l) => l.startsWith('cpu throttle percentage'))).toBe(false);
  });

  it('auto-converge: throttled to 60 % it completes, and the throttle is shown', () => {
    const lines = formatInfo(buildReport(new Emulator({ ...base, precopy: { ...base.precopy, autoConverge: true } }).run())).split('\n');
    expect(lines[0]).toBe('Migration status: completed');
    expect(lines).toContain('cpu throttle percentage: 60');
    expect(lines).toContain('dirty sync count: 120');
  });
});

describe('run with a precopy phase', () => {
  it('the summary table adds the precopy rows', async () => {
    const r = await cli('run', ...sets, '--set', 'limits.horizonNs=300000000');
    expect(r.code).toBe(0);
    const row = (label: string) => r.out.split('\n').find((l) => l.startsWith(label))?.split(/\s{2,}/)[1];
    // Cut by the horizon: said in the status, and the times are lower bounds.
    expect(row('status')).toBe('active (horizon)');
    expect(row('downtime (ms)')).toBe('≥ 0.000');
    expect(row('total-time (ms)')).toBe('≥ 300.000');
    expect(r.err).toContain('postcopy-emu: warning: the horizon (limits.horizonNs = 0.3 s) ended the run before it completed: its times are lower bounds');
    expect(row('precopy end')).toBe('horizon');
    // Setup's sync only: the first pass of 64 MiB takes ~570 ms.
    expect(row('dirty-sync-count')).toBe('1');
    const plain = await cli('run', '--set', 'memory.pages=1024');
    expect(plain.out).not.toContain('precopy duration');
  });

  it('--timeline polls the counters every MS ms of precopy (guestperf: 50)', async () => {
    const r = await cli('run', ...sets, '--set', 'limits.horizonNs=300000000', '--timeline', '--json', '-');
    const samples = JSON.parse(r.out).emulator.samples as { 't-ms': number; status: string; transferred: number }[];
    expect(samples.map((s) => s['t-ms'])).toEqual([0, 50, 100, 150, 200, 250, 300]);
    expect(samples.map((s) => s.status)).toEqual(['setup', 'active', 'active', 'active', 'active', 'active', 'active']);
    // About 117.7 MB/s of payload once it runs.
    expect(samples[6]!.transferred - samples[2]!.transferred).toBeGreaterThan(22e6);
    expect(samples[6]!.transferred - samples[2]!.transferred).toBeLessThan(25e6);
    const every = JSON.parse((await cli('run', ...sets, '--set', 'limits.horizonNs=300000000', '--timeline', '100', '--json', '-')).out);
    expect(every.emulator.samples.map((s: { 't-ms': number }) => s['t-ms'])).toEqual([0, 100, 200, 300]);
    const bad = await cli('run', ...sets, '--timeline', '0');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('postcopy-emu: --timeline: must be a whole number of ms ≥ 1, got "0"\n');
  });

  it('bad lifecycle fields get one line naming the field', async () => {
    const cases: [string[], string][] = [
      [['--set', 'migration.switchAfterIterations=2'], 'migration.switchAfterIterations: only applies with migration.mode hybrid (it is postcopy)'],
      [['--set', 'migration.mode=precopy', '--set', 'precopy.policy=xen', '--set', 'multifd.channels=2'], "multifd.channels: multifd is QEMU's: it needs precopy.policy qemu"],
      [['--set', 'memory.pages=1024', '--set', 'precopy.dirtying={kind: stress, workers: 4, bytesPerWorker: 4194304}'],
        'precopy.dirtying.bytesPerWorker: 4 workers × 4194304 bytes from page 0 end at page 4096, past memory.pages (1024)'],
      [['--set', 'precopy.downtimeLimitMs=0'], 'precopy.downtimeLimitMs: Too small: expected number to be >=1'],
    ];
    for (const [args, message] of cases) {
      const r = await cli('run', ...args);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`postcopy-emu: ${message}\n`);
    }
  });
});

describe('hybrid: the postcopy core after precopy', () => {
  it('the polls go on through postcopy until the migration completes', () => {
    const r = buildReport(new Emulator({
      ...base,
      workload: { kind: 'random', vcpus: 1, region: { start: 0, count: 4096 } },
      migration: { mode: 'hybrid', switchAfterIterations: 1 },
      timeline: { pollMs: 100 },
    }).run());
    const samples = r.emulator.samples!;
    const handover = r.emulator.precopy!['handover-at-ms']!;
    expect(samples.map((x) => x.status)).toEqual(['setup', 'active', 'active', 'active', 'active', 'active',
      'postcopy-active', 'postcopy-active', 'postcopy-active', 'completed']);
    // Precopy's last poll at the switch, the core's first at its start, then every 100 ms, then the end.
    expect(samples.map((x) => x['t-ms']).slice(5)).toEqual([500, r.emulator.precopy!['paused-at-ms'], handover, handover + 100, r['total-time']]);
    expect(samples.at(-1)!.remaining).toBe(0);
    expect(samples.at(-1)!.transferred).toBe(r.ram.transferred);
    expect(samples.at(-1)!['postcopy-requests']).toBe(r.ram['postcopy-requests']);
    for (let i = 1; i < samples.length; i++) expect(samples[i]!.transferred).toBeGreaterThanOrEqual(samples[i - 1]!.transferred);
  });

  it('fault times count from the start of postcopy', () => {
    const emu = new Emulator({
      ...base,
      migration: { mode: 'hybrid', switchAfterIterations: 2 },
      faults: [{ kind: 'link-cut', at: 1_000_000, durationNs: 5_000_000 }],
    }).run();
    const r = buildReport(emu);
    const handover = r.emulator.precopy!['handover-at-ms']!;
    const paused = r.emulator['status-history'].find((h) => h.status === 'postcopy-paused')!;
    expect(paused['at-ms']).toBeCloseTo(handover + 1, 6);
    expect(r.status).toBe('completed');
    expect(r.emulator.recovery.pauses).toBe(1);
  });
});

describe('zero-page-detection multifd without channels', () => {
  it('is checked in the migration thread, as legacy, in precopy and in postcopy', () => {
    for (const mode of ['precopy', 'postcopy'] as const) {
      const report = (zeroPageDetection: 'legacy' | 'multifd') => {
        // About half the pages are zero; in precopy fio's 4096 pages hold data from the start.
        const r = buildReport(new Emulator({ ...base, memory: { pages: 8192, zeroFraction: 0.5 }, migration: { mode }, source: { policy: 'qemu', zeroPageDetection } }).run());
        return { ...r, emulator: { ...r.emulator, events: 0 } };
      };
      const legacy = report('legacy');
      const expected = mode === 'precopy' ? 2048 : 4096;
      expect(Math.abs(legacy.ram.duplicate - expected)).toBeLessThan(150);
      expect(report('multifd')).toEqual(legacy);
    }
  });
});

describe("README's precopy library example", () => {
  it('prints what the README says', async () => {
    const { Emulator } = await import('../src/index.ts');
    const emu = new Emulator({
      memory: { pages: 16_384 },
      migration: { mode: 'precopy' },
      precopy: { downtimeLimitMs: 30, autoConverge: true, dirtying: { kind: 'fio', region: { start: 0, count: 4096 }, bytesPerSec: 250e6 } },
    });
    emu.runUntil(2e9);
    const pre = emu.precopy!, c = pre.convergence;
    expect([emu.status, pre.syncs, Math.round(c.threshold), c.throttlePct]).toEqual(['active', 14, 3529867, 0]);
    expect(emu.switchedOver).toBe(false);
    expect(() => emu.memory).toThrow(expect.objectContaining({ field: 'Emulator.core', message: expect.stringMatching(/^precopy is still running/) }));
    emu.run();
    expect([pre.end, pre.iterations, pre.pausedAt, c.throttlePct, emu.status]).toEqual(['converged', 119, 11106240336, 60, 'completed']);
  });
});
