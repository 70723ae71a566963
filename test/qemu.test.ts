import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import { applySets, readScenarioFile } from '../src/scenario/load.ts';
import { FaultRing, RequestKind } from '../src/ring/ring.ts';

describe('the qemu policy: userfaultfd semantics', () => {
  it('an unbounded ring grows instead of refusing, keeping FIFO order', () => {
    const ring = new FaultRing({ capacity: 2, vcpus: 2, blackEye: false, unbounded: true });
    const ids = [10, 11, 12, 13, 14].map((g) => ring.putForeign(RequestKind.PAGE, g));
    expect(ids.every((id) => id >= 0)).toBe(true);
    expect(ring.ebusy).toBe(0);
    expect(ring.capacity).toBe(8);
    expect(ring.take()).toBe(ids[0]);
    expect(ring.contents().map((r) => r.gfn)).toEqual([11, 12, 13, 14]);
    expect(ring.claimGuest(0)).toBe(true);
    ring.putGuest(0, RequestKind.PAGE, 15);
    expect(ring.waitQueue).toEqual([]);
    expect(ring.occupancy).toBe(6);
    expect(ring.timeFull(1_000)).toBe(0);
  });

  it('vCPUs never wait for a slot, the device model never gets EBUSY, and the run stays sound', () => {
    const input = {
      memory: { pages: 4096 },
      ring: { capacity: 1 },
      source: { policy: 'qemu' as const },
      mapper: { mapping: { kind: 'ranges' as const, ranges: [{ start: 1024, count: 512 }] } },
      workload: { kind: 'random' as const, vcpus: 4, writeFraction: 1 },
    };
    const emu = new Emulator(input);
    expect(emu.warnings).toEqual(['ring.capacity and ring.blackEye are ignored with source.policy qemu: userfaultfd queues faults without bound']);
    emu.run();
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
    expect(emu.ring.ebusy).toBe(0);
    // The first map call asked for every missing gfn at once: no 8-at-a-time batches.
    expect(emu.mapper.requests).toBe(512);
    expect(emu.ring.maxOccupancy).toBeGreaterThanOrEqual(512);
  });

  it('pushes in the same order as xen (the scan restarts at the requested page) and warns only when the ring is set', () => {
    const base = { memory: { pages: 2048 }, workload: { kind: 'hot-set' as const, vcpus: 2 } };
    const xen = new Emulator({ ...base, source: { policy: 'xen' as const } }).run();
    // The same switchover and page loads as xen's (QEMU's own discards no page list:
    // test/switchover.test.ts; it places pages with userfaultfd: test/placement.test.ts).
    const qemu = new Emulator({ ...base, source: { policy: 'qemu' as const, switchover: 'pfns' as const }, pager: { placement: 'hypercall' as const } }).run();
    expect(qemu.warnings).toEqual([]);
    expect(qemu.source.pagesDemanded).toBe(xen.source.pagesDemanded);
    expect(qemu.kernel.now).toBe(xen.kernel.now);
  });
});

describe('examples/qemu-1g-seq256.yaml (issue 11, docs/policies.md)', () => {
  const run = (sets: string[] = []) => {
    const input = applySets(readScenarioFile(fileURLToPath(new URL('../examples/qemu-1g-seq256.yaml', import.meta.url))),
      ['link.rateMbps=10000', 'backChannel.rateMbps=10000', 'source.maxPostcopyBandwidth=125000000', ...sets]);
    const emu = new Emulator(input).run();
    expect(checkRun(emu)).toEqual([]);
    return { emu, r: buildReport(emu), short: emu.latency.percentiles([40])[0]! };
  };

  it('gives the documented 10 Gbit/s row: 22 window waits of ~81 ms, 2442.913 ms in all', () => {
    const { emu, r } = run();
    // 37 faults: the 22 window waits, and 15 where the guest caught up with the page being placed.
    expect(emu.latency.count).toBe(37);
    expect(r.emulator['pfns-requested']).toBe(22);
    expect(Math.round(emu.latency.percentiles([50])[0]! / 1e5) / 10).toBe(81.2);
    expect(r['total-time']).toBe(2442.913);
  });

  it('pager.wakeAt page (QEMU\'s default): a page is present when the thread reaches it, so the guest follows the placement', () => {
    const page = run(), record = run(['pager.wakeAt=record']);
    // Whole records: the guest faults only where a window's burst ends.
    expect(record.emu.latency.count).toBe(22);
    expect(record.short).toBeGreaterThan(80e6);
    // Page by page: 15 more faults on a page of the record being placed, each answered once the
    // fault thread reads it (pager.wakeNs 9 µs, the page is in by then) and notifies (2 µs).
    expect(page.emu.latency.count - record.emu.latency.count).toBe(15);
    expect(page.short).toBe(11_000);
    expect(page.r['total-time']).toBe(record.r['total-time']);
  });
});
