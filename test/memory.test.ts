import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { NextMember } from '../src/memory/skip-list.ts';
import { GuestMemory, PageState, outstandingSet } from '../src/memory/guest-memory.ts';
import { Rng } from '../src/kernel/rng.ts';
import { Waiters } from '../src/pager/waiters.ts';
import { LATENCY_BUCKETS, LatencyLog } from '../src/metrics/latency.ts';
import { Arena } from '../src/memory/arena.ts';

describe('NextMember', () => {
  it('starts with every index a member', () => {
    const n = new NextMember(5);
    expect([0, 1, 2, 3, 4].map((i) => n.has(i))).toEqual([true, true, true, true, true]);
    expect([0, 1, 2, 3, 4].map((i) => n.next(i))).toEqual([0, 1, 2, 3, 4]);
    expect(n.has(5)).toBe(false);
    expect(n.next(5)).toBe(5);
  });

  it('nextGap finds the first non-member, bounded by `to` (across words)', () => {
    const n = new NextMember(100);
    n.removeRange(70, 72);
    expect([n.nextGap(0), n.nextGap(70), n.nextGap(72), n.nextGap(99)]).toEqual([70, 70, 100, 100]);
    expect([n.nextGap(0, 40), n.nextGap(0, 70), n.nextGap(0, 71), n.nextGap(5, 5), n.nextGap(72, 500)]).toEqual([40, 70, 70, 5, 100]);
    const empty = new NextMember(64, undefined, false);
    expect([empty.nextGap(3), empty.nextGap(3, 10)]).toEqual([3, 3]);
  });

  it('next skips removed indices, including whole runs', () => {
    const n = new NextMember(10);
    for (const i of [2, 3, 4, 5, 7]) n.remove(i);
    expect(n.has(1)).toBe(true);
    expect(n.has(2)).toBe(false);
    expect(n.has(5)).toBe(false);
    expect(n.has(6)).toBe(true);
    expect(n.next(2)).toBe(6);
    expect(n.next(3)).toBe(6);
    expect(n.next(6)).toBe(6);
    expect(n.next(7)).toBe(8);
    expect(n.next(1)).toBe(1);
    // Removing the member that ended a run joins the runs.
    n.remove(6);
    expect(n.next(2)).toBe(8);
    expect(n.next(0)).toBe(0);
  });

  it('returns size when nothing is left at or after i', () => {
    const n = new NextMember(6);
    for (const i of [3, 4, 5]) n.remove(i);
    expect(n.next(3)).toBe(6);
    expect(n.next(5)).toBe(6);
    expect(n.next(6)).toBe(6);
    for (const i of [0, 1, 2]) n.remove(i);
    expect(n.next(0)).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map((i) => n.has(i))).toEqual([false, false, false, false, false, false]);
  });

  it('returns size when queried from beyond the end', () => {
    // Documented: "the first member at or after i, or `size` when none is left".
    const n = new NextMember(5);
    expect(n.next(7)).toBe(5);
  });

  it('removing twice is harmless', () => {
    const n = new NextMember(4);
    n.remove(1);
    n.remove(2);
    expect(n.next(1)).toBe(3);
    n.remove(1);
    expect(n.next(1)).toBe(3);
    expect(n.next(0)).toBe(0);
    expect(n.has(1)).toBe(false);
  });

  it('a zero-size set is always at its end', () => {
    const n = new NextMember(0);
    expect(n.next(0)).toBe(0);
    expect(n.has(0)).toBe(false);
  });

  it('agrees with a naive Set model (property)', () => {
    type Op = { op: 'remove' | 'next' | 'has'; at: number };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.record({ op: fc.constantFrom<'remove' | 'next' | 'has'>('remove', 'next', 'has'), at: fc.nat() }), { maxLength: 200, size: 'max' }),
        (size, ops: Op[]) => {
          const n = new NextMember(size);
          const model = new Set(Array.from({ length: size }, (_, i) => i));
          const nextOf = (i: number) => {
            for (let j = i; j < size; j++) if (model.has(j)) return j;
            return size;
          };
          for (const { op, at } of ops) {
            if (op === 'remove') {
              const i = at % size;
              n.remove(i);
              model.delete(i);
            } else if (op === 'next') {
              const i = at % (size + 1);
              expect(n.next(i)).toBe(nextOf(i));
            } else {
              const i = at % (size + 1);
              expect(n.has(i)).toBe(model.has(i));
            }
          }
          for (let i = 0; i <= size; i++) {
            expect(n.next(i)).toBe(nextOf(i));
            expect(n.has(i)).toBe(model.has(i));
          }
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });

  it('addRange and removeRange agree with a naive model, for spans of a few words and of many (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2500 }),
        fc.array(fc.record({ add: fc.boolean(), from: fc.nat(), len: fc.nat({ max: 1200 }) }), { minLength: 1, maxLength: 12 }),
        (size, ops) => {
          const n = new NextMember(size, undefined, false);
          const model = new Uint8Array(size);
          for (const { add, from, len } of ops) {
            const f = from % size, t = Math.min(size, f + len);
            if (add) n.addRange(f, t);
            else n.removeRange(f, t);
            model.fill(add ? 1 : 0, f, t);
          }
          const members = [...model.keys()].filter((i) => model[i] === 1);
          expect(n.count()).toBe(members.length);
          expect(n.countIn(0, size)).toBe(members.length);
          // next() walks the members through the summary words: every one in order, then the end.
          const walked: number[] = [];
          for (let i = n.next(0); i < size; i = n.next(i + 1)) walked.push(i);
          expect(walked).toEqual(members);
        },
      ),
      { numRuns: 200, seed: 12 },
    );
  });
});

