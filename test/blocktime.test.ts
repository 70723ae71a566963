import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { QemuBlocktime } from '../src/metrics/blocktime.ts';
import { buildReport } from '../src/metrics/report.ts';

describe('QemuBlocktime (mark_postcopy_blocktime_begin / _end)', () => {
  it('per vCPU: read to placement; in total: from the last begin to the first end that finds all down', () => {
    const b = new QemuBlocktime(2);
    b.begin(0, 100);
    b.begin(1, 300); // both down from 300
    b.end(0, 700); // all were down: 700 − 300
    b.begin(0, 800); // both down again from 800
    b.end(1, 900); // 900 − 800
    b.end(0, 1_000); // vCPU 1 was up: nothing
    b.end(1, 2_000); // not down: ignored
    expect(b.total).toBe(400 + 100);
    expect(Array.from(b.perVcpu)).toEqual([600 + 200, 600]);
    // Each span is a remote fault's latency (QEMU 10.1's postcopy-latency).
    expect([b.latency.count, b.latency.mean(), b.latency.max]).toEqual([3, 467, 600]);
  });
});

describe('postcopy-blocktime', () => {
  const scenario = (faultThread?: boolean) => ({
    memory: { pages: 8_192 }, source: { policy: 'qemu' as const }, pager: { faultThread }, mapper: { mapping: { kind: 'none' as const } },
    workload: { kind: 'random' as const, vcpus: 2, writeFraction: 1 },
  });

  it('with QEMU\'s fault thread: its counter, inside the whole time the vCPUs were blocked', () => {
    const emu = new Emulator(scenario()).run();
    expect(checkRun(emu)).toEqual([]);
    const r = buildReport(emu);
    // Each span loses the fault thread's wake-up before its read and the vCPU's after the copy.
    expect(r['postcopy-blocktime']).toBeLessThan(r.emulator.vcpu['all-blocked-ms']);
    r['postcopy-vcpu-blocktime'].forEach((ms, v) => expect(ms).toBeLessThan(r.emulator.vcpu['blocked-ms'][v]!));
    expect(r['postcopy-blocktime']).toBe(Math.round(emu.pager.blocktime!.total / 1e3) / 1e3);
  });

  it('without it (Xen\'s pager keeps no such counter): the whole time the vCPUs were blocked', () => {
    const emu = new Emulator(scenario(false)).run();
    const r = buildReport(emu);
    expect(emu.pager.blocktime).toBeNull();
    expect(r['postcopy-blocktime']).toBe(r.emulator.vcpu['all-blocked-ms']);
    expect(r['postcopy-vcpu-blocktime']).toEqual(r.emulator.vcpu['blocked-ms']);
  });
});
