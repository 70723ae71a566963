import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOOPBACK, modelOfReal } from '../src/reproduce/real.ts';
import { runScenario } from '../src/run.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { scenarioOf } from '../src/sweep/spec.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();

/** 4 MiB guest, a random writer, postcopy from the start: a few ms a run. */
const base: ScenarioInput = {
  memory: { pages: 1024, outstanding: { kind: 'all' } },
  source: { policy: 'qemu' },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'random', vcpus: 1, region: { start: 0, count: 512 }, writeFraction: 1 },
};

/**
 * A `real sweep` directory without QEMU: configuration 0's "real" runs are the model's own
 * results as reproduce real runs it (they must agree), configuration 1's are the model's with
 * every time doubled.
 */
function fakeRealSweep(edit: (result: ReturnType<typeof runScenario>['report']) => void = () => {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pce-real-'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ kind: 'real', base }));
  const lines: string[] = [];
  for (const [config, rate] of [[0, 1000], [1, 10_000]] as const) {
    for (let replication = 0; replication < 3; replication++) {
      const run = { index: config * 3 + replication, config, replication, seed: 100 + replication, params: { 'link.rateMbps': rate } };
      const result = runScenario(modelOfReal(scenarioOf({ base }, run), { uncapped: false })).report;
      if (config === 1) {
        result['total-time'] *= 2;
        result.downtime *= 2;
      }
      edit(result);
      lines.push(JSON.stringify({ ...run, status: 'ok', result }));
    }
  }
  writeFileSync(join(dir, 'runs.jsonl'), `${lines.join('\n')}\n`);
  return dir;
}

describe('reproduce real', () => {
  it('puts each configuration\'s real runs (median, min–max) beside the model with the same seeds', async () => {
    const dir = fakeRealSweep();
    const r = await cli('reproduce', 'real', dir, '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as { config: number; metric: string; ratio: number | null; agrees: boolean; real: { runs: number } }[];
    expect(rows).toHaveLength(14);
    expect(rows.filter((x) => x.config === 0).every((x) => x.agrees && (x.ratio === null || x.ratio === 1))).toBe(true);
    const total1 = rows.find((x) => x.config === 1 && x.metric === 'total-time')!;
    expect(total1).toMatchObject({ ratio: 0.5, agrees: false, real: { runs: 3 } });
    const table = await cli('reproduce', 'real', dir);
    expect(table.out).toMatch(/^configuration 0 \{"link\.rateMbps":1000\}: 3 real runs$/m);
    expect(table.out).toMatch(/^total-time \(ms\)\s+[\d.]+ \[[\d.]+–[\d.]+\]\s+[\d.]+\s+×0\.50\s+no$/m);
    expect(table.out.trim().split('\n').at(-1)).toBe('12 of 14 figures agree (within the real runs\' min–max or ±25 % of their median)');
  });

  it('holds the model\'s request latency against the trace\'s, read as the fault latency from a result without it', async () => {
    // A real result written before the field: its trace latencies are the fault latency only.
    // Here they are the model's request latencies, so both rows agree exactly.
    const dir = fakeRealSweep((result) => {
      const { 'request-latency': q, ...rest } = result.emulator;
      result.emulator = { ...rest, 'fault-latency': { ...result.emulator['fault-latency'], p50: q.p50, p99: q.p99 } } as typeof result.emulator;
    });
    const rows = JSON.parse((await cli('reproduce', 'real', dir, '--json')).out) as { config: number; metric: string; ratio: number | null }[];
    const request = rows.filter((x) => x.metric.startsWith('request'));
    expect(request.map((x) => `${x.config} ${x.metric} ${x.ratio}`)).toEqual(['0 request p50 1', '0 request p99 1', '1 request p50 1', '1 request p99 1']);
  });

  it('runs each real run\'s model as the harness ran it: QEMU\'s rate limits on the loopback wire', () => {
    const capped = modelOfReal({ ...base, link: { rateMbps: 1000 } }, { uncapped: false });
    expect(capped.link).toMatchObject({ rateMbps: LOOPBACK.rateMbps, latencyNs: LOOPBACK.latencyNs });
    expect(capped.backChannel).toMatchObject({ rateMbps: LOOPBACK.rateMbps, latencyNs: LOOPBACK.latencyNs });
    // 1 Gbit/s is 125 MB/s: max-bandwidth and max-postcopy-bandwidth.
    expect([capped.precopy?.maxBandwidth, capped.source?.maxPostcopyBandwidth]).toEqual([125_000_000, 125_000_000]);
    expect(capped.source?.policy).toBe('qemu');
    // Postcopy from the start: migrate, then migrate-start-postcopy at once (setup first).
    expect(modelOfReal({ ...base, migration: { mode: 'postcopy' } }, { uncapped: false }).migration).toMatchObject({ mode: 'hybrid', switchAtNs: 0 });
    expect(modelOfReal({ ...base, migration: { mode: 'precopy' } }, { uncapped: false }).migration).toMatchObject({ mode: 'precopy' });
    const uncapped = modelOfReal(base, { uncapped: true }, { wireMbps: 9_000 });
    expect([uncapped.link?.rateMbps, uncapped.precopy?.maxBandwidth, uncapped.source?.maxPostcopyBandwidth]).toEqual([9_000, 0, 0]);
  });

  it('models the firmware guest: its working set 1 MiB up, zero elsewhere, rewritten page by page at the measured pace', () => {
    // 4 MiB guest, a writer over region {0, 512}: firmware pages 256..767; the rest is zero.
    const writer = modelOfReal(base, { uncapped: false, pageNs: 3912.4 });
    expect(writer.workload).toMatchObject({ kind: 'shuffled', region: { start: 256, count: 512 }, think: 'constant', thinkNs: 3912 });
    expect(writer.memory?.zeroRanges).toEqual([{ start: 0, count: 256 }, { start: 768, count: 256 }]);
    // Without a region the firmware writes all low RAM above 1 MiB; without a measured pace the scenario's thinkNs stays.
    const whole = modelOfReal({ ...base, workload: { kind: 'sequential', thinkNs: 6000 } }, { uncapped: false });
    expect(whole.workload).toMatchObject({ region: { start: 256, count: 768 }, thinkNs: 6000, think: 'constant' });
    expect(whole.memory?.zeroRanges).toEqual([{ start: 0, count: 256 }]);
    // An idle guest writes nothing: every page is zero.
    expect(modelOfReal({ ...base, workload: { kind: 'idle' } }, { uncapped: true }).memory?.zeroRanges).toEqual([{ start: 0, count: 1024 }]);
  });

  it('takes the host\'s measured costs from --host: syscalls, loopback latency and buffers, not live mode\'s own stream', async () => {
    const costs = { pager: { uffdZeroPageNs: 301, notifyNs: 5204, listenNs: 1_800_000 }, source: { deviceSaveNs: 1_300_000, zeroCheckNs: 184, policy: 'xen' as const }, link: { rateMbps: 3676, latencyNs: 6204, sendBufferBytes: 6517826 }, backChannel: { latencyNs: 679356 }, multifd: { handoffNs: 4323 } };
    const m = modelOfReal(base, { uncapped: false }, { costs });
    expect(m.pager).toMatchObject({ uffdZeroPageNs: 301, notifyNs: 5204, listenNs: 1_800_000 });
    expect(m.source).toMatchObject({ policy: 'qemu', deviceSaveNs: 1_300_000, zeroCheckNs: 184, maxPostcopyBandwidth: 125_000_000 });
    expect(m.link).toMatchObject({ rateMbps: LOOPBACK.rateMbps, latencyNs: 6204, sendBufferBytes: 6517826 });
    expect(m.backChannel).toMatchObject({ rateMbps: LOOPBACK.rateMbps, latencyNs: 6204 });
    expect(m.multifd).toMatchObject({ handoffNs: 4323 });
    const dir = fakeRealSweep();
    const file = join(dir, 'host.yaml');
    writeFileSync(file, 'pager:\n  uffdZeroPageNs: 301\n  readCallNs: 2965\nlink:\n  latencyNs: 6204\n');
    const withHost = JSON.parse((await cli('reproduce', 'real', dir, '--json', '--host', file)).out) as { config: number; metric: string; model: number }[];
    const without = JSON.parse((await cli('reproduce', 'real', dir, '--json')).out) as typeof withHost;
    const total = (rows: typeof withHost) => rows.find((x) => x.config === 0 && x.metric === 'total-time')!.model;
    expect(total(withHost)).toBeLessThan(total(without));
    writeFileSync(file, 'pager:\n  uffdZeroPageNs: -1\n');
    const bad = await cli('reproduce', 'real', dir, '--host', file);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(new RegExp(`^postcopy-emu: --host ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: pager\\.uffdZeroPageNs: `));
    expect((await cli('reproduce', 'xen-2017', '--host', file)).err).toBe('postcopy-emu: reproduce xen-2017: --host is for reproduce real\n');
  });

  it('takes the wire\'s rate from --wire, and refuses a bad one', async () => {
    const dir = fakeRealSweep();
    const fast = JSON.parse((await cli('reproduce', 'real', dir, '--json', '--wire', '40000')).out) as { config: number; metric: string; model: number }[];
    const slow = JSON.parse((await cli('reproduce', 'real', dir, '--json')).out) as typeof fast;
    const total = (rows: typeof fast) => rows.find((x) => x.config === 0 && x.metric === 'total-time')!.model;
    expect(total(fast)).not.toBe(total(slow));
    expect((await cli('reproduce', 'real', dir, '--wire', '0')).err).toBe('postcopy-emu: --wire: must be a rate in Mbit/s above 0 and up to 10000000, got 0\n');
    expect((await cli('reproduce', 'xen-2017', '--wire', '4000')).code).toBe(2);
  });

  it('refuses a directory that no real sweep wrote, and --set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pce-real-'));
    expect((await cli('reproduce', 'real', dir)).err).toMatch(/^postcopy-emu: .* is not a real sweep directory \(manifest\.json: /);
    expect((await cli('reproduce', 'real')).err).toBe('postcopy-emu: reproduce real needs the directory a `postcopy-emu real sweep` wrote\n');
    expect((await cli('reproduce', 'real', dir, '--set', 'ring.capacity=4')).code).toBe(2);
    expect((await cli('reproduce', 'xen-2017', dir)).err).toBe('postcopy-emu: reproduce xen-2017 takes no directory\n');
  });
});