function memory(pages: number, spec: Parameters<typeof outstandingSet>[0], seed = 1): GuestMemory {
  return new GuestMemory(pages, 4096, outstandingSet(spec, pages, new Rng(seed, 'outstanding')));
}

const statesOf = (m: GuestMemory) => Array.from(m.state);

describe('GuestMemory outstanding sets', () => {
  it('kind all: every page pending', () => {
    const m = memory(16, { kind: 'all' });
    expect(m.pending).toBe(16);
    expect(m.outstandingAtStart).toBe(16);
    expect(statesOf(m)).toEqual(new Array(16).fill(PageState.OUTSTANDING));
    expect(m.unasked.next(0)).toBe(0);
    expect(Array.from({ length: m.pages }, (_, g) => m.sourceVersion(g))).toEqual(new Array(16).fill(2));
    expect(Array.from({ length: m.pages }, (_, g) => m.destVersion(g))).toEqual(new Array(16).fill(0));
    expect(m.isReady(3)).toBe(false);
    expect(m.isSettled(3)).toBe(false);
    expect(m.pageSize).toBe(4096);
  });

  it('kind ranges: only the ranges are pending; overlaps count once', () => {
    const m = memory(10, { kind: 'ranges', ranges: [{ start: 2, count: 3 }, { start: 4, count: 3 }] });
    expect(m.pending).toBe(5);
    expect(m.outstandingAtStart).toBe(5);
    const O = PageState.OUTSTANDING, R = PageState.READY;
    expect(statesOf(m)).toEqual([R, R, O, O, O, O, O, R, R, R]);
    expect(Array.from({ length: m.pages }, (_, g) => m.sourceVersion(g))).toEqual([1, 1, 2, 2, 2, 2, 2, 1, 1, 1]);
    expect(Array.from({ length: m.pages }, (_, g) => m.destVersion(g))).toEqual([1, 1, 0, 0, 0, 0, 0, 1, 1, 1]);
    expect(m.unasked.next(0)).toBe(2);
    expect(m.unasked.next(7)).toBe(10);
    expect(m.unasked.has(1)).toBe(false);
    expect(m.unasked.has(6)).toBe(true);
    expect(m.isReady(0)).toBe(true);
    expect(m.isSettled(0)).toBe(true);
  });

  it('kind fraction: about that fraction pending, reproducible from the seed', () => {
    const m = memory(4000, { kind: 'fraction', fraction: 0.25 }, 99);
    const outstanding = statesOf(m).filter((s) => s === PageState.OUTSTANDING).length;
    expect(m.pending).toBe(outstanding);
    expect(outstanding).toBeGreaterThan(900);
    expect(outstanding).toBeLessThan(1100);
    const again = memory(4000, { kind: 'fraction', fraction: 0.25 }, 99);
    expect(statesOf(again)).toEqual(statesOf(m));
    const other = memory(4000, { kind: 'fraction', fraction: 0.25 }, 100);
    expect(statesOf(other)).not.toEqual(statesOf(m));
    // Unasked is exactly the outstanding set.
    for (let g = 0; g < 4000; g++) expect(m.unasked.has(g)).toBe(m.state[g] === PageState.OUTSTANDING);
  });

  it('kind fraction 1 makes every page pending', () => {
    expect(memory(100, { kind: 'fraction', fraction: 1 }).pending).toBe(100);
  });

  it('every page outstanding reads the same whether one range or several cover it (the whole guest skips the passes over the words)', () => {
    const whole = memory(70, { kind: 'ranges', ranges: [{ start: 0, count: 70 }] });
    const pieces = memory(70, { kind: 'ranges', ranges: [{ start: 0, count: 40 }, { start: 33, count: 37 }] });
    for (const m of [whole, pieces]) {
      expect(m.pending).toBe(70);
      expect(m.outstandingAtStart).toBe(70);
      expect(Array.from({ length: 70 }, (_, g) => m.destVersion(g))).toEqual(new Array(70).fill(0));
      expect(m.pendingIn(0, 70)).toBe(70);
      expect(m.firstPendingIn(5, 70)).toBe(5);
    }
    whole.loadRun(10, 50);
    expect(whole.pendingIn(0, 70)).toBe(30);
    expect(whole.destVersion(10)).toBe(2);
    expect(whole.firstPendingIn(10, 70)).toBe(50);
  });
});

