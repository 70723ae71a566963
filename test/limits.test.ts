import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.ts';

/** Hostile and clumsy inputs: each ends in one line and exit 2, within its bound, leaving nothing. */
const cli = cliHarness();
const dir = mkdtempSync(join(tmpdir(), 'pce-limits-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** Exit 2 with exactly one stderr line, nothing on stdout. */
async function refused(...args: string[]): Promise<string> {
  const r = await cli(...args);
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.err.split('\n')).toHaveLength(2);
  return r.err.trim();
}

describe('input sizes', () => {
  it('refuses /dev/zero as a scenario, a sweep file and a trace to import, after reading its bound', async () => {
    expect(await refused('run', '/dev/zero')).toBe('postcopy-emu: file: /dev/zero: a scenario file is at most 4 MiB');
    expect(await refused('sweep', '/dev/zero', '-o', join(dir, 's'))).toBe('postcopy-emu: file: cannot read sweep /dev/zero: /dev/zero: a sweep file is at most 4 MiB');
    expect(await refused('trace', 'import', '/dev/zero', '-o', join(dir, 'z.pctrace'), '-f', 'csv'))
      .toBe('postcopy-emu: /dev/zero: line 1 is longer than 65536 characters: not a text file of lines');
  });

  it('refuses /dev/zero as a workload trace', async () => {
    expect(await refused('run', '--set', 'workload={kind: trace, vcpus: 1, trace: /dev/zero}'))
      .toBe('postcopy-emu: workload.trace: /dev/zero: a .pctrace file is at most 256 MiB');
  });

  it('refuses a scenario file over 4 MiB, and a directory', async () => {
    const big = file('big.yaml', `name: big\ndescription: ${'x'.repeat(4 * 2 ** 20)}\n`);
    expect(await refused('run', big)).toBe(`postcopy-emu: file: ${big}: a scenario file is at most 4 MiB`);
    expect(await refused('run', dir)).toBe(`postcopy-emu: file: ${dir} is a directory`);
  });

  it('refuses more than 65,536 zero ranges', async () => {
    const ranges = Array.from({ length: 65_537 }, (_, i) => ({ start: 2 * i, count: 1 }));
    const p = file('ranges.json', JSON.stringify({ memory: { pages: 262_144, zeroRanges: ranges } }));
    expect(await refused('run', p)).toBe('postcopy-emu: memory.zeroRanges: at most 65536 entries (merge adjacent ranges)');
  });
});

describe('values that pass a type check but break a run', () => {
  it('names the physical bound with its reason', async () => {
    expect(await refused('run', '--set', 'link.rateMbps=1e-300'))
      .toBe('postcopy-emu: link.rateMbps: at least 0.001 Mbit/s (1 kbit/s): slower, one 4 KiB page takes over 30 s');
    expect(await refused('run', '--set', 'memory.pageSize=3000'))
      .toBe('postcopy-emu: memory.pageSize: must be a power of two (a page is 2^k bytes), e.g. 4096');
    expect(await refused('run', '--set', 'memory.pages=1e308')).toBe('postcopy-emu: memory.pages: Too big: expected number to be <=1073741824');
    expect(await refused('run', '--set', 'memory.pages=1073741824', '--set', 'memory.pageSize=2097152')).toMatch(
      /^postcopy-emu: memory\.pages: memory\.pages × memory\.pageSize is at most 2\^50 bytes \(1 PiB\), got 1073741824 × 2097152/);
  });

  it('trace import: --ips and --page-size within physics, a garbage first CSV line is an error', async () => {
    const csv = file('t.csv', 'garbage header here\n0,1,r\n');
    const out = join(dir, 't.pctrace');
    expect(await refused('trace', 'import', csv, '-o', out, '-f', 'lackey', '--ips', '1e-300'))
      .toBe('postcopy-emu: --ips: must be a number of instructions per second in 1e3..1e12, got "1e-300"');
    expect(await refused('trace', 'import', csv, '-o', out, '-f', 'csv', '--page-size', '3000'))
      .toBe('postcopy-emu: --page-size: must be a power of two (a page is 2^k bytes), got 3000');
    expect(await refused('trace', 'import', csv, '-o', out, '-f', 'csv'))
      .toBe(`postcopy-emu: ${csv}: line 1: expected 3 fields time_ns,gfn,op, got 1: "garbage header here"`);
    const ok = file('ok.csv', 'TIME_NS, gfn, op\n0,1,r\n');
    expect((await cli('trace', 'import', ok, '-o', out, '-f', 'csv')).code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.includes('.pctrace.'))).toEqual([]);
  });
});

