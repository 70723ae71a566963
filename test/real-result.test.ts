import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { realReport, type RealObservation } from '../src/live/qemu/result.ts';
import { loadReportInput } from '../src/report/input.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { cliHarness } from './cli-harness.ts';

const T0 = 1_795_709_190_532_566; // µs: the source's MIGRATION setup event
const ev = (event: string, atUs: number, data: Record<string, unknown> = {}) => ({ event, data, atUs });

/** A postcopy-from-the-start run as QEMU 7.2 reports it (values from a run on this host). */
function observation(): RealObservation {
  return {
    scenario: parseScenario({ name: 'seq-pc-start', memory: { pages: 65536 }, workload: { kind: 'sequential', region: { start: 0, count: 16384 } } }),
    qemuVersion: '7.2.22',
    accel: 'kvm',
    uncapped: false,
    commandLines: { source: ['qemu-system-x86_64', '-name', 'pce-source'], destination: ['qemu-system-x86_64', '-incoming', 'defer'] },
    source: {
      info: {
        status: 'completed', 'setup-time': 3, downtime: 2, 'total-time': 1092,
        ram: { transferred: 67765169, remaining: 0, total: 268771328, duplicate: 49214, normal: 16404, 'normal-bytes': 67190784, 'dirty-pages-rate': 0,
          mbps: 497.9, 'dirty-sync-count': 2, 'postcopy-requests': 116, 'page-size': 4096, 'multifd-bytes': 0, 'pages-per-second': 65658,
          'precopy-bytes': 0, 'downtime-bytes': 0, 'postcopy-bytes': 67765169 },
      },
      events: [ev('MIGRATION', T0, { status: 'setup' }), ev('MIGRATION', T0 + 10_021, { status: 'active' }), ev('STOP', T0 + 10_050),
        ev('MIGRATION', T0 + 10_106, { status: 'postcopy-active' }), ev('MIGRATION', T0 + 1_080_000, { status: 'completed' })],
    },
    destination: {
      info: { status: 'completed', 'postcopy-blocktime': 240, 'postcopy-vcpu-blocktime': [240] },
      events: [ev('MIGRATION', T0 - 80_000, { status: 'setup' }), ev('RESUME', T0 + 18_025), ev('MIGRATION', T0 + 1_092_415, { status: 'completed' })],
    },
    faults: { latenciesNs: [1_000, 3_000, 171_000, 46_163_000, 48_409_000], unanswered: 0, firstAtUs: T0 + 19_000 },
    switchover: { 'device-save-ms': 1.3, 'sync-ms': 0.19, 'discard-ms': 0.37, 'package-bytes': 12935, 'listen-ms': 1.8, 'load-ms': 1.15 }, guest: { passesAtSource: 12, passesAtDestination: 212, pageNs: 3912.4 },
    threads: [{ side: 'destination', name: 'postcopy/listen', tid: 4242, 'cpu-ms': 130.9, 'runqueue-ms': 29.8, 'alive-ms': 165.2 }],
    sockets: { samples: 440, 'busy-samples': 52, 'send-q-p50': 3_276_800, 'send-q-max': 4_204_012, 'recv-q-p50': 131_072, 'ahead-p50': 3_407_872 },
  };
}

describe('real run → the emulator\'s JSON shape', () => {
  const r = realReport(observation());

  it('takes QEMU\'s counters and the events\' times', () => {
    expect(r.status).toBe('completed');
    expect(r['total-time']).toBe(1092.415); // setup at the source → the later completed event
    expect([r.downtime, r['setup-time'], r['postcopy-blocktime']]).toEqual([2, 3, 240]);
    expect(r['postcopy-vcpu-blocktime']).toEqual([240]);
    expect(r.ram.transferred).toBe(67765169);
    expect(r.ram['postcopy-requests']).toBe(116);
    expect(r.emulator['pages-demand-fetched']).toBe(116);
    expect(r.emulator['postcopy-duration']).toBe(1074.39);
    expect(r.emulator['status-history']).toEqual([
      { status: 'setup', 'at-ms': 0 }, { status: 'active', 'at-ms': 10.021 }, { status: 'postcopy-active', 'at-ms': 10.106 }, { status: 'completed', 'at-ms': 1080 },
    ]);
    expect(r.emulator.precopy).toBeUndefined();
    expect(r.real['stop-to-resume-ms']).toBe(7.975);
    expect(r.real['entered-postcopy']).toBe(true);
    expect(r.real['qemu-total-time']).toBe(1092);
    expect(r.real.guest).toEqual({ 'passes-at-source': 12, 'passes-at-destination': 212, 'page-ns': 3912 });
    expect(r.real.switchover).toEqual({ 'device-save-ms': 1.3, 'sync-ms': 0.19, 'discard-ms': 0.37, 'package-bytes': 12935, 'listen-ms': 1.8, 'load-ms': 1.15 });
    expect(r.real.sockets['ahead-p50']).toBe(3_407_872);
    expect(r.real.threads).toEqual([{ side: 'destination', name: 'postcopy/listen', tid: 4242, 'cpu-ms': 130.9, 'runqueue-ms': 29.8, 'alive-ms': 165.2 }]);
  });

  it('turns the trace\'s latencies into postcopy-latency, its log2-µs histogram and the percentiles', () => {
    expect(r['postcopy-latency']).toBe(18_949_400);
    const dist = new Array(24).fill(0);
    dist[0] = 1; dist[1] = 1; dist[7] = 1; dist[15] = 2;
    expect(r['postcopy-latency-dist']).toEqual(dist);
    const f = r.emulator['fault-latency'];
    expect([f.count, f.p50, f.p90, f.p99, f.max]).toEqual([5, 171_000, 48_409_000, 48_409_000, 48_409_000]);
    expect(f.cdf).toHaveLength(21);
    // The trace spans a page's first request to its placement: the model's request latency too.
    const q = r.emulator['request-latency'];
    expect([q.count, q.p50, q.p99, q.max]).toEqual([5, 171_000, 48_409_000, 48_409_000]);
    expect(r.emulator.faults).toEqual({ vcpu: 5, spurious: 0, foreign: 0, network: 5, minor: 0, 'network-share': null });
  });

  it('gives a hybrid run a precopy section: where it paused and when it switched', () => {
    const o = observation();
    o.scenario = parseScenario({ memory: { pages: 65536 }, migration: { mode: 'hybrid', switchAfterIterations: 1 } });
    const p = realReport(o).emulator.precopy!;
    expect([p.end, p.iterations, p['switched-to-postcopy'], p['paused-at-ms'], p['handover-at-ms'], p['pages-sent']]).toEqual(['switch', 1, true, 10.05, 10.106, 65618]);
  });

  const cli = cliHarness();
  it('is read by `compare` and by the report\'s loader', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pce-real-result-'));
    const path = join(dir, 'real.json');
    writeFileSync(path, JSON.stringify(r));
    expect(loadReportInput(path)).toMatchObject({ kind: 'run', result: { status: 'completed', downtime: 2 } });
    const emu = await cli('run', '--set', 'memory.pages=2048', '--json', join(dir, 'emu.json'));
    expect(emu.code).toBe(0);
    const c = await cli('compare', path, join(dir, 'emu.json'));
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/^total-time \(ms\) +1092\.415 /m);
    expect(c.out).toMatch(/^postcopy-blocktime \(ms\) +240\.000 /m);
    rmSync(dir, { recursive: true, force: true });
  });
});
