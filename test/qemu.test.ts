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

describe('request latency under QEMU', () => {
  it('QEMU: from the fault thread\'s first request of a page to its UFFDIO_COPY, inside the fault\'s wait', () => {
    const emu = new Emulator({
      memory: { pages: 4_096 }, source: { policy: 'qemu' }, mapper: { mapping: { kind: 'none' } }, workload: { kind: 'idle' },
    });
    // 16 MiB at 1 Gbit/s: the scan reaches page 4 000 at ~130 ms; asked for at 10 ms, it goes first.
    emu.runUntil(10e6);
    emu.foreignFault(4_000);
    emu.run();
    expect(checkRun(emu)).toEqual([]);
    const r = buildReport(emu).emulator;
    expect(r['request-latency'].count).toBe(1);
    // Before the request: the fault thread's wake-up (9 µs); after the UFFDIO_COPY: the faulting
    // thread's (pager.notifyNs under userfaultfd, 14.5 µs).
    expect(r['fault-latency'].p50 - r['request-latency'].p50).toBe(9_000 + 14_500);
  });
});

describe('examples/qemu-1g-seq256.yaml (issue 11, docs/policies.md)', () => {
  const run = (sets: string[] = []) => {
    const input = applySets(readScenarioFile(fileURLToPath(new URL('../examples/qemu-1g-seq256.yaml', import.meta.url))),
      ['link.rateMbps=10000', 'backChannel.rateMbps=10000', 'source.maxPostcopyBandwidth=125000000', ...sets]);
    const emu = new Emulator(input).run();
    expect(checkRun(emu)).toEqual([]);
    return { emu, r: buildReport(emu) };
  };
  /** Faults of 64–131 ms (the window waits) and of under 32 µs. */
  const long = (emu: Emulator) => emu.latency.buckets[16]!;
  const short = (emu: Emulator) => emu.latency.buckets.slice(0, 5).reduce((a, b) => a + b, 0);

  it('gives the documented 10 Gbit/s row: the first fault, 21 window waits of ~81 ms, 2442.693 ms in all', () => {
    const { emu, r } = run();
    expect(long(emu)).toBe(21);
    expect(emu.latency.count).toBe(23);
    expect(r.emulator['pfns-requested']).toBe(22);
    expect(Math.round(emu.latency.percentiles([90])[0]! / 1e5) / 10).toBe(81.9);
    expect(r['total-time']).toBe(2442.693);
  });

  it('pager.wakeAt page (QEMU\'s default): a page is present when the thread reaches it, so the guest follows the placement', () => {
    const page = run(), record = run(['pager.wakeAt=record']);
    // Whole records: the guest faults at the start (0.7 ms) and where a window's burst ends.
    expect(record.emu.latency.count).toBe(22);
    expect(long(record.emu)).toBe(21);
    // Page by page: one more fault, on a page of the record being placed, woken by its
    // UFFDIO_COPY before the fault thread has read the fault: 17.1 µs, most of it the faulting
    // thread's wake-up (notify 14.5 µs). The first fault is 0.72 ms placed whole, 0.46 ms page by page.
    expect(page.emu.latency.count - record.emu.latency.count).toBe(1);
    expect(short(page.emu)).toBe(1);
    expect(page.emu.latency.percentiles([0])[0]).toBe(17_120);
    // Page by page, the thread also reads the pages as their bytes come: the last record's are
    // in 0.22 ms sooner (63 pages at 10 Gbit/s, 3.4 µs each).
    expect(record.r['total-time'] - page.r['total-time']).toBeCloseTo(0.22, 2);
  });

  it('at 1 Gbit/s unlimited, the pages are read as they come: the guest follows them a page\'s wire time behind', () => {
    const at1g = (sets: string[]) => {
      const input = applySets(readScenarioFile(fileURLToPath(new URL('../examples/qemu-1g-seq256.yaml', import.meta.url))), sets);
      const emu = new Emulator(input).run();
      expect(checkRun(emu)).toEqual([]);
      return emu;
    };
    const page = at1g([]), record = at1g(['pager.wakeAt=record']);
    // Whole records: the guest (6 µs a touch) runs through a record and waits for the next, 2.1 ms
    // of wire, placed after its last page: one fault a record of 64 pages, p50 1.85 ms.
    expect(record.latency.count).toBe(1_024);
    expect(Math.round(record.latency.percentiles([50])[0]! / 100) / 10).toBe(1850.9);
    // Page by page (ram_load_postcopy): each fault waits for the next page to come, 33.3 µs of
    // wire a 4 KiB page at 1 Gbit/s less the guest's touch since: p50 31 µs, on most pages.
    expect(page.latency.count).toBe(63_302);
    expect(Math.round(page.latency.percentiles([50])[0]! / 100) / 10).toBe(31);
    // The wire bounds the guest either way: the same blocktime (1.89 s) within 1 ms.
    expect(Math.abs(page.vcpus.allBlockedNs - record.vcpus.allBlockedNs)).toBeLessThan(1e6);
  });
});
