import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { FRESH } from '../src/memory/arena.ts';
import { buildReport } from '../src/metrics/report.ts';
import { RequestLatency } from '../src/pager/request-latency.ts';

describe('RequestLatency', () => {
  it('measures a page from its first request to its placement, once', () => {
    const r = new RequestLatency(1 << 20, FRESH);
    r.asked(5, 1_000);
    r.asked(5, 2_000); // asked again: the first time counts
    r.asked(900_000, 1_500);
    r.placed(7, 3_000); // never asked for
    r.placed(5, 4_000);
    r.placed(5, 5_000); // not asked for any more
    r.placedRange(899_990, 900_010, 10_000);
    expect(r.log.count).toBe(2);
    expect(r.log.percentiles([0, 100])).toEqual([3_000, 8_500]);
  });

  it('a dropped page leaves no latency', () => {
    const r = new RequestLatency(64, FRESH);
    r.asked(3, 0);
    r.forget(3);
    r.placed(3, 100);
    expect(r.log.count).toBe(0);
  });

  it('agrees with a Map over random asks, placements (single and runs) and drops', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('ask' as const), g: fc.nat(2_047) }),
      fc.record({ k: fc.constant('place' as const), g: fc.nat(2_047) }),
      fc.record({ k: fc.constant('run' as const), g: fc.nat(2_047), n: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ k: fc.constant('drop' as const), g: fc.nat(2_047) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
      const r = new RequestLatency(2_048, FRESH), ref = new Map<number, number>(), want: number[] = [];
      ops.forEach((o, t) => {
        if (o.k === 'ask') {
          r.asked(o.g, t);
          if (!ref.has(o.g)) ref.set(o.g, t);
        } else if (o.k === 'drop') {
          r.forget(o.g);
          ref.delete(o.g);
        } else {
          const to = o.k === 'run' ? Math.min(2_048, o.g + o.n) : o.g + 1;
          if (o.k === 'run') r.placedRange(o.g, to, t);
          else r.placed(o.g, t);
          for (let g = o.g; g < to; g++) {
            if (ref.has(g)) want.push(t - ref.get(g)!);
            ref.delete(g);
          }
        }
      });
      expect(r.log.count).toBe(want.length);
      expect(r.log.sum).toBe(want.reduce((a, b) => a + b, 0));
    }), { numRuns: 300 });
  });
});

describe('request latency in a run', () => {
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