describe('bounds that always fire', () => {
  it('soak refuses seeds past 2^53 − 1', async () => {
    expect(await refused('soak', '--from', '9007199254740990', '--seeds', '5'))
      .toBe('postcopy-emu: --seeds: --from 9007199254740990 + --seeds 5 passes 2^53 − 1, the last seed a double holds exactly');
  });

  it('caps --jobs at the CPUs this process may use, with a warning', async () => {
    const { hostCpus } = await import('../src/io/host.ts');
    const { workerCount } = await import('../src/workers/jobs.ts');
    const warnings: string[] = [];
    expect(workerCount(1000, 2 ** 20, (w) => warnings.push(w))).toBe(hostCpus());
    expect(warnings).toEqual([`--jobs 1000 capped at ${hostCpus()}: this process may use ${hostCpus()} CPUs`]);
    expect(workerCount(undefined, 2 ** 20, (w) => warnings.push(w))).toBe(hostCpus());
    expect(warnings).toHaveLength(1);
  });

  it('refuses a run that does not fit in the available memory, naming the estimate and the limit', async () => {
    const { availableBytes } = await import('../src/io/host.ts');
    const { workerCount } = await import('../src/workers/jobs.ts');
    expect(() => workerCount(undefined, availableBytes() * 4, () => {})).toThrow(/^one run needs about [\d.]+ GiB \(estimated from memory\.pages\); this host has [\d.]+ GiB available$/);
  });

  it('refuses a sweep of more than 10^7 runs before expanding it', async () => {
    const axes = { 'ring.capacity': Array.from({ length: 1000 }, (_, i) => i + 1), 'link.rateMbps': Array.from({ length: 1000 }, (_, i) => i + 1) };
    const p = file('huge-sweep.json', JSON.stringify({ base: { preset: 'xen-2017-hybrid' }, axes, replications: 11 }));
    expect(await refused('sweep', p, '-o', join(dir, 'huge'))).toBe('postcopy-emu: axes: 1000000 configurations × 11 replications = 11000000 runs; '
      + 'a sweep holds at most 10000000 (its records alone would fill the memory): split it into several sweep files');
  });
});

