import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../src/run.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { scenarioOf } from '../src/sweep/spec.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();

/** 4 MiB guest, a sequential writer, postcopy from the start: a few ms a run. */
const base: ScenarioInput = {
  memory: { pages: 1024, outstanding: { kind: 'all' } },
  source: { policy: 'qemu' },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'sequential', vcpus: 1, region: { start: 0, count: 256 }, writeFraction: 1 },
};

/**
 * A `real sweep` directory without QEMU: configuration 0's "real" runs are the model's own
 * results (they must agree), configuration 1's are the model's with every time doubled.
 */
function fakeRealSweep(edit: (result: ReturnType<typeof runScenario>['report']) => void = () => {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pce-real-'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ kind: 'real', base }));
  const lines: string[] = [];
  for (const [config, rate] of [[0, 1000], [1, 10_000]] as const) {
    for (let replication = 0; replication < 3; replication++) {
      const run = { index: config * 3 + replication, config, replication, seed: 100 + replication, params: { 'link.rateMbps': rate } };
      const result = runScenario(scenarioOf({ base }, run)).report;
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
    // At 10 Gbit/s (configuration 1) the pages come before the writer asks: 0 on both sides, no ratio.
    expect(request.map((x) => `${x.config} ${x.metric} ${x.ratio}`)).toEqual(['0 request p50 1', '0 request p99 1', '1 request p50 null', '1 request p99 null']);
  });

  it('refuses a directory that no real sweep wrote, and --set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pce-real-'));
    expect((await cli('reproduce', 'real', dir)).err).toMatch(/^postcopy-emu: .* is not a real sweep directory \(manifest\.json: /);
    expect((await cli('reproduce', 'real')).err).toBe('postcopy-emu: reproduce real needs the directory a `postcopy-emu real sweep` wrote\n');
    expect((await cli('reproduce', 'real', dir, '--set', 'ring.capacity=4')).code).toBe(2);
    expect((await cli('reproduce', 'xen-2017', dir)).err).toBe('postcopy-emu: reproduce xen-2017 takes no directory\n');
  });
});