describe('GuestMemory transitions', () => {
  it('load makes a pending page ready with the source content', () => {
    const m = memory(4, { kind: 'all' });
    expect(m.load(1)).toBe(true);
    expect(m.state[1]).toBe(PageState.READY);
    expect(m.destVersion(1)).toBe(2);
    expect(m.pending).toBe(3);
    expect(m.isReady(1)).toBe(true);
    expect(m.isSettled(1)).toBe(true);
    expect(m.unasked.has(1)).toBe(false);
    expect(m.unasked.next(1)).toBe(2);
  });

  it('loading a page twice throws', () => {
    const m = memory(4, { kind: 'all' });
    m.load(2);
    expect(() => m.load(2)).toThrow(/invariant: page 2 loaded twice/);
    expect(m.pending).toBe(3);
    // A page that was never outstanding is already there.
    const p = memory(4, { kind: 'ranges', ranges: [{ start: 0, count: 1 }] });
    expect(() => p.load(3)).toThrow(/page 3 loaded twice/);
  });

  it('writes are only legal to present pages and bump the destination version', () => {
    const m = memory(4, { kind: 'ranges', ranges: [{ start: 2, count: 2 }] });
    expect(() => m.write(3)).toThrow(/invariant: write to missing page 3/);
    m.write(0);
    m.write(0);
    expect(m.destVersion(0)).toBe(3);
    m.markRequested(3);
    expect(() => m.write(3)).toThrow(/write to missing page 3/);
    m.load(3);
    m.write(3);
    expect(m.destVersion(3)).toBe(3);
    m.drop(2);
    expect(() => m.write(2)).toThrow(/write to missing page 2/);
  });

  it('counts writes up to 255, so the destination version never falls below the source\'s', () => {
    const m = memory(2, { kind: 'ranges', ranges: [{ start: 1, count: 1 }] });
    m.load(1);
    for (let i = 0; i < 300; i++) {
      m.write(0);
      m.write(1);
    }
    expect([m.destVersion(0), m.destVersion(1)]).toEqual([1 + 255, 2 + 255]);
    // A page made present without a load holds no source copy: version 0, older than the source's 2.
    const n = memory(2, { kind: 'all' });
    n.state[0] = PageState.READY;
    expect(n.destVersion(0)).toBe(0);
    expect(n.sourceVersion(0)).toBe(2);
  });

  it('drop settles a pending page once; a dropped page discards its load', () => {
    const m = memory(4, { kind: 'all' });
    m.drop(0);
    expect(m.state[0]).toBe(PageState.DROPPED);
    expect(m.pending).toBe(3);
    expect(m.dropped).toBe(1);
    expect(m.isSettled(0)).toBe(true);
    expect(m.isReady(0)).toBe(false);
    expect(m.unasked.has(0)).toBe(false);
    m.drop(0); // again: no change
    expect(m.pending).toBe(3);
    expect(m.dropped).toBe(1);
    expect(m.load(0)).toBe(false);
    expect(m.pending).toBe(3);
    expect(m.state[0]).toBe(PageState.DROPPED);

    m.load(1);
    m.drop(1); // ready pages stay ready
    expect(m.state[1]).toBe(PageState.READY);
    expect(m.dropped).toBe(1);
    expect(m.pending).toBe(2);

    m.markRequested(2); // requested pages can still be dropped
    m.drop(2);
    expect(m.state[2]).toBe(PageState.DROPPED);
    expect(m.dropped).toBe(2);
    expect(m.pending).toBe(1);
  });

  it('markRequested: true for outstanding or paging-in pages, false once requested, ready or dropped', () => {
    const m = memory(5, { kind: 'ranges', ranges: [{ start: 0, count: 4 }] });
    expect(m.markRequested(0)).toBe(true);
    expect(m.state[0]).toBe(PageState.REQUESTED);
    expect(m.unasked.has(0)).toBe(false);
    expect(m.markRequested(0)).toBe(false);
    expect(m.pending).toBe(4); // requested pages are still pending

    m.markPagingIn(1);
    expect(m.state[1]).toBe(PageState.PAGING_IN);
    expect(m.unasked.has(1)).toBe(false);
    expect(m.unasked.next(0)).toBe(2);
    expect(m.markRequested(1)).toBe(true);
    expect(m.state[1]).toBe(PageState.REQUESTED);

    m.load(2);
    expect(m.markRequested(2)).toBe(false);
    expect(m.state[2]).toBe(PageState.READY);
    m.drop(3);
    expect(m.markRequested(3)).toBe(false);
    expect(m.state[3]).toBe(PageState.DROPPED);
    expect(m.markRequested(4)).toBe(false); // never outstanding
    expect(m.pending).toBe(2);
  });
});

