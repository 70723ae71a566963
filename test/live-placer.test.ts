import { describe, expect, it } from 'vitest';
import { NextMember } from '../src/memory/skip-list.ts';
import { fillPage } from '../src/live/content.ts';
import { FrameError, FrameType, type Frame } from '../src/live/frame.ts';
import { encodePage } from '../src/live/payload.ts';
import { COUNT, createCopyTimes, createCounters, placePages, placeZero, requestFrame, requestStamps, verifyPlaced, type Placement } from '../src/live/placer.ts';
import { PAGE } from '../src/live/vcpu-worker.ts';

const SIZE = 256;

/** A software placement (a SharedArrayBuffer) of `pages` pages of SIZE bytes. */
function placement(pages: number, seed = 7): Placement {
  return {
    seed, pages, pageSize: SIZE, uffd: null, region: -1,
    state: new Int32Array(new SharedArrayBuffer(pages * 4)),
    counters: createCounters(), copyTimes: createCopyTimes(),
    memory: new Uint8Array(new SharedArrayBuffer(pages * SIZE)),
    placedAt: new Float64Array(new SharedArrayBuffer(pages * 8)),
    requestedAt: new Float64Array(new SharedArrayBuffer(pages * 8)),
  };
}

/** A PAGE frame for the run gfn..gfn+n−1 with the content of `seed` (one byte flipped at `bad`, a page index). */
function pageFrame(gfn: number, n: number, seed = 7, bad = -1): Frame {
  const bytes = new Uint8Array(n * SIZE);
  for (let k = 0; k < n; k++) fillPage(seed, gfn + k, 0, bytes.subarray(k * SIZE, (k + 1) * SIZE));
  if (bad >= 0) bytes[bad * SIZE]! ^= 1;
  return { type: FrameType.PAGE, payload: encodePage(gfn, 0, bytes), index: 3, offset: 96 };
}

const counts = (p: Placement) => [COUNT.PRESENT, COUNT.MISMATCHES, COUNT.RECEIVED, COUNT.DUPLICATES, COUNT.REQUESTS].map((c) => Atomics.load(p.counters, c));

