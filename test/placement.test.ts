import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { Placement, PlacementFront, cutAt } from '../src/pager/placement.ts';
import { placementOf, scenarioSchema, type ScenarioInput } from '../src/scenario/schema.ts';
import { RecordType, streamRecord } from '../src/stream/records.ts';

describe('page placement (pager.placement)', () => {
  // 64 pages: 4 zero, 10 from range requests; 266 240 bytes = 9 reads of 32 KiB.
  const rec = streamRecord(RecordType.POSTCOPY_PAGE_DATA, 266_240, 64, new Int32Array(64), 0, 10, 4);
  const cost = (input: ScenarioInput) => new Placement(scenarioSchema.parse(input), null, true).cost(rec);

  it('follows the policy when unset', () => {
    const of = (input: ScenarioInput) => placementOf(scenarioSchema.parse(input));
    expect(of({ source: { policy: 'qemu' } })).toBe('uffd');
    expect(of({ source: { policy: 'lazy-pages' } })).toBe('uffd');
    expect(of({ source: { policy: 'xen' } })).toBe('hypercall');
    expect(of({ source: { policy: 'qemu' }, pager: { placement: 'hypercall' } })).toBe('hypercall');
  });

  it('QEMU: reads per 32 KiB, one UFFDIO_COPY per data page (ranges too), one UFFDIO_ZEROPAGE per zero page', () => {
    // 9 × 7 900 read + 60 × 400 copy out of the socket + 60 × 2 600 UFFDIO_COPY + 4 × 1 600 UFFDIO_ZEROPAGE
    expect(cost({ source: { policy: 'qemu' } })).toBe(71_100 + 24_000 + 156_000 + 6_400);
    expect(cost({ source: { policy: 'xen' }, pager: { placement: 'uffd', readCallNs: 0 } })).toBe(24_000 + 156_000 + 6_400);
  });

  it('QEMU: the listen thread\'s own work per page (pageWorkNs), data and zero pages alike, huge host pages per 4 KiB piece', () => {
    expect(cost({ source: { policy: 'qemu' }, pager: { pageWorkNs: 216 } })).toBe(71_100 + 24_000 + 156_000 + 6_400 + 64 * 216);
    const huge = (work: number) => {
      const emu = new Emulator({ memory: { pages: 1024, hostPageSize: 2 << 20 }, source: { policy: 'qemu' }, pager: { pageWorkNs: work }, workload: { kind: 'idle' } }).run();
      expect(checkRun(emu)).toEqual([]);
      return emu.pager.busyNs;
    };
    expect(huge(216) - huge(0)).toBe(1024 * 216);
  });

  it('the switch at the destination: listen (only with pages outstanding), then the device load; none counted unless set', () => {
    const transition = (input: ScenarioInput, outstanding: boolean) => new Placement(scenarioSchema.parse(input), null, outstanding).transitionCost();
    const qemu72: ScenarioInput = { source: { policy: 'qemu' }, pager: { listenNs: 1_800_000, deviceLoadNs: 1_150_000 } };
    expect(transition(qemu72, true)).toBe(2_950_000);
    expect(transition(qemu72, false)).toBe(1_150_000);
    expect(transition({ source: { policy: 'qemu' } }, true)).toBe(0);
  });

  it('Xen: a load call per single page, one batched call for the range pages', () => {
    // 60 × 400 + 50 × 6 400 + 4 × 1 100 + 7 500 + 10 × 600
    expect(cost({ source: { policy: 'xen' } })).toBe(24_000 + 320_000 + 4_400 + 7_500 + 6_000);
    expect(cost({ source: { policy: 'qemu' }, pager: { placement: 'hypercall' } })).toBe(361_900);
  });

  it('a huge host page is one UFFDIO_COPY, paid by the record that completes it', () => {
    // 1 024 pages idle: the same records either way; 2 MiB host pages = 2 copies of 512 pages.
    const busy = (hostPageSize?: number) => {
      const emu = new Emulator({ memory: { pages: 1024, hostPageSize }, source: { policy: 'qemu' }, workload: { kind: 'idle' } }).run();
      expect(checkRun(emu)).toEqual([]);
      return emu.pager.busyNs;
    };
    expect(busy(2 << 20) - busy()).toBe(2 * (2_600 + 511 * 610) - 1024 * 2_600);
  });
});