describe('GuestMemory range marks', () => {
  it('markPagingInRange turns only outstanding pages paging-in; markRequestedRange counts the pages it requests', () => {
    const m = memory(40, { kind: 'ranges', ranges: [{ start: 0, count: 36 }] });
    m.load(3);
    m.drop(4);
    m.markRequested(5);
    m.markPagingInRange(2, 38);
    expect([2, 3, 4, 5, 6, 35, 36].map((g) => m.state[g])).toEqual([
      PageState.PAGING_IN, PageState.READY, PageState.DROPPED, PageState.REQUESTED, PageState.PAGING_IN, PageState.PAGING_IN, PageState.READY,
    ]);
    expect([m.unasked.next(0), m.unasked.next(2)]).toEqual([0, 40]);
    // 0 and 1 outstanding, 2 and 6..35 paging in: 33 requested; ready, dropped and requested ones are not.
    expect(m.markRequestedRange(0, 40)).toBe(33);
    expect(m.markRequestedRange(0, 40)).toBe(0);
    expect(m.unasked.next(0)).toBe(40);
    expect([0, 1, 2, 3, 4, 6].map((g) => m.state[g])).toEqual([
      PageState.REQUESTED, PageState.REQUESTED, PageState.REQUESTED, PageState.READY, PageState.DROPPED, PageState.REQUESTED,
    ]);
    expect(() => m.markRequestedRange(30, 41)).toThrow(/markRequestedRange/);
    expect(() => m.markPagingInRange(5, 4)).toThrow(/markPagingInRange/);
  });
});