describe('placePages (software pager)', () => {
  it('places a run, marks it present and counts it; a page that comes again is a duplicate, not placed twice', () => {
    const p = placement(8);
    placePages(p, pageFrame(2, 3));
    expect([...p.state]).toEqual([0, 0, 2, 2, 2, 0, 0, 0].map((s) => (s === 2 ? PAGE.PRESENT : PAGE.MISSING)));
    const want = new Uint8Array(SIZE);
    fillPage(7, 3, 0, want);
    expect(Buffer.from(p.memory!.subarray(3 * SIZE, 4 * SIZE)).equals(want)).toBe(true);
    placePages(p, pageFrame(4, 2));
    // [present, mismatches, received, duplicates, requests]
    expect(counts(p)).toEqual([4, 0, 5, 1, 0]);
  });

  it('stamps each page it places with the time its placement began, where a fault\'s latency ends; a duplicate keeps its first time', () => {
    const p = placement(8);
    const before = Number(process.hrtime.bigint());
    placePages(p, pageFrame(2, 3));
    const after = Number(process.hrtime.bigint());
    const first = p.placedAt[2]!;
    expect(first).toBeGreaterThanOrEqual(before);
    expect(first).toBeLessThanOrEqual(after);
    // One time for the frame's run; pages never placed read 0.
    expect([...p.placedAt].map((t) => (t === 0 ? 0 : t === first ? 1 : 2))).toEqual([0, 0, 1, 1, 1, 0, 0, 0]);
    placePages(p, pageFrame(4, 2));
    const fifth = p.placedAt[5]!;
    expect(fifth).toBeGreaterThanOrEqual(after);
    // A ZERO frame over present pages 5 and 6 places only 6.
    placeZero(p, { type: FrameType.ZERO, payload: Buffer.from('0000000500000002', 'hex'), index: 4, offset: 0 });
    expect([p.placedAt[4], p.placedAt[5]]).toEqual([first, fifth]);
    expect(p.placedAt[6]).toBeGreaterThanOrEqual(fifth);
  });

  it('places a page whose bytes are not its content; the end check counts it, as placed', () => {
    const p = placement(4);
    placePages(p, pageFrame(0, 2, 7, 1));
    expect(counts(p)).toEqual([2, 0, 2, 0, 0]);
    expect(verifyPlaced(p, null)).toBe(1);
    expect(counts(p)).toEqual([2, 1, 2, 0, 0]);
    // Another seed's content is wrong everywhere.
    placePages(p, pageFrame(2, 2, 8));
    expect(verifyPlaced(p, null)).toBe(3);
    expect(counts(p)).toEqual([4, 4, 4, 0, 0]);
  });

  it('checks the memory as placed: a page at the wrong place is caught, a zero page must be zeros, a missing page is not read', () => {
    const p = placement(6);
    placePages(p, pageFrame(0, 4));
    expect(verifyPlaced(p, null)).toBe(0);
    // Page 1's bytes where page 2's belong: the received bytes were right, the placement not.
    p.memory!.copyWithin(2 * SIZE, SIZE, 2 * SIZE);
    expect(verifyPlaced(p, null)).toBe(1);
    // Pages 3 to 5 zero pages: 3 holds content, wrong (with page 2, two); 4 placed as zeros is
    // right; 5 is missing, not read.
    placeZero(p, { type: FrameType.ZERO, payload: Buffer.from('0000000400000001', 'hex'), index: 4, offset: 0 });
    const zero = new NextMember(6, undefined, false);
    zero.addRange(3, 6);
    expect(verifyPlaced(p, zero)).toBe(2);
  });

  it('wakes a waiter only for a page it placed: a page already present (another thread placed it) is left alone', () => {
    const p = placement(2);
    Atomics.store(p.state, 1, PAGE.PRESENT);
    p.memory!.fill(0xaa, SIZE, 2 * SIZE);
    placePages(p, pageFrame(0, 2));
    expect(p.memory![SIZE]).toBe(0xaa);
    expect(counts(p)).toEqual([1, 0, 2, 1, 0]);
  });

  it('places a ZERO frame\'s run as present zero pages; one already present is a duplicate', () => {
    const p = placement(6);
    placePages(p, pageFrame(3, 1));
    placeZero(p, { type: FrameType.ZERO, payload: Buffer.from('0000000200000003', 'hex'), index: 4, offset: 0 });
    expect([...p.state].map((s) => s === PAGE.PRESENT)).toEqual([false, false, true, true, true, false]);
    expect(p.memory!.subarray(2 * SIZE, 3 * SIZE).every((b) => b === 0)).toBe(true);
    expect(counts(p)).toEqual([3, 0, 4, 1, 0]);
    expect(() => placeZero(p, { type: FrameType.ZERO, payload: Buffer.from('0000000500000002', 'hex'), index: 5, offset: 8 }))
      .toThrow('frame 5 at byte 8: ZERO for gfns 5..6, outside the guest\'s 6 pages');
  });

  it('refuses a run that goes past the guest, naming the frame', () => {
    const p = placement(4);
    expect(() => placePages(p, pageFrame(3, 2))).toThrow(new FrameError('PAGE for gfns 3..4, outside the guest\'s 4 pages', { index: 3, offset: 96 }));
    expect(counts(p)).toEqual([0, 0, 0, 0, 0]);
  });

  it('counts and stamps each REQUEST frame it builds; the stamps come back lowest gfn first with the placements, as many as asked', () => {
    const p = placement(16);
    const before = Number(process.hrtime.bigint());
    const f = requestFrame(p, 9, 3);
    expect(f.subarray(16).toString('hex')).toBe('0000000900000003');
    expect(f[5]).toBe(FrameType.REQUEST);
    requestFrame(p, 1);
    expect(counts(p)[4]).toBe(2);
    // A run's REQUEST stamps its first page.
    expect([...p.requestedAt].map((t, g) => (t >= before ? g : -1)).filter((g) => g >= 0)).toEqual([1, 9]);
    // With each page's placement time (0: not placed yet).
    p.placedAt[9] = p.requestedAt[9]! + 1000;
    const stamps = requestStamps(p, 8);
    expect([stamps[0], stamps[3], stamps.length]).toEqual([1, 9, 6]);
    expect([stamps[1], stamps[2], stamps[4], stamps[5]]).toEqual([p.requestedAt[1], 0, p.requestedAt[9], p.requestedAt[9]! + 1000]);
    expect(requestStamps(p, 1)).toEqual([1, p.requestedAt[1], 0]);
  });
});