describe('reproduce real on the recorded KVM matrix (examples/real-kvm-2026-11-27)', () => {
  it('the 1 GiB guest at 1 Gbit/s, postcopy from the start: the sequential writer agrees on all seven figures', async () => {
    const r = await cli('reproduce', 'real', 'examples/real-kvm-2026-11-27/postcopy-1g-cap', '--host', 'examples/host-2026-11-27.yaml', '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as { params: Record<string, string>; metric: string; agrees: boolean; real: { median: number }; model: number }[];
    const seq = rows.filter((x) => x.params['workload.kind'] === 'sequential');
    expect(seq.map((x) => `${x.metric} ${x.agrees}`)).toEqual([
      'total-time true', 'downtime true', 'transferred true', 'postcopy requests true', 'blocktime true', 'request p50 true', 'request p99 true',
    ]);
    // QEMU's traced stages, and the package held under Nagle until the first page after the
    // 1 GiB chunk's dirty-log clear (0.81 ms) takes it along.
    expect(seq.find((x) => x.metric === 'downtime')!.model).toBeCloseTo(5.52, 2);
    // The real runs as recorded: 2,251 ms, 26 requests, QEMU's blocktime 1,265 ms.
    expect(seq.filter((x) => ['total-time', 'postcopy requests', 'blocktime'].includes(x.metric)).map((x) => x.real.median)).toEqual([2250.648, 26, 1265]);
    expect(rows.filter((x) => x.agrees)).toHaveLength(18);
  });
});