describe('runs that would never end', () => {
  const zeroCost = ['--preset', 'xen-2017-hybrid', '--set', 'mapper.retryNs=0', '--set', 'mapper.timerSlackNs=0', '--set', 'mapper.mapCallNs=0', '--set', 'mapper.perGfnNs=0'];

  it('fails a zero-progress loop (zero mapper costs) with the reason in the JSON, exit 1', async () => {
    const r = await cli('run', ...zeroCost, '--json', '-');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as { status: string; emulator: { failure: string; truncated: { by: string; reason: string } } };
    expect(report.status).toBe('failed');
    expect(report.emulator.truncated.by).toBe('limit');
    expect(report.emulator.truncated.reason).toMatch(/^no progress: 1000000 events at \d+ ns without the clock moving \(limits\.maxEventsPerInstant\)$/);
    expect(report.emulator.failure).toBe(report.emulator.truncated.reason);
    expect(r.err).toBe(`postcopy-emu: run stopped: ${report.emulator.truncated.reason}\n`);
  });

  it('fails a run past limits.maxEvents', async () => {
    const r = await cli('run', '--preset', 'xen-2017-hybrid', '--set', 'limits.maxEvents=1000');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^status\s+failed$/m);
    expect(r.err).toMatch(/^postcopy-emu: run stopped: event cap: 1000 events processed by \d+ ns \(limits\.maxEvents\)\n$/);
  });

  it('a sweep holding such a run finishes the others, records the reason and exits 1', async () => {
    const p = file('zero-sweep.yaml', [
      'base: { preset: xen-2017-hybrid, set: { memory.pages: 4096, memory.outstanding: { kind: all }, workload.region: { start: 0, count: 1024 }, mapper.timerSlackNs: 0, mapper.mapCallNs: 0, mapper.perGfnNs: 0 } }',
      'axes: { mapper.retryNs: [100000, 0] }',
    ].join('\n'));
    const out = join(dir, 'zero-out');
    const r = await cli('sweep', p, '-o', out, '-j', '1');
    expect(r.code).toBe(1);
    expect(r.out.split('\n')[0]).toBe(`2 runs (2 configurations × 1 replications) in ${out}: 1 ok, 1 failed (0 resumed from runs.jsonl, 2 run now)`);
    expect(r.out.split('\n')[1]).toMatch(/^ {2}run 1 \{"mapper\.retryNs":0\}: no progress: 1000000 events at \d+ ns/);
  });

  it('bounds the work drawn item by item inside one event: precopy\'s guest touches, a device\'s DMA writes', async () => {
    const capped = async (preset: string, ...set: string[]) => {
      const r = await cli('run', '--preset', preset, ...set.flatMap((x) => ['--set', x]), '--set', 'limits.maxEvents=100000', '--json', '-');
      expect(r.code).toBe(1);
      const report = JSON.parse(r.out) as { status: string; emulator: { truncated: { by: string; reason: string } } };
      expect([report.status, report.emulator.truncated.by]).toEqual(['failed', 'limit']);
      return report.emulator.truncated.reason;
    };
    const why = ' (limits.maxEvents × 4: the guest\'s touches precopy applies at its dirty syncs, devices\' DMA writes)';
    // 1 ns think times over the precopy passes looped for hours in one event.
    expect(await capped('xen-2017-pure', 'migration.mode=precopy', 'workload.thinkNs=0')).toBe(`work cap: 400000 items drawn one by one inside events, the last by the guest's touches in precopy${why}`);
    // 1 TB/s of random DMA writes into a one-page buffer, drawn at each of thousands of passes.
    expect(await capped('vfio-003-unmap', 'devices.0.dma.bytesPerSec=1e12', 'devices.0.dma.pattern=random', 'devices.0.dma.buffers=[{start: 0, count: 1}]'))
      .toBe(`work cap: 400000 items drawn one by one inside events, the last by a device's DMA writes${why}`);
  });

  it('takes a time past 2^53 ns (a share near zero) as never: a warning, and the horizon ends the run', async () => {
    const r = await cli('run', '--preset', 'qemu-preempt', '--set', 'memory.pages=4096', '--set', 'workload.region={start: 0, count: 1024}', '--set', 'preempt.share=1e-300', '--set', 'limits.horizonNs=10000000000');
    expect(r.code).toBe(0);
    expect(r.err.split('\n')).toEqual([
      'postcopy-emu: warning: times past 2^53 ns (104 days) never come: 2 events (a rate or share near zero, or a size near its bound, e.g. preempt.share, devices[].readBytesPerSec)',
      'postcopy-emu: warning: the horizon (limits.horizonNs = 10 s) ended the run before it completed: its times are lower bounds',
      '',
    ]);
  });

  it('refuses device data that one event would loop over for hours: stop-copy reads, DMA writes within an unmap delay', async () => {
    expect(await refused('run', '--preset', 'vfio-003-iommu', '--set', 'devices.0.stopCopyBytes=1125899906842624')).toBe('postcopy-emu: devices.0.stopCopyBytes: the stop-copy data of the devices up to this one takes 1073741824 reads of readChunkBytes; '
      + 'at most 4194304 in all (each read is an event): raise readChunkBytes or lower stopCopyBytes');
    expect(await refused('run', '--preset', 'vfio-003-unmap', '--set', 'devices.0.dma.unmapDelayNs=1000000000000', '--set', 'devices.0.dma.bytesPerSec=1000000000000')).toBe('postcopy-emu: devices.0.dma.unmapDelayNs: 244140625000 page writes '
      + 'wait within one unmap delay (bytesPerSec × unmapDelayNs / memory.pageSize); at most 16777216: lower one of them');
  });

  it('marks a run the horizon cut short: warning, JSON, lower bounds in the table', async () => {
    const r = await cli('run', '--preset', 'xen-2017-pure', '--set', 'limits.horizonNs=1000000000');
    expect(r.code).toBe(0);
    expect(r.err).toBe('postcopy-emu: warning: the horizon (limits.horizonNs = 1 s) ended the run before it completed: its times are lower bounds\n');
    expect(r.out).toMatch(/^status\s+postcopy-active \(horizon\)$/m);
    expect(r.out).toMatch(/^downtime \(ms\)\s+≥ 1000\.000$/m);
    const j = await cli('run', '--preset', 'xen-2017-pure', '--set', 'limits.horizonNs=1000000000', '--json', '-');
    expect(JSON.parse(j.out).emulator.truncated).toEqual({ by: 'horizon', reason: 'the horizon (limits.horizonNs = 1 s) ended the run before it completed' });
  });
});

