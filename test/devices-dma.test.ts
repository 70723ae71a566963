import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DmaWriter, trackedRanges, type DmaSpec, type PageRange } from '../src/devices/dma.ts';
import { Rng } from '../src/kernel/rng.ts';
import { popcount32 } from '../src/memory/skip-list.ts';
import { DirtyLog } from '../src/precopy/dirty-log.ts';

// 4 KiB pages at 4.096e9 B/s: one page per 1000 ns, so write k of an interval from 0 ends at (k+1)·1000.
const PAGE = 4096, RATE = 4096e6;

function spec(region: PageRange[], over: Partial<DmaSpec> = {}): DmaSpec {
  return { region, bytesPerSec: RATE, pattern: 'sequential', tracking: 'iommu', unmapDelayNs: 1_000_000,
    iommuScanPerPageNs: 5, logMaxRanges: 256, logReportPerPageNs: 1, logFails: false, ...over };
}

/** A writer over `pages` pages with its log and ground-truth stale bitmap (nothing stale at first). */
function setup(pages: number, s: DmaSpec, seed = 1) {
  const stale = new Uint32Array((pages + 31) >>> 5);
  const log = new DirtyLog(pages, null, stale);
  const dma = new DmaWriter(s, PAGE, pages, new Rng(seed, 'dma0'));
  /** Drains the log: the pages reported, sorted; they are "sent", so no longer stale. */
  const drain = () => {
    const out: number[] = [];
    log.drain((w, bits) => {
      for (let b = 0; b < 32; b++) if ((bits >>> b) & 1) out.push(w * 32 + b);
      stale[w]! &= ~bits;
    });
    return out.sort((a, b) => a - b);
  };
  const staleList = () => {
    const out: number[] = [];
    for (let g = 0; g < pages; g++) if ((stale[g >>> 5]! >>> (g & 31)) & 1) out.push(g);
    return out;
  };
  return { stale, log, dma, drain, staleList };
}

const range = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, i) => lo + i);
const count = (a: Uint32Array) => a.reduce((n, w) => n + popcount32(w), 0);

describe('DmaWriter: writes', () => {
  it('sequential: a ring over the region in address order, paced with a carried remainder', () => {
    // Region: pages 10..29 and 40..49 (30 pages); 30..39 are not the device's.
    const { dma, log, stale, drain, staleList } = setup(128, spec([{ start: 40, count: 10 }, { start: 10, count: 20 }]));
    expect(dma.regionPages).toBe(30);
    // 12.5 µs = 12.5 pages: 12 writes (pages 10..21), half a page carried.
    dma.advance(0, 12_500, log, stale);
    expect(dma.writes).toBe(12);
    expect(staleList()).toEqual(range(10, 22));
    // Untracked by the CPU: nothing in the log until the IOMMU scan.
    expect(log.count).toBe(0);
    expect(dma.sync(12_500, log, false)).toBe(30 * 5);
    expect(drain()).toEqual(range(10, 22));
    // 0.5 + 19.5 = 20 pages: flat 12..29 (pages 22..29, 40..49), then wraps to flat 0..1 (pages 10, 11).
    dma.advance(12_500, 32_000, log, stale);
    expect(dma.writes).toBe(32);
    expect(staleList()).toEqual([10, 11, ...range(22, 30), ...range(40, 50)]);
    expect(dma.sync(32_000, log, false)).toBe(150);
    expect(drain()).toEqual([10, 11, ...range(22, 30), ...range(40, 50)]);
    // DMA is not a vCPU write: log.writes stays the vCPUs' count.
    expect(log.writes).toBe(0);
    expect([dma.reported, dma.costNs, dma.neverSeen()]).toEqual([32, 300, 0]);
  });

  it('random: same seed, same pages; draws stay in the region; a stopped device writes nothing', () => {
    const run = (seed: number) => {
      const { dma, log, stale } = setup(256, spec([{ start: 3, count: 50 }, { start: 100, count: 30 }], { pattern: 'random' }), seed);
      for (let t = 0; t < 100_000; t += 7_300) dma.advance(t, t + 7_300, log, stale);
      dma.sync(102_200, log, false);
      return { dma, stale: [...stale] };
    };
    const a = run(42), b = run(42), c = run(43);
    expect(a.stale).toEqual(b.stale);
    expect(a.stale).not.toEqual(c.stale);
    // 14 intervals of 7.3 pages: 102.2 pages → 102 writes.
    expect(a.dma.writes).toBe(102);
    const outside = a.stale.reduce((n, w, i) => n + popcount32(w & ~regionMask(i)), 0);
    expect(outside).toBe(0);
    function regionMask(w: number): number {
      let m = 0;
      for (let b = 0; b < 32; b++) {
        const g = w * 32 + b;
        if ((g >= 3 && g < 53) || (g >= 100 && g < 130)) m |= 1 << b;
      }
      return m;
    }
    // 100 draws over 4 pages (≥ 20 per page): every page is written.
    const many = setup(64, spec([{ start: 9, count: 4 }], { pattern: 'random' }));
    many.dma.advance(0, 100_000, many.log, many.stale);
    expect([many.dma.writes, many.staleList()]).toEqual([100, [9, 10, 11, 12]]);
    const { dma, log, stale } = setup(64, spec([{ start: 0, count: 64 }], { pattern: 'random' }));
    dma.stop(0, false);
    dma.advance(0, 1e6, log, stale);
    expect([dma.writes, count(stale)]).toEqual([0, 0]);
  });
});