describe('GuestMemory.loadRun and pendingIn', () => {
  it('loads a run of pending pages at once, keeps the loaded-twice invariant, declines a run with a dropped page', () => {
    const m = memory(70, { kind: 'all' });
    m.markRequested(40);
    expect(m.loadRun(3, 68)).toBe(true);
    expect(m.pending).toBe(5);
    expect([2, 3, 40, 67, 68].map((g) => m.isReady(g))).toEqual([false, true, true, true, false]);
    expect([m.unasked.next(3), m.destVersion(67)]).toEqual([68, 2]);
    expect(() => m.loadRun(66, 70)).toThrow(/invariant: page 66 loaded twice/);
    expect([m.pendingIn(0, 70), m.pendingIn(60, 69)]).toEqual([5, 1]);
    m.drop(69);
    expect(m.loadRun(68, 70)).toBe(false);
    expect([m.isReady(68), m.pending]).toEqual([false, 4]);
    expect([m.pendingIn(0, 70), m.pendingIn(60, 69), m.pendingIn(5, 5)]).toEqual([4, 1, 0]);
    expect(() => m.pendingIn(60, 71)).toThrow(/pendingIn/);
  });
});

describe('Waiters', () => {
  /** What a release tells: a request per page, `request×pages` for a range's several at once. */
  const told = (out: (number | string)[]) => ({ arrived: (r: number, n: number) => void out.push(n === 1 ? r : `${r}×${n}`) });
  const released = (w: Waiters, gfn: number) => {
    const out: (number | string)[] = [];
    w.release(gfn, told(out));
    return out;
  };

  it('release hands back every request added for the gfn, newest first, and forgets them', () => {
    const w = new Waiters(8);
    w.add(3, 10);
    w.add(5, 20);
    w.add(3, 11);
    w.add(3, 12);
    expect(w.live).toBe(4);
    expect(released(w, 3)).toEqual([12, 11, 10]);
    expect(w.live).toBe(1);
    expect(released(w, 3)).toEqual([]);
    expect(released(w, 4)).toEqual([]);
    expect(released(w, 5)).toEqual([20]);
    expect(w.live).toBe(0);
  });

  it('releaseRange releases page by page in order, across words', () => {
    const w = new Waiters(100), out: (number | string)[] = [];
    for (const [g, r] of [[70, 1], [3, 2], [40, 3], [3, 4], [90, 5]]) w.add(g!, r!);
    w.releaseRange(2, 71, told(out));
    expect(out).toEqual([4, 2, 3, 1]);
    expect(w.live).toBe(1);
  });

  it('the same request may wait on several gfns (a range)', () => {
    const w = new Waiters(8);
    for (let g = 2; g < 6; g++) w.add(g, 7);
    expect(w.live).toBe(4);
    expect([2, 3, 4, 5].map((g) => released(w, g))).toEqual([[7], [7], [7], [7]]);
    expect(w.live).toBe(0);
  });

  it('a range request waits as one entry, answered at its last page among the per-page waits, newest first', () => {
    const w = new Waiters(100), out: (number | string)[] = [];
    w.addRange(10, 20, 7, 10);
    w.add(15, 8);
    w.addRange(12, 16, 9, 4);
    expect(w.live).toBe(15);
    w.releaseRange(10, 14, told(out));
    expect([out, w.live]).toEqual([['7×4', '9×2'], 9]);
    out.length = 0;
    // Page 15 answers 9 (its last page, added after 8's wait) before 8; 7 ends at 19.
    w.releaseRange(14, 20, told(out));
    expect([out, w.live]).toEqual([['9×2', 8, '7×6'], 0]);
    w.addRange(30, 33, 4, 3);
    // One page at a time: told of each, answered at the last.
    expect([released(w, 31), released(w, 30), released(w, 40), released(w, 32), w.live]).toEqual([[4], [4], [], [4], 0]);
  });

  it('a range entry told of more pages than it waits for is an invariant violation', () => {
    const w = new Waiters(8);
    w.addRange(0, 4, 1, 2);
    expect(() => w.releaseRange(0, 4, told([]))).toThrow(/invariant: 4 pages of 0..3 released for request 1, which waits for 2/);
  });

  it('answers requests in the order per-page waits would (property, against a list per page)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('page' as const), g: fc.nat(23) }),
      fc.record({ kind: fc.constant('range' as const), from: fc.nat(23), n: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ kind: fc.constant('load' as const), from: fc.nat(40), n: fc.integer({ min: 1, max: 12 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const w = new Waiters(64), settled = new Set<number>();
      const lists = new Map<number, number[]>(), left = new Map<number, number>(), leftNaive = new Map<number, number>();
      const answered: number[] = [], naive: number[] = [];
      const target = { arrived: (r: number, n: number) => {
        left.set(r, left.get(r)! - n);
        if (left.get(r) === 0) answered.push(r);
      } };
      let id = 0;
      for (const o of ops) {
        if (o.kind === 'load') {
          // A loaded run: pages not settled yet, consecutive from `from`.
          let to = o.from;
          while (to < Math.min(64, o.from + o.n) && !settled.has(to)) to++;
          if (to === o.from) continue;
          w.releaseRange(o.from, to, target);
          for (let g = o.from; g < to; g++) {
            settled.add(g);
            for (const r of (lists.get(g) ?? []).reverse()) {
              leftNaive.set(r, leftNaive.get(r)! - 1);
              if (leftNaive.get(r) === 0) naive.push(r);
            }
            lists.delete(g);
          }
          continue;
        }
        const from = o.kind === 'page' ? o.g : o.from, to = o.kind === 'page' ? o.g + 1 : Math.min(64, o.from + o.n);
        const pages = [];
        for (let g = from; g < to; g++) if (!settled.has(g)) pages.push(g);
        if (pages.length === 0) continue;
        const r = id++;
        left.set(r, pages.length);
        leftNaive.set(r, pages.length);
        for (const g of pages) lists.set(g, [...(lists.get(g) ?? []), r]);
        if (o.kind === 'page') w.add(from, r);
        else w.addRange(from, to, r, pages.length);
      }
      expect(answered).toEqual(naive);
      expect(w.live).toBe([...leftNaive.values()].reduce((a, b) => a + b, 0));
    }), { numRuns: 300 });
  });

  it('reuses released entries instead of growing', () => {
    const w = new Waiters(100);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 64; i++) w.add(i % 100, round * 1000 + i);
      expect(w.live).toBe(64);
      for (let g = 0; g < 64; g++) expect(released(w, g)).toEqual([round * 1000 + g]);
      expect(w.live).toBe(0);
    }
    expect(w['req'].length).toBe(64);
  });

  it('grows past its initial pool and keeps every entry', () => {
    const w = new Waiters(4);
    for (let i = 0; i < 300; i++) w.add(i % 4, i);
    expect(w.live).toBe(300);
    const all = [0, 1, 2, 3].flatMap((g) => released(w, g));
    expect(all.length).toBe(300);
    expect((all as number[]).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(released(w, 1).length).toBe(0);
    expect(w.live).toBe(0);
  });
});

