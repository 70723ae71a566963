import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';

/** 4096 outstanding pages, half of them zero, pushed by the xen source at 1 Gbit/s. */
const run = (detection: 'legacy' | 'none', seed = 1) => new Emulator({
  seed,
  memory: { pages: 4096, zeroFraction: 0.5 },
  source: { zeroPageDetection: detection },
  workload: { kind: 'random', vcpus: 1 },
}).run();

describe('zero pages', () => {
  it('legacy detection sends zero pages as markers: counted as duplicate, no page payload', () => {
    const legacy = run('legacy'), none = run('none');
    let zeros = 0;
    for (let g = 0; g < 4096; g++) if (legacy.memory.isZero(g)) zeros++;
    expect(zeros).toBeGreaterThan(1900);
    expect(zeros).toBeLessThan(2200);
    const a = buildReport(legacy).ram, b = buildReport(none).ram;
    expect(a.duplicate).toBe(zeros);
    expect(a.normal).toBe(4096 - zeros);
    expect(b.duplicate).toBe(0);
    expect(b.normal).toBe(4096);
    // The same pages go in the same records; only the zero pages' data is missing.
    expect(b.transferred - a.transferred).toBe(zeros * 4096);
    expect(legacy.kernel.now).toBeLessThan(none.kernel.now * 0.6);
  });

  it('every page, zero or not, ends at the destination with the newest data', () => {
    const emu = run('legacy');
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
  });

  it('which pages are zero comes from the seed', () => {
    const count = (e: Emulator) => { let n = 0; for (let g = 0; g < 4096; g++) if (e.memory.isZero(g)) n++; return n; };
    expect(count(run('legacy', 7))).toBe(count(run('legacy', 7)));
    expect(count(run('legacy', 7))).not.toBe(count(run('legacy', 8)));
    expect(new Emulator({ memory: { pages: 64 } }).memory.zero).toBeNull();
  });

  it('a per-region map: zeroRanges are zero pages on top of the drawn fraction', () => {
    const emu = new Emulator({ memory: { pages: 4096, zeroRanges: [{ start: 100, count: 50 }, { start: 4000, count: 96 }] }, workload: { kind: 'idle' } }).run();
    const zero = Array.from({ length: 4096 }, (_, g) => emu.memory.isZero(g));
    expect(zero.filter(Boolean)).toHaveLength(146);
    expect([zero[99], zero[100], zero[149], zero[150], zero[4095]]).toEqual([false, true, true, false, true]);
    expect(buildReport(emu).ram.duplicate).toBe(146);
    expect(() => new Emulator({ memory: { pages: 64, zeroRanges: [{ start: 60, count: 8 }] } })).toThrow('memory.zeroRanges.0: range [60, 68) must lie within memory.pages (64)');
  });

  it('a one-page range request is loaded by the batched call, unless its page is zero', () => {
    // The device model maps zero page 0, then data page 4, each a range request of one page.
    const busy = (request: 'page' | 'range') => new Emulator({
      memory: { pages: 8, zeroRanges: [{ start: 0, count: 4 }] }, source: { policy: 'demand' },
      mapper: { mapping: { kind: 'ranges', ranges: [{ start: 0, count: 1 }, { start: 4, count: 1 }] }, order: 'sequential', request },
      workload: { kind: 'idle' }, limits: { stopAt: 'resume' },
    }).run().pager.busyNs;
    // Page 4 alone changes: batchLoadCallNs 7 500 + batchLoadPerPageNs 600 instead of loadPageNs 6 400.
    expect(busy('page')).toBe(36_300);
    expect(busy('range') - busy('page')).toBe(7_500 + 600 - 6_400);
  });
});