describe('memory', () => {
  it('refuses a guest whose run would not fit in the available memory, before allocating', async () => {
    const { availableBytes } = await import('../src/io/host.ts');
    const { checkRunFits, estimateRunBytes } = await import('../src/scenario/estimate.ts');
    const { parseScenario } = await import('../src/scenario/validate.ts');
    const s = parseScenario({ memory: { pages: 2 ** 30, pageSize: 512 } });
    expect(estimateRunBytes(s)).toBe(64 * 2 ** 20 + 2 ** 30 * 24);
    if (estimateRunBytes(s) > availableBytes()) {
      expect(() => checkRunFits(s)).toThrow(/^memory\.pages: a run of 1073741824 pages needs about 24\.1 GiB \(64 MiB \+ 24 B a page\); this host has [\d.]+ GiB available$/);
    } else {
      expect(() => checkRunFits(s)).not.toThrow();
    }
  });
});

describe('CPUs', () => {
  it('takes the CPUs from Slurm\'s allocation, else the affinity mask, never the node', async () => {
    const { availableParallelism } = await import('node:os');
    const { hostCpus } = await import('../src/io/host.ts');
    expect(hostCpus({ SLURM_CPUS_PER_TASK: '3' })).toBe(3);
    expect(hostCpus({ SLURM_CPUS_PER_TASK: 'x' })).toBe(availableParallelism());
    expect(hostCpus({})).toBe(availableParallelism());
  });
});

describe('large sweeps', () => {
  it('warns before expanding more than 10^5 configurations', async () => {
    const { expandSweep } = await import('../src/sweep/spec.ts');
    const warnings: string[] = [];
    const axes = { 'ring.capacity': Array.from({ length: 400 }, (_, i) => i + 1), 'link.rateMbps': Array.from({ length: 251 }, (_, i) => i + 1) };
    // The base is invalid on purpose: the warning comes first, then the base is refused.
    expect(() => expandSweep({ base: { preset: 'xen-2017-hybrid', set: { 'ring.capacity': 0 } }, axes }, dir, (w) => warnings.push(w))).toThrow(/ring\.capacity/);
    expect(warnings).toEqual(['100400 configurations × 1 replications: a long sweep with a large output; --shard splits it']);
  });
});