describe('LatencyLog', () => {
  it('buckets by log2 of microseconds', () => {
    const l = new LatencyLog();
    expect(LATENCY_BUCKETS).toBe(24);
    l.add(500); // 0.5 µs
    expect(l.buckets[0]).toBe(1);
    l.add(3_000); // 3 µs
    expect(l.buckets[1]).toBe(1);
    l.add(1e9); // 1 s = 1e6 µs, log2 = 19.93
    expect(l.buckets[19]).toBe(1);
    l.add(1e18); // huge: last bucket
    expect(l.buckets[23]).toBe(1);
    l.add(1_999); // just under 2 µs
    l.add(2_000); // exactly 2 µs
    l.add(4_000); // exactly 4 µs
    const expected = new Array(24).fill(0);
    expected[0] = 2;
    expected[1] = 2;
    expected[2] = 1;
    expected[19] = 1;
    expected[23] = 1;
    expect(l.buckets).toEqual(expected);
    expect(l.count).toBe(7);
    expect(l.max).toBe(1e18);
  });

  it('nearest-rank percentiles on a known list', () => {
    const l = new LatencyLog();
    for (const v of [7, 3, 10, 1, 9, 2, 8, 6, 4, 5]) l.add(v * 1000);
    expect(l.percentiles([0, 10, 50, 90, 95, 99, 100])).toEqual([1000, 1000, 5000, 9000, 10000, 10000, 10000]);
    expect(l.percentiles([11])).toEqual([2000]);
    expect(l.mean()).toBe(5500);
    expect(l.sum).toBe(55_000);
    expect(l.max).toBe(10_000);
  });

  it('sorts numerically, not as strings', () => {
    const l = new LatencyLog();
    for (const v of [100, 20, 3]) l.add(v);
    expect(l.percentiles([0, 50, 100])).toEqual([3, 20, 100]);
  });

  it('is empty-safe and rounds the mean', () => {
    const l = new LatencyLog();
    expect(l.mean()).toBe(0);
    expect(l.percentiles([50, 99])).toEqual([0, 0]);
    l.add(1);
    l.add(2);
    expect(l.mean()).toBe(2); // 1.5 rounds up
  });

  it('keeps every value past its initial capacity', () => {
    const l = new LatencyLog();
    for (let i = 3000; i >= 1; i--) l.add(i);
    expect(l.count).toBe(3000);
    expect(l.percentiles([50, 100])).toEqual([1500, 3000]);
    expect(l.sum).toBe((3000 * 3001) / 2);
  });

  it('counts a long log of few values by value: 10,000 latencies of 3 values', () => {
    const l = new LatencyLog();
    // 5,000 × 7 µs, 3,000 × 2 µs, 2,000 × 9 µs, interleaved.
    const latency = (i: number) => (i % 5 < 2 ? 7000 : i % 5 < 4 ? [2000, 7000, 9000][i % 3]! : 9000);
    const counts = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      l.add(latency(i));
      counts.set(latency(i), (counts.get(latency(i)) ?? 0) + 1);
    }
    const twos = counts.get(2000)!, sevens = counts.get(7000)!;
    expect(twos + sevens + counts.get(9000)!).toBe(10_000);
    // Nearest rank r = ceil(p·n/100): the rank just inside and just past each value's end.
    const p = (rank: number) => (rank / 10_000) * 100;
    expect(l.percentiles([0, p(twos), p(twos + 1), p(twos + sevens), p(twos + sevens + 1), 100])).toEqual([2000, 2000, 7000, 7000, 9000, 9000]);
  });

  it('gives the values a plain sort gives, for few and for many distinct values (fast-check)', () => {
    const value = fc.oneof(fc.constantFrom(0, -0, 466_900, 455_900, 1e12, Infinity), fc.nat({ max: 2 ** 40 }), fc.double({ min: 0, max: 1e9, noNaN: true }));
    fc.assert(fc.property(
      fc.array(value, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 9000 }), fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { maxLength: 25 }), fc.boolean(),
      (pool, n, ps, many) => {
        const l = new LatencyLog();
        const all = Array.from({ length: n }, (_, i) => (many ? i * 1.5 + pool[i % pool.length]! : pool[(i * 7919) % pool.length]!));
        for (const v of all) l.add(v);
        const sorted = Float64Array.from(all).sort();
        // And the ranks on either side of where the value changes, where an off-by-one shows.
        const edges = [...sorted.keys()].filter((i) => i > 0 && !Object.is(sorted[i], sorted[i - 1])).slice(0, 20);
        const qs = [...ps, ...edges.flatMap((i) => [(i / n) * 100, ((i + 1) / n) * 100])];
        expect(l.percentiles(qs)).toEqual(qs.map((q) => sorted[Math.max(0, Math.ceil((q / 100) * n) - 1)]));
      },
    ), { numRuns: 60, seed: 13 });
  });
});

