import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import { DirtyClear } from '../src/precopy/dirty-clear.ts';
import { scenarioSchema, type ScenarioInput } from '../src/scenario/schema.ts';

const of = (input: ScenarioInput) => DirtyClear.of(scenarioSchema.parse(input));

describe('QEMU\'s lazy clear of the dirty log (precopy.clearPerPageNs)', () => {
  it('is QEMU\'s, and only counted when its cost is set', () => {
    expect(of({ source: { policy: 'qemu' } })).toBeNull();
    expect(of({ source: { policy: 'xen' }, precopy: { clearPerPageNs: 3 } })).toBeNull();
    expect(of({ source: { policy: 'qemu' }, precopy: { clearPerPageNs: 3 } })).not.toBeNull();
  });

  it('clears a chunk before its first page is sent: all of it after setup, then what a sync found dirty', () => {
    // 200 pages in chunks of 64 (shift 6): 64, 64, 64 and 8 pages.
    const c = of({ memory: { pages: 200 }, source: { policy: 'qemu' }, precopy: { clearBitmapShift: 6, clearPerPageNs: 3 } })!;
    expect(c.sendRange(0, 32)).toBe(64 * 3);
    expect(c.sendRange(32, 64)).toBe(0); // cleared already
    expect(c.sendRange(60, 130)).toBe(2 * 64 * 3); // chunks 1 and 2
    expect(c.sendPages(new Int32Array([5, 199, 198]), 1, 2)).toBe(8 * 3); // the short last chunk, once
    // A sync: 3 pages of chunk 0 dirty (word 1), then word 1 again with one more; chunk 3's word 6 all set.
    c.dirtied(1, 0b111);
    c.dirtied(1, 0b1000);
    c.dirtied(6, ~0);
    expect(c.sendPages(new Int32Array([40, 41]), 0, 2)).toBe(4 * 3);
    expect(c.sendRange(192, 200)).toBe(8 * 3); // at most the chunk's pages
    expect(c.sendRange(0, 200)).toBe(0);
  });

  it('delays the migration thread by the clear: a precopy run of zero pages, where the thread sets the pace', () => {
    const run = (clearPerPageNs: number) => {
      const emu = new Emulator({
        memory: { pages: 4096, zeroFraction: 1 }, source: { policy: 'qemu' }, migration: { mode: 'precopy' },
        precopy: { clearBitmapShift: 10, clearPerPageNs }, workload: { kind: 'idle' },
      }).run();
      expect(checkRun(emu)).toEqual([]);
      return buildReport(emu)['total-time'];
    };
    // Four 1 024-page chunks cleared once each, 100 ns a page: 0.4096 ms more.
    expect(run(100) - run(0)).toBeCloseTo(0.4096, 3);
  });
});
