import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { NextMember } from '../src/memory/skip-list.ts';
import { buildReport } from '../src/metrics/report.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import { AdaptiveChunkPush } from '../src/source/adaptive-chunk.ts';
import { BubblingPush } from '../src/source/bubbling.ts';
import { XenPush, type PushPolicy } from '../src/source/policy.ts';
import { PfnSlab } from '../src/stream/slab.ts';
import { RecordType, pfnOf, streamRecord } from '../src/stream/records.ts';
import { PrefaultPush } from '../src/source/prefault.ts';

/** Acts as the source does: a requested page leaves the unsent set and is announced. */
function request(policy: PushPolicy, unsent: NextMember, g: number): void {
  unsent.remove(g);
  policy.requested(g);
}

/** Ends the slab's record and reads its pfns as the destination does (pfnOf: a run's first + i). */
function takePfns(slab: PfnSlab): number[] {
  const n = slab.pending, at = slab.take();
  const rec = streamRecord(RecordType.POSTCOPY_PAGE_DATA, 0, n, slab.data, at, 0, 0, 0, slab.takenRun);
  return Array.from({ length: n }, (_, i) => pfnOf(rec, i));
}

/** The next `count` background pages (all of them when count is omitted), taking each. */
function drain(policy: PushPolicy, unsent: NextMember, count = Infinity): number[] {
  const out: number[] = [];
  while (out.length < count) {
    const g = policy.nextBackground();
    if (g < 0) break;
    expect(unsent.has(g)).toBe(true);
    unsent.remove(g);
    out.push(g);
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('NextMember.prev', () => {
  it('finds the last member at or below an index', () => {
    const p = new NextMember(8);
    for (const g of [7, 5, 4, 0]) p.remove(g);
    expect([8, 7, 6, 5, 4, 3, 2, 1, 0, -1].map((i) => p.prev(i))).toEqual([6, 6, 6, 3, 3, 3, 2, 1, -1, -1]);
  });
});

describe('xen and qemu: where the scan goes on after a fault', () => {
  it('xen: after the last pfn of each FAULT record read, sent or not (handle_postcopy_faults); qemu: after a page it takes', () => {
    const xen = new NextMember(16), qemu = new NextMember(16);
    const x = new XenPush(xen, 'xen', true), q = new XenPush(qemu, 'qemu');
    expect([drain(x, xen, 4), drain(q, qemu, 4)]).toEqual([[0, 1, 2, 3], [0, 1, 2, 3]]);
    // A FAULT record asking for 9 then 2 (already sent): Xen restarts after 2, QEMU after 9.
    for (const [p, u] of [[x, xen], [q, qemu]] as const) {
      p.faulted(2);
      request(p, u, 9);
    }
    expect(drain(x, xen, 3)).toEqual([4, 5, 6]);
    expect(drain(q, qemu, 3)).toEqual([10, 11, 12]);
  });
});

describe('bubbling', () => {
  it('pushes X+1, X−1, X+2, X−2, … around the pivot on a 16-page guest', () => {
    const unsent = new NextMember(16);
    const p = new BubblingPush(unsent, 1, 'both');
    request(p, unsent, 5);
    expect(drain(p, unsent)).toEqual([6, 4, 7, 3, 8, 2, 9, 1, 10, 0, 11, 12, 13, 14, 15]);
  });

  it('skips pages already sent without losing its place in the distance order', () => {
    const unsent = new NextMember(16);
    unsent.remove(6);
    unsent.remove(7);
    const p = new BubblingPush(unsent, 1, 'both');
    request(p, unsent, 5);
    expect(drain(p, unsent, 8)).toEqual([4, 3, 8, 2, 9, 1, 10, 0]);
  });

  it('before any fault it scans linearly; a new fault drops the old bubble (one pivot)', () => {
    const unsent = new NextMember(16);
    const p = new BubblingPush(unsent, 1, 'both');
    expect(drain(p, unsent, 2)).toEqual([0, 1]);
    request(p, unsent, 8);
    expect(drain(p, unsent, 3)).toEqual([9, 7, 10]);
    request(p, unsent, 3);
    expect(drain(p, unsent)).toEqual([4, 2, 5, 6, 11, 12, 13, 14, 15]);
  });

  it('forward only: X+1, X+2, … to the end, then a linear scan of what is left', () => {
    const unsent = new NextMember(16);
    const p = new BubblingPush(unsent, 1, 'forward');
    request(p, unsent, 12);
    expect(drain(p, unsent)).toEqual([13, 14, 15, ...range(0, 12)]);
  });

  it('two pivots take turns, newest first, each from its own bubble', () => {
    const unsent = new NextMember(16);
    const p = new BubblingPush(unsent, 2, 'both');
    request(p, unsent, 4);
    expect(drain(p, unsent, 1)).toEqual([5]);
    request(p, unsent, 10);
    // Pivot 10: 11, 9, 12, 8, 13, 14, 15 (its left edge runs into pivot 4's pages);
    // pivot 4 (next: X−1): 3, 6, 2, 7, 1, 0.
    expect(drain(p, unsent)).toEqual([11, 3, 9, 6, 12, 2, 8, 7, 13, 1, 14, 0, 15]);
  });

  it('a third pivot with k = 2 replaces the oldest', () => {
    const unsent = new NextMember(32);
    const p = new BubblingPush(unsent, 2, 'forward');
    request(p, unsent, 0);
    request(p, unsent, 10);
    request(p, unsent, 20);
    expect(drain(p, unsent, 6)).toEqual([21, 11, 22, 12, 23, 13]);
  });
});

describe('adaptive-chunk', () => {
  it('grows the chunk 16, 32, 48 … per chunk sent, caps it, and resets it on a fault', () => {
    const unsent = new NextMember(4096);
    const p = new AdaptiveChunkPush(unsent, 16, 64);
    const sizes: number[] = [];
    for (let i = 0; i < 5; i++) {
      sizes.push(p.backgroundBudget());
      p.backgroundSent(p.chunk);
    }
    expect(sizes).toEqual([16, 32, 48, 64, 64]);
    p.faulted();
    expect(p.backgroundBudget()).toBe(16);
    p.backgroundSent(0); // an empty chunk is not a chunk sent
    expect(p.backgroundBudget()).toBe(16);
  });

  it('continues from the last requested pfn + 1 like xen', () => {
    const unsent = new NextMember(16);
    const p = new AdaptiveChunkPush(unsent, 16, 1024);
    expect(drain(p, unsent, 2)).toEqual([0, 1]);
    request(p, unsent, 12);
    expect(drain(p, unsent)).toEqual([13, 14, 15, ...range(2, 12)]);
  });

  it('in a run: records of 16, 32, 48, 64, 80 background pages while nothing faults', () => {
    const emu = new Emulator({
      memory: { pages: 256 },
      mapper: { mapping: { kind: 'none' } },
      source: { policy: 'adaptive-chunk' },
    });
    const byTime = new Map<number, number[]>();
    emu.events.on('page-loaded', (e) => byTime.set(e.time, [...(byTime.get(e.time) ?? []), e.gfn]));
    emu.run();
    const records = [...byTime.values()];
    expect(records.map((r) => r.length)).toEqual([16, 32, 48, 64, 80, 16]);
    expect(records.flat()).toEqual(range(0, 256));
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('takeBackground', () => {
  it('takes the pages nextBackground would, in its order, for xen and prefault', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.nat(299), { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (pages, requests, takes, prefault) => {
          const make = (u: NextMember) => (prefault ? new PrefaultPush(u, 3, 2) : new XenPush(u));
          const a = new NextMember(pages), b = new NextMember(pages);
          const pa = make(a), pb = make(b);
          for (const [i, max] of takes.entries()) {
            const g = requests[i];
            if (g !== undefined && g < pages && a.has(g)) {
              request(pa, a, g);
              request(pb, b, g);
            }
            const slab = new PfnSlab();
            const n = pb.takeBackground(slab, max);
            expect(slab.pending).toBe(n);
            expect(takePfns(slab)).toEqual(drain(pa, a, max));
            for (let p = 0; p < pages; p++) expect(b.has(p)).toBe(a.has(p));
          }
        },
      ),
      { numRuns: 300, seed: 13 },
    );
  });
});

describe('PfnSlab', () => {
  it('reuses an array once every record taken from it is released, never before', () => {
    const slab = new PfnSlab(undefined, 4);
    const pushAll = (...gs: number[]) => { for (const g of gs) slab.push(g); };
    pushAll(1, 2, 3);
    const a = slab.data, r1 = slab.take();
    pushAll(4, 5, 6);
    const b = slab.data, r2 = slab.take();
    expect([r1, r2, b === a]).toEqual([0, 0, false]);
    expect(Array.from(b.subarray(0, 3))).toEqual([4, 5, 6]);
    slab.release(a, 3);
    pushAll(7, 8); // b is full: the released `a` takes over, b's record still unreleased
    expect(slab.data).toBe(a);
    expect(Array.from(b.subarray(0, 3))).toEqual([4, 5, 6]);
    pushAll(9, 10, 11); // `a` full: b is not released, so a fresh array
    expect([slab.data === a, slab.data === b]).toEqual([false, false]);
    expect(Array.from(a.subarray(0, 2))).toEqual([7, 8]);
  });

  it('says whether the record it took is one ascending run of pfns, across runs, single pushes and a renewal', () => {
    const slab = new PfnSlab(undefined, 8);
    const took = (fill: () => void) => {
      fill();
      slab.take();
      return slab.takenRun;
    };
    expect(took(() => { slab.pushRun(64, 4); slab.push(68); slab.pushRun(69, 2); })).toBe(true);
    // The 8-slot array renews inside this record: the run goes on.
    expect(took(() => { slab.push(3); slab.pushRun(4, 5); })).toBe(true);
    expect(took(() => { slab.push(5); slab.push(7); })).toBe(false);
    expect(took(() => { slab.pushRun(10, 2); slab.pushRun(11, 2); })).toBe(false);
    expect(took(() => { slab.push(9); slab.push(8); })).toBe(false);
    // A new record starts a new run; an empty one is none.
    expect(took(() => slab.push(100))).toBe(true);
    expect(took(() => {})).toBe(false);
  });

  it('takes a run longer than its array whole, empty or not (it used to renew for ever)', () => {
    const slab = new PfnSlab(undefined, 8);
    slab.pushRun(100, 20);
    expect(takePfns(slab)).toEqual(range(100, 120));
    slab.push(5);
    slab.pushRun(6, 30);
    expect([takePfns(slab), slab.takenRun]).toEqual([range(5, 36), true]);
  });

  it('stores a run\'s first pfn alone, and every pfn once a push breaks the run, across a renewal', () => {
    const slab = new PfnSlab(undefined, 8);
    slab.pushRun(40, 6);
    const first = slab.data, at = slab.take();
    expect([slab.takenRun, first[at], first[at + 1]]).toEqual([true, 40, 0]);
    // A run the 8-slot array renews in the middle of, then broken by a single push and a run.
    slab.pushRun(0, 6);
    slab.pushRun(6, 4);
    slab.push(100);
    slab.pushRun(200, 2);
    const data = slab.data, from = slab.take();
    expect([slab.takenRun, Array.from(data.subarray(from, from + 13))]).toEqual([false, [...range(0, 10), 100, 200, 201]]);
    slab.pushRun(7, 3);
    slab.pushRun(20, 2);
    expect(takePfns(slab)).toEqual([7, 8, 9, 20, 21]);
  });

  it('a range request larger than the slab, in records as large (source.recordPages 40,000), completes', () => {
    const emu = new Emulator({
      memory: { pages: 40_000 },
      source: { policy: 'demand', recordPages: 40_000 },
      mapper: { mapping: { kind: 'all' }, request: 'range' },
    }).run();
    expect([emu.status, emu.source.pagesDemanded, emu.pager.pagesLoaded, emu.mapper.requests]).toEqual(['completed', 40_000, 40_000, 1]);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('prefault', () => {
  it('sends F pages after and B before each requested page, then scans on after the last', () => {
    const unsent = new NextMember(32);
    unsent.remove(12);
    const p = new PrefaultPush(unsent, 4, 2);
    request(p, unsent, 10);
    expect(drain(p, unsent, 8)).toEqual([11, 13, 14, 8, 9, 15, 16, 17]);
    request(p, unsent, 30);
    expect(drain(p, unsent, 4)).toEqual([31, 28, 29, 0]);
  });

  it('in a run: the record with the requested page carries its prefault pages, then the scan', () => {
    const emu = new Emulator({
      memory: { pages: 8192 },
      link: { latencyNs: 10_000 },
      backChannel: { latencyNs: 10_000 },
      mapper: { mapping: { kind: 'none' } },
      source: { policy: 'prefault', prefaultAfter: 4, recordPages: 8 },
    });
    const loadedAt = new Map<number, number>();
    emu.events.on('page-loaded', (e) => loadedAt.set(e.gfn, e.time));
    while (emu.resumedAt < 0) emu.step();
    expect(emu.vcpus.touch(0, 8000, false)).toBe(false);
    emu.run();
    const t = loadedAt.get(8000)!;
    expect([...loadedAt].filter(([, at]) => at === t).map(([g]) => g)).toEqual(range(8000, 8008));
    expect(emu.source.pagesDemanded).toBe(1);
    expect(checkRun(emu)).toEqual([]);
  });

  it('with no neighbours it is xen', () => {
    const base: ScenarioInput = {
      memory: { pages: 4096 },
      mapper: { mapping: { kind: 'none' } },
      workload: { kind: 'hot-set', hotPages: 64, vcpus: 2 },
    };
    const xen = buildReport(new Emulator({ ...base, source: { policy: 'xen' } }).run());
    const pre = buildReport(new Emulator({ ...base, source: { policy: 'prefault', prefaultAfter: 0 } }).run());
    expect(pre['total-time']).toBe(xen['total-time']);
    expect(pre.emulator['fault-latency']).toEqual(xen.emulator['fault-latency']);
  });
});

describe('scenario fields', () => {
  it('rejects a chunk cap below the first chunk', () => {
    expect(() => new Emulator({ source: { chunkMinPages: 32, chunkMaxPages: 16 } })).toThrow(ScenarioError);
  });
});

describe('network and minor faults', () => {
  it('counts each outstanding page once, by whether it was present at its first touch', () => {
    const emu = new Emulator({
      memory: { pages: 512, outstanding: { kind: 'ranges', ranges: [{ start: 0, count: 256 }] } },
      ring: { capacity: 4 },
      link: { latencyNs: 10_000 },
      backChannel: { latencyNs: 10_000 },
      mapper: { mapping: { kind: 'none' } },
      // The vCPU sweeps 256..511, which were never outstanding: those touches count nowhere.
      workload: { kind: 'sequential', vcpus: 1, region: { start: 256, count: 256 } },
    });
    while (emu.resumedAt < 0) emu.step();
    expect(emu.vcpus.touch(0, 200, true)).toBe(false); // missing: a network fault
    while (emu.memory.pending > 0 || emu.vcpus.isBlocked(0)) emu.step();
    expect(emu.vcpus.touch(0, 200, false)).toBe(true); // second touch: not counted again
    expect(emu.vcpus.touch(0, 10, false)).toBe(true); // pushed before the guest needed it: minor
    expect(emu.vcpus.touch(0, 11, true)).toBe(true); // minor
    expect(emu.vcpus.touch(0, 300, false)).toBe(true); // never outstanding
    emu.run();
    expect(buildReport(emu).emulator.faults).toEqual({ vcpu: 1, spurious: 0, foreign: 0, network: 1, minor: 2, 'network-share': 0.333333 });
  });

  it('is null when the guest touched no outstanding page', () => {
    const emu = new Emulator({ memory: { pages: 64 }, mapper: { mapping: { kind: 'none' } } }).run();
    expect(buildReport(emu).emulator.faults).toEqual({ vcpu: 0, spurious: 0, foreign: 0, network: 0, minor: 0, 'network-share': null });
  });
});

describe('every push policy on random small scenarios', () => {
  const policies = ['xen', 'bubbling', 'adaptive-chunk', 'prefault'] as const;
  const scenario = fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 32 }),
    pages: fc.integer({ min: 16, max: 1024 }),
    fraction: fc.double({ min: 0.1, max: 1, noNaN: true }),
    capacity: fc.integer({ min: 1, max: 16 }),
    recordPages: fc.integer({ min: 1, max: 64 }),
    vcpus: fc.integer({ min: 1, max: 3 }),
    kind: fc.constantFrom('sequential' as const, 'random' as const, 'hot-set' as const),
    pivots: fc.integer({ min: 1, max: 8 }),
    bubbleDirection: fc.constantFrom('both' as const, 'forward' as const),
    prefaultAfter: fc.integer({ min: 0, max: 32 }),
    prefaultBefore: fc.integer({ min: 0, max: 8 }),
    chunkMinPages: fc.integer({ min: 1, max: 32 }),
    rateMbps: fc.constantFrom(100, 1000, 10_000),
  });
  for (const policy of policies) {
    it(`${policy}: finishes soundly, every outstanding page sent once`, () => {
      fc.assert(fc.property(scenario, (s) => {
        const emu = new Emulator({
          seed: s.seed,
          memory: { pages: s.pages, outstanding: { kind: 'fraction', fraction: s.fraction } },
          ring: { capacity: s.capacity },
          link: { rateMbps: s.rateMbps },
          source: {
            policy, recordPages: s.recordPages, pivots: s.pivots, bubbleDirection: s.bubbleDirection,
            prefaultAfter: s.prefaultAfter, prefaultBefore: s.prefaultBefore,
            chunkMinPages: s.chunkMinPages, chunkMaxPages: s.chunkMinPages * 8,
          },
          mapper: { mapping: { kind: 'none' } },
          workload: { kind: s.kind, vcpus: s.vcpus, hotPages: Math.max(1, s.pages >> 3), thinkNs: 2_000 },
        }).run();
        expect(emu.finished).toBe(true);
        expect(checkRun(emu)).toEqual([]);
        expect(emu.source.pagesPushed + emu.source.pagesDemanded).toBe(emu.memory.outstandingAtStart);
        const f = buildReport(emu).emulator.faults;
        expect(f.network + f.minor).toBeLessThanOrEqual(emu.memory.outstandingAtStart);
        expect(f.network).toBeLessThanOrEqual(f.vcpu);
      }), { numRuns: 25 });
    });
  }
});