describe('Arena', () => {
  it('hands each array, after a reset, the smallest buffer of the last run that holds it, zero-filled', () => {
    const arena = new Arena();
    const small = arena.int32(100), big = arena.uint8(1 << 20), mid = arena.float64(1000);
    small.fill(7);
    big.fill(9);
    mid.fill(1.5);
    arena.reset();
    // Asked in another order and other types: each lands in the buffer its size fits best.
    const a = arena.uint8(8000), b = arena.int32(50), c = arena.int32(5000);
    expect([a.buffer, b.buffer, c.buffer]).toEqual([mid.buffer, small.buffer, big.buffer]);
    expect([a.length, b.length, c.length]).toEqual([8000, 50, 5000]);
    expect([a.every((x) => x === 0), b.every((x) => x === 0), c.every((x) => x === 0)]).toEqual([true, true, true]);
    // None left that holds 2000 doubles: a fresh buffer.
    const d = arena.float64(2000);
    expect([d.buffer === big.buffer || d.buffer === mid.buffer || d.buffer === small.buffer, d.byteLength]).toEqual([false, 16_000]);
  });

  it('lets a latency log grow past its first array and sort in buffers of the last run', () => {
    const arena = new Arena();
    for (let run = 0; run < 2; run++) {
      arena.reset();
      const l = new LatencyLog(arena);
      for (let i = 3000; i >= 1; i--) l.add(i * (run + 1));
      expect(l.percentiles([50, 100])).toEqual([1500 * (run + 1), 3000 * (run + 1)]);
    }
  });
});