describe('DmaWriter: tracking', () => {
  it('none: the whole region is dirty at every sync, written or not, at no extra cost', () => {
    const { dma, log, stale, drain } = setup(64, spec([{ start: 4, count: 6 }, { start: 20, count: 2 }], { tracking: 'none' }));
    expect(dma.sync(0, log, false)).toBe(0);
    expect(drain()).toEqual([4, 5, 6, 7, 8, 9, 20, 21]);
    dma.advance(0, 3_000, log, stale);
    expect(log.count).toBe(0);
    expect(dma.sync(3_000, log, false)).toBe(0);
    expect(log.count).toBe(8);
    expect(drain()).toEqual([4, 5, 6, 7, 8, 9, 20, 21]);
    expect([dma.reported, log.writes, count(stale)]).toEqual([16, 0, 0]);
  });

  it('iommu: a scan costs region pages × per-page and reports exactly the pages written since the last', () => {
    const { dma, log, stale, drain } = setup(100, spec([{ start: 0, count: 40 }, { start: 60, count: 40 }], { iommuScanPerPageNs: 7 }));
    expect(dma.sync(0, log, false)).toBe(80 * 7);
    expect(drain()).toEqual([]);
    dma.advance(0, 5_000, log, stale);
    expect(dma.sync(5_000, log, false)).toBe(560);
    expect(drain()).toEqual([0, 1, 2, 3, 4]);
    expect(dma.sync(6_000, log, false)).toBe(560);
    expect(drain()).toEqual([]);
    expect(dma.costNs).toBe(3 * 560);
  });

  it('device-log: ranges merged smallest gap first; merged gaps cost report time but are never dirty', () => {
    // Gaps: 2 (4..5), 10 (10..19), 1 (24), 11 (29..39). Three ranges: close gaps 1 and 2.
    const region = [{ start: 0, count: 4 }, { start: 6, count: 4 }, { start: 20, count: 4 }, { start: 25, count: 4 }, { start: 40, count: 4 }];
    expect(trackedRanges(region, 3)).toEqual([{ start: 0, count: 10 }, { start: 20, count: 9 }, { start: 40, count: 4 }]);
    expect(trackedRanges(region, 1)).toEqual([{ start: 0, count: 44 }]);
    expect(trackedRanges(region, 5)).toEqual(region);
    const { dma, log, stale, drain } = setup(64, spec(region, { tracking: 'device-log', logMaxRanges: 3, logReportPerPageNs: 2 }));
    expect([dma.regionPages, dma.coveredPages]).toEqual([20, 23]);
    dma.advance(0, 20_000, log, stale);
    expect(dma.sync(20_000, log, false)).toBe(46);
    expect(drain()).toEqual([0, 1, 2, 3, 6, 7, 8, 9, 20, 21, 22, 23, 25, 26, 27, 28, 40, 41, 42, 43]);
    expect(dma.sync(21_000, log, false)).toBe(46);
    expect(drain()).toEqual([]);
  });

  it('device-log with logFails: every report is "all dirty", at the same cost', () => {
    const { dma, log, drain } = setup(64, spec([{ start: 0, count: 4 }, { start: 8, count: 2 }], { tracking: 'device-log', logMaxRanges: 1, logFails: true }));
    expect(dma.sync(0, log, false)).toBe(10);
    expect(drain()).toEqual([0, 1, 2, 3, 8, 9]);
    expect(dma.sync(1, log, false)).toBe(10);
    expect(log.count).toBe(6);
  });

  describe('unmap: a write shows unmapDelayNs later', () => {
    // 64-page ring, 5 µs delay. 20 writes in [0, 20 µs), at 1..20 µs: those by 15 µs show by 20 µs.
    const start = () => {
      const w = setup(64, spec([{ start: 0, count: 64 }], { tracking: 'unmap', unmapDelayNs: 5_000 }));
      w.dma.advance(0, 20_000, w.log, w.stale);
      expect(w.dma.sync(20_000, w.log, false)).toBe(0);
      expect(w.drain()).toEqual(range(0, 15));
      expect([w.dma.pending, w.dma.neverSeen()]).toEqual([5, 5]);
      // 2 more writes (21, 22 µs: pages 20, 21); by 22.5 µs the writes of 16 and 17 µs show.
      w.dma.advance(20_000, 22_500, w.log, w.stale);
      expect(w.dma.sync(22_500, w.log, false)).toBe(0);
      expect(w.drain()).toEqual([15, 16]);
      expect(w.dma.pending).toBe(5);
      expect(w.log.writes).toBe(0);
      return w;
    };

    it('hot-unplug unmaps every buffer: all pending writes show', () => {
      const { dma, log, stale, drain, staleList } = start();
      dma.stop(22_500, true);
      dma.advance(22_500, 30_000, log, stale);
      dma.sync(30_000, log, true);
      expect(drain()).toEqual([17, 18, 19, 20, 21]);
      expect([dma.writes, dma.lost, dma.neverSeen(stale), staleList()]).toEqual([22, 0, 0, []]);
    });

    it('a VFIO stop without unmap: pending writes are never seen and stay stale', () => {
      const { dma, log, stale, drain, staleList } = start();
      dma.stop(22_500, false);
      dma.advance(22_500, 30_000, log, stale);
      dma.sync(30_000, log, true);
      expect(drain()).toEqual([]);
      expect([dma.lost, dma.neverSeen(stale), staleList()]).toEqual([5, 5, [17, 18, 19, 20, 21]]);
    });

    it('a final sync implies a stop without unmap', () => {
      const { dma, log, stale, drain } = start();
      dma.sync(22_500, log, true);
      dma.advance(22_500, 40_000, log, stale);
      expect(drain()).toEqual([]);
      expect([dma.writes, dma.lost, dma.neverSeen(stale)]).toEqual([22, 5, 5]);
    });

    it('a pending run across two ranges keeps each page\'s own write time', () => {
      // Pages 0..3 and 10..13, 6 µs delay. Writes at 1..8 µs: flat 0..7; by 8 µs those of 1, 2 µs show.
      const { dma, log, stale, drain } = setup(64, spec([{ start: 0, count: 4 }, { start: 10, count: 4 }], { tracking: 'unmap', unmapDelayNs: 6_000 }));
      dma.advance(0, 8_000, log, stale);
      expect(drain()).toEqual([0, 1]);
      // Writes at 9, 10 µs (pages 0, 1 again); by 10.5 µs the writes of 3, 4 µs show (pages 2, 3).
      dma.advance(8_000, 10_500, log, stale);
      expect(drain()).toEqual([2, 3]);
      // Writes at 11, 12 µs (pages 2, 3); by 12 µs those of 5, 6 µs show (pages 10, 11).
      dma.advance(10_500, 12_000, log, stale);
      expect(drain()).toEqual([10, 11]);
      expect([dma.writes, dma.pending]).toEqual([12, 6]);
    });

    it.each([['sequential', 8], ['random', 64]] as const)('%s: matches a write-by-write model over many pending writes', (pattern, P) => {
      // Write j at (j+1) µs to page j mod P (sequential) or the j-th draw (random); it shows 20 µs later.
      // Short intervals, then long ones: the pending ring grows while its head has moved.
      const { dma, log, stale, drain } = setup(64, spec([{ start: 0, count: P }], { tracking: 'unmap', unmapDelayNs: 20_000, pattern }), 9);
      const rng = new Rng(9, 'dma0'), page: number[] = [];
      const shown = (a: number, b: number) => [...new Set(page.filter((_, j) => (j + 1) * 1000 + 20_000 > a && (j + 1) * 1000 + 20_000 <= b))].sort((x, y) => x - y);
      let t = 0;
      for (const dt of [...new Array<number>(30).fill(1_000), 30_000, 30_000, 30_000, ...new Array<number>(10).fill(7_000)]) {
        dma.advance(t, t + dt, log, stale);
        while (page.length < (t + dt) / 1000) page.push(pattern === 'random' ? rng.int(0, P - 1) : page.length % P);
        expect(drain()).toEqual(shown(t, t + dt));
        t += dt;
      }
      expect([t, dma.pending]).toEqual([190_000, 20]);
      dma.stop(t, true);
      dma.sync(t, log, true);
      expect(drain()).toEqual(shown(t, Infinity));
      expect([dma.writes, dma.neverSeen()]).toEqual([190, 0]);
    });

    it('a final sync before the last advance: the writes up to it still count, and pending ones are lost', () => {
      const { dma, log, stale, drain } = setup(64, spec([{ start: 0, count: 64 }], { tracking: 'unmap', unmapDelayNs: 5_000 }));
      dma.sync(10_000, log, true);
      dma.advance(0, 20_000, log, stale);
      // As a stop at 10 µs: writes at 1..10 µs, those of 1..5 µs unmapped by then.
      expect(drain()).toEqual(range(0, 5));
      expect([dma.writes, dma.lost, dma.neverSeen(stale)]).toEqual([10, 5, 5]);
    });

    it('a stop inside an interval: writes up to it only, the unmaps after it are lost', () => {
      const { dma, log, stale, drain } = setup(64, spec([{ start: 0, count: 64 }], { tracking: 'unmap', unmapDelayNs: 5_000 }));
      dma.stop(10_000, false);
      dma.advance(0, 20_000, log, stale);
      // 10 writes (1..10 µs): those by 5 µs unmapped by the stop; 6..10 µs never.
      expect(drain()).toEqual(range(0, 5));
      expect([dma.writes, dma.lost, dma.neverSeen(stale)]).toEqual([10, 5, 5]);
    });
  });
});