describe('the receive side behind the wire', () => {
  // 64 MiB at 10 Gbit/s: 54 ms on the wire, but 20 µs of UFFDIO_COPY a page is 328 ms of placement.
  const slow = (extra: ScenarioInput = {}): ScenarioInput => ({
    memory: { pages: 16_384 }, link: { rateMbps: 10_000 }, backChannel: { rateMbps: 10_000 },
    source: { policy: 'qemu' }, pager: { uffdCopyNs: 20_000 }, workload: { kind: 'idle' }, ...extra,
  });

  it('placement sets the pace: flow control holds the source back', () => {
    const emu = new Emulator(slow()).run();
    expect(checkRun(emu)).toEqual([]);
    // 256 records of 64 pages: 9 reads of 32 KiB and 64 × (400 + 20 000) each; one discard range.
    expect(emu.pager.busyNs).toBe(256 * (9 * 7_900 + 64 * 20_400) + 2_000);
    // The pager hardly ever waits for data: busy all but the first record's time on the wire.
    expect(emu.kernel.now - emu.pager.busyNs).toBeLessThan(1e6);
  });

  it('preempt records are placed before the main stream\'s backlog (postcopy_preempt_thread)', () => {
    const latency = (preempt: boolean) => {
      const emu = new Emulator(slow({ preempt: { enabled: preempt } }));
      emu.runUntil(100e6);
      emu.foreignFault(16_000);
      emu.run();
      expect(checkRun(emu)).toEqual([]);
      return emu.latency.percentiles([50])[0]!;
    };
    // Behind the main stream: the 10 MiB of socket buffers, 2 560 pages at 20.4 µs and more.
    expect(latency(false)).toBeGreaterThan(40e6);
    // Preempt: at most the record in progress (64 × 20.4 µs) and its own.
    expect(latency(true)).toBeLessThan(2e6);
  });
});

describe('the placement front (PlacementFront)', () => {
  // 4 pages placed at 100 ns each, the thread starting at 1 000.
  const record = (gapNs: number) => {
    const rec = streamRecord(RecordType.POSTCOPY_PAGE_DATA, 16_448, 4, new Int32Array([7, 8, 9, 10]));
    rec.firstAt = 1_000;
    rec.gapNs = gapNs;
    return rec;
  };
  const front = (gapNs: number, start = 1_000) => {
    const f = new PlacementFront();
    f.begin(start, 400, record(gapNs));
    return f;
  };

  it('a record read whole: page i lands at its share of the cost', () => {
    const f = front(0);
    expect([0, 1, 2, 3].map((i) => f.timeOf(i))).toEqual([1_100, 1_200, 1_300, 1_400]);
    expect(f.endAt).toBe(1_400);
    expect(f.dueBy(1_250)).toBe(2);
    // The last page lands with the record (jobDone), never one by one.
    expect(f.dueBy(1e9)).toBe(3);
  });

  it('a record read as it comes: a page lands one share after it arrives, when the thread is ahead of the wire', () => {
    // 3 300 ns of wire a page: pages arrive at 1 000, 4 300, 7 600 and 10 900.
    const f = front(3_300);
    expect([0, 1, 2, 3].map((i) => f.timeOf(i))).toEqual([1_100, 4_400, 7_700, 11_000]);
    expect(f.dueBy(4_399)).toBe(1);
    expect(f.dueBy(4_400)).toBe(2);
    // A thread that starts late (busy with the record before) is behind the wire: its own pace.
    const late = front(3_300, 20_000);
    expect(late.timeOf(1)).toBe(20_200);
    expect(late.endAt).toBe(20_400);
  });

  it('never places a page before its bytes and its share of the cost, in page order, ending no sooner than the cost', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 128 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e7 }),
      fc.double({ min: 0, max: 1e5, noNaN: true }), fc.integer({ min: 0, max: 1e7 }),
      (count, cost, firstAt, gapNs, late) => {
        const rec = streamRecord(RecordType.POSTCOPY_PAGE_DATA, 4_112 * count, count, new Int32Array(count));
        rec.firstAt = firstAt;
        rec.gapNs = gapNs;
        const f = new PlacementFront(), start = firstAt + late, share = Math.ceil(cost / count);
        f.begin(start, cost, rec);
        let prev = start;
        for (let i = 0; i < count; i++) {
          const t = f.timeOf(i);
          expect(t).toBeGreaterThanOrEqual(prev);
          expect(t).toBeGreaterThanOrEqual(Math.ceil(firstAt + i * gapNs) + share);
          expect(t).toBeGreaterThanOrEqual(start + Math.ceil((cost * (i + 1)) / count));
          prev = t;
        }
        expect(f.endAt).toBe(prev);
        // Every page but the last is placed one by one once its time has come.
        expect(f.dueBy(prev)).toBe(count - 1);
      },
    ), { numRuns: 500 });
  });

  it('a cut loses the pages still on the wire', () => {
    expect([999, 1_000, 4_299, 4_300, 20_000].map((t) => cutAt(record(3_300), t))).toEqual([0, 1, 1, 2, 4]);
    expect(cutAt(record(0), 0)).toBe(4);
    const f = front(3_300);
    f.advance(f.dueBy(5_000));
    f.lose(cutAt(record(3_300), 5_000));
    // Pages 0 and 1 came; page 1 is placed by 4 400, page 2 never.
    expect(f.placed).toBe(2);
    expect(f.nextAt).toBe(Infinity);
    expect(f.dueBy(1e9)).toBe(2);
  });

  it('a second cut never brings back the pages the first lost (soak seed 250836)', () => {
    const rec = record(3_300);
    expect(cutAt(rec, 4_300)).toBe(2);
    // The pager still waits on the record when the link is cut again, later than page 3's time.
    expect(cutAt(rec, 20_000)).toBe(2);
    expect(cutAt(rec, 2_000)).toBe(1);
    expect(rec.received).toBe(1);
  });
});