describe('NextMember with members coming back', () => {
  it('add / addRange / remove / removeRange / next / prev / firstIn / countIn / has / count / complementOf agree with a Set over random operations', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3000 }),
      fc.array(fc.tuple(fc.constantFrom('add', 'addRange', 'remove', 'removeRange', 'next'), fc.nat(), fc.nat({ max: 100 })), { maxLength: 400 }),
      (size, ops) => {
        const set = new NextMember(size);
        const model = new Set(Array.from({ length: size }, (_, i) => i));
        for (const [op, raw, len] of ops) {
          const i = raw % (size + 40), to = Math.min(size, i + len);
          if (op === 'add' && i < size) { set.add(i); model.add(i); }
          else if (op === 'addRange' && i < size) {
            // Up to 3000: across whole words and summary words.
            const end = Math.min(size, i + len * 30);
            set.addRange(i, end);
            for (let j = i; j < end; j++) model.add(j);
          } else if (op === 'remove' && i < size) { set.remove(i); model.delete(i); }
          else if (op === 'removeRange' && i < size) {
            set.removeRange(i, to);
            for (let j = i; j < to; j++) model.delete(j);
          } else {
            let first = to;
            for (let j = i; j < to; j++) if (model.has(j)) { first = j; break; }
            if (i < size) expect(set.firstIn(i, to)).toBe(first);
            let inRange = 0;
            for (let j = i; j < to; j++) if (model.has(j)) inRange++;
            if (i < size) expect(set.countIn(i, to)).toBe(inRange);
            let want = size;
            for (let j = i; j < size; j++) if (model.has(j)) { want = j; break; }
            expect(set.next(i)).toBe(want);
            let back = -1;
            for (let j = Math.min(i, size - 1); j >= 0; j--) if (model.has(j)) { back = j; break; }
            expect(set.prev(i)).toBe(back);
          }
          if (i < size) expect(set.has(i)).toBe(model.has(i));
        }
        expect(set.count()).toBe(model.size);
        // The complement walks exactly the missing indexes, in order.
        const rest = NextMember.complementOf(set), missing: number[] = [];
        for (let j = rest.next(0); j < size; j = rest.next(j + 1)) missing.push(j);
        expect(missing).toEqual(Array.from({ length: size }, (_, j) => j).filter((j) => !model.has(j)));
        expect(rest.count()).toBe(size - model.size);
      },
    ), { numRuns: 200 });
  });
});