describe('DmaWriter: property', () => {
  const rangeArb = fc.record({ start: fc.integer({ min: 0, max: 199 }), count: fc.integer({ min: 1, max: 60 }) });
  it('after a final sync every page written since its last report has been reported, but for a VFIO stop of unmap', () => {
    fc.assert(
      fc.property(
        fc.array(rangeArb, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('none', 'unmap', 'iommu', 'device-log'),
        fc.constantFrom('sequential', 'random'),
        fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 2_000_000 }), fc.integer({ min: 0, max: 30_000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.boolean()), { maxLength: 30 }),
        fc.integer(),
        (ranges, tracking, pattern, unmapAll, logFails, logMaxRanges, pagesPerSec, unmapDelayNs, ops, seed) => {
          const pages = 260, region = ranges.map((r) => ({ start: r.start, count: Math.min(r.count, pages - r.start) }));
          const { dma, log, stale, drain } = setup(pages, spec(region, { tracking, pattern, logFails, logMaxRanges, unmapDelayNs,
            bytesPerSec: pagesPerSec * PAGE }), seed);
          const inRegion = (g: number) => region.some((r) => g >= r.start && g < r.start + r.count);
          let t = 0;
          for (const [dt, doSync] of ops) {
            dma.advance(t, t + dt, log, stale);
            t += dt;
            if (doSync) {
              dma.sync(t, log, false);
              drain();
            }
          }
          dma.stop(t, unmapAll);
          dma.advance(t, t + 50_000, log, stale);
          dma.sync(t + 50_000, log, true);
          drain();
          for (let g = 0; g < pages; g++) if ((stale[g >>> 5]! >>> (g & 31)) & 1) expect(inRegion(g)).toBe(true);
          // What is still stale is exactly what the tracking never saw…
          expect(count(stale)).toBe(dma.neverSeen(stale));
          expect(log.writes).toBe(0);
          // …and that is nothing, except for unmap stopped without unmapping.
          if (tracking !== 'unmap' || unmapAll) expect(count(stale)).toBe(0);
          else expect(count(stale)).toBeLessThanOrEqual(dma.lost);
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });
});
