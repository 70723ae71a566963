import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EBUSY, FOREIGN, FaultRing, RequestKind, type RingRequest } from '../src/ring/ring.ts';

function ring(capacity: number, vcpus = 1, blackEye = false, clock?: { now: number }): FaultRing {
  return new FaultRing({ capacity, vcpus, blackEye }, clock);
}

/** Takes every queued request; returns their ids in take order. */
function takeAll(r: FaultRing): number[] {
  const ids: number[] = [];
  for (let id = r.take(); id >= 0; id = r.take()) ids.push(id);
  return ids;
}

describe('FaultRing construction', () => {
  it('rejects capacity 0 and other non-positive or fractional capacities', () => {
    expect(() => ring(0)).toThrow('FaultRing.capacity: must be an integer in 1..16777216, got 0');
    expect(() => ring(-1)).toThrow(/got -1/);
    expect(() => ring(1.5)).toThrow(/got 1\.5/);
    expect(() => ring(Number.NaN)).toThrow(/got NaN/);
  });

  it('starts empty', () => {
    const r = ring(8);
    expect(r.capacity).toBe(8);
    expect(r.occupancy).toBe(0);
    expect(r.free).toBe(8);
    expect(r.queued).toBe(0);
    expect(r.take()).toBe(-1);
    expect(r.contents()).toEqual([]);
    expect(r.waitQueue).toEqual([]);
    expect(r.maxOccupancy).toBe(0);
    expect(r.puts).toBe(0);
    expect(r.ebusy).toBe(0);
  });
});

describe('FaultRing FIFO and accounting', () => {
  it('take() returns requests in put order', () => {
    const r = ring(8);
    const a = r.putForeign(RequestKind.PAGE, 10);
    const b = r.putForeign(RequestKind.PAGE, 11);
    const c = r.putForeign(RequestKind.PAGE, 12);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(r.take()).toBe(a);
    expect(r.take()).toBe(b);
    expect(r.take()).toBe(c);
    expect(r.take()).toBe(-1);
    expect([a, b, c].map((id) => r.gfnOf(id))).toEqual([10, 11, 12]);
  });

  it('keeps FIFO order across wrap-around of the queue', () => {
    const r = ring(3);
    const gfnsTaken: number[] = [];
    for (let round = 0; round < 5; round++) {
      const ids = [r.putForeign(RequestKind.PAGE, round * 10), r.putForeign(RequestKind.PAGE, round * 10 + 1)];
      const t1 = r.take();
      expect(t1).toBe(ids[0]);
      gfnsTaken.push(r.gfnOf(t1));
      r.respond(t1);
      const t2 = r.take();
      expect(t2).toBe(ids[1]);
      gfnsTaken.push(r.gfnOf(t2));
      r.respond(t2);
    }
    expect(gfnsTaken).toEqual([0, 1, 10, 11, 20, 21, 30, 31, 40, 41]);
  });

  it('occupancy counts queued and taken-but-unanswered requests; respond frees the slot', () => {
    const r = ring(4);
    const a = r.putForeign(RequestKind.PAGE, 1);
    r.putForeign(RequestKind.PAGE, 2);
    r.putForeign(RequestKind.PAGE, 3);
    expect([r.occupancy, r.free, r.queued]).toEqual([3, 1, 3]);

    expect(r.take()).toBe(a);
    // Taken but not answered: the slot stays claimed.
    expect([r.occupancy, r.free, r.queued]).toEqual([3, 1, 2]);

    r.respond(a);
    expect([r.occupancy, r.free, r.queued]).toEqual([2, 2, 2]);

    const b = r.take();
    const c = r.take();
    expect([r.occupancy, r.free, r.queued]).toEqual([2, 2, 0]);
    r.respond(c);
    r.respond(b);
    expect([r.occupancy, r.free, r.queued]).toEqual([0, 4, 0]);
    expect(r.puts).toBe(3);
  });

  it('a freed slot is reused by the next put', () => {
    const r = ring(4);
    r.putForeign(RequestKind.PAGE, 1);
    const b = r.putForeign(RequestKind.PAGE, 2);
    r.take();
    r.take();
    r.respond(b);
    const d = r.putForeign(RequestKind.PAGE, 99);
    expect(d).toBe(b);
    expect(r.gfnOf(d)).toBe(99);
  });

  it('answering more requests than the ring holds throws', () => {
    const r = ring(2);
    expect(() => r.respond(0)).toThrow(/answered more requests than it held/);
  });

  it('records the producer and put time of each request', () => {
    const clock = { now: 1234 };
    const r = ring(4, 2, false, clock);
    const f = r.putForeign(RequestKind.PAGE, 7);
    clock.now = 5678;
    expect(r.claimGuest(1)).toBe(true);
    const g = r.putGuest(1, RequestKind.PAGE, 8);
    expect(r.producerOf(f)).toBe(FOREIGN);
    expect(r.producerOf(g)).toBe(1);
    expect(r.putTimeOf(f)).toBe(1234);
    expect(r.putTimeOf(g)).toBe(5678);
  });
});

describe('FaultRing full ring', () => {
  it('putForeign on a full ring returns EBUSY, counts it, and queues nothing', () => {
    const r = ring(2);
    r.putForeign(RequestKind.PAGE, 1);
    r.putForeign(RequestKind.PAGE, 2);
    const before = r.contents();
    expect(r.putForeign(RequestKind.PAGE, 3)).toBe(EBUSY);
    expect(EBUSY).toBe(-1);
    expect(r.ebusy).toBe(1);
    expect(r.putForeign(RequestKind.RANGE, 4, 16)).toBe(EBUSY);
    expect(r.ebusy).toBe(2);
    expect(r.queued).toBe(2);
    expect(r.occupancy).toBe(2);
    expect(r.puts).toBe(2);
    expect(r.waitQueue).toEqual([]);
    expect(r.contents()).toEqual(before);
    expect(r.contents().map((q) => q.gfn)).toEqual([1, 2]);
  });

  it('claimGuest succeeds without queueing while a slot is free', () => {
    const r = ring(2, 2);
    expect(r.claimGuest(0)).toBe(true);
    expect(r.waitQueue).toEqual([]);
    expect(r.queued).toBe(0);
  });

  it('putGuest on a full ring is an invariant violation', () => {
    const r = ring(1, 1);
    r.putForeign(RequestKind.PAGE, 1);
    expect(() => r.putGuest(0, RequestKind.PAGE, 2)).toThrow(/vCPU 0 put on a full ring/);
  });

  it('claimGuest on a full ring queues the vCPU; wake() after respond wakes it FIFO, at most `free` of them', () => {
    const r = ring(2, 4);
    const a = r.putForeign(RequestKind.PAGE, 100);
    const b = r.putForeign(RequestKind.PAGE, 101);
    expect(r.claimGuest(2)).toBe(false);
    expect(r.claimGuest(0)).toBe(false);
    expect(r.claimGuest(3)).toBe(false);
    expect(r.waitQueue).toEqual([2, 0, 3]);
    expect(r.ebusy).toBe(0);
    expect(r.queued).toBe(2);

    // No free slot yet: nobody wakes.
    const none: Array<[number, boolean]> = [];
    r.wake((v, q) => none.push([v, q]));
    expect(none).toEqual([]);
    expect(r.waitQueue).toEqual([2, 0, 3]);

    expect(r.take()).toBe(a);
    r.respond(a);
    const woke1: Array<[number, boolean]> = [];
    r.wake((v, q) => woke1.push([v, q]));
    expect(woke1).toEqual([[2, true]]);
    expect(r.waitQueue).toEqual([0, 3]);
    r.putGuest(2, RequestKind.PAGE, 102);
    expect(r.free).toBe(0);

    // Two slots free: the two remaining sleepers wake, oldest first.
    expect(r.take()).toBe(b);
    r.respond(b);
    const c = r.take();
    expect(r.gfnOf(c)).toBe(102);
    r.respond(c);
    expect(r.free).toBe(2);
    const woke2: Array<[number, boolean]> = [];
    r.wake((v, q) => woke2.push([v, q]));
    expect(woke2).toEqual([[0, true], [3, true]]);
    expect(r.waitQueue).toEqual([]);
  });

  it('wakes only as many sleepers as there are free slots', () => {
    const r = ring(3, 5);
    const ids = [r.putForeign(RequestKind.PAGE, 1), r.putForeign(RequestKind.PAGE, 2), r.putForeign(RequestKind.PAGE, 3)];
    for (const v of [4, 1, 3, 0]) expect(r.claimGuest(v)).toBe(false);
    takeAll(r);
    r.respond(ids[0]!);
    r.respond(ids[1]!);
    const woke: Array<[number, boolean]> = [];
    r.wake((v, q) => woke.push([v, q]));
    expect(woke).toEqual([[4, true], [1, true]]);
    expect(r.waitQueue).toEqual([3, 0]);
  });

  it('a new claimant queues behind existing sleepers even when a slot has freed', () => {
    const r = ring(1, 2);
    const a = r.putForeign(RequestKind.PAGE, 1);
    expect(r.claimGuest(0)).toBe(false);
    r.take();
    r.respond(a);
    expect(r.free).toBe(1);
    // One free slot, one sleeper already waiting for it: vCPU 1 must not jump the queue.
    expect(r.claimGuest(1)).toBe(false);
    expect(r.waitQueue).toEqual([0, 1]);
    const woke: number[] = [];
    r.wake((v) => woke.push(v));
    expect(woke).toEqual([0]);
    expect(r.waitQueue).toEqual([1]);
  });

  it('wake() with nobody asleep or blocked calls nothing', () => {
    const r = ring(4, 4, true);
    const woke: number[] = [];
    r.wake((v) => woke.push(v));
    expect(woke).toEqual([]);
  });
});

describe('FaultRing black eye', () => {
  it('with 4 vCPUs and capacity 8, the put that leaves 3 free blocks the vCPU', () => {
    const r = ring(8, 4, true);
    for (let i = 0; i < 4; i++) {
      expect(r.claimGuest(0)).toBe(true);
      r.putGuest(0, RequestKind.PAGE, i);
    }
    expect(r.free).toBe(4);
    expect(r.isBlocked(0)).toBe(false);
    expect(r.claimGuest(1)).toBe(true);
    r.putGuest(1, RequestKind.PAGE, 4);
    expect(r.free).toBe(3);
    expect(r.isBlocked(1)).toBe(true);
    expect([0, 2, 3].map((v) => r.isBlocked(v))).toEqual([false, false, false]);
  });

  it('does not block when black eye is off', () => {
    const r = ring(8, 4, false);
    for (let i = 0; i < 7; i++) r.putGuest(i % 4, RequestKind.PAGE, i);
    expect(r.free).toBe(1);
    expect([0, 1, 2, 3].map((v) => r.isBlocked(v))).toEqual([false, false, false, false]);
    const woke: number[] = [];
    r.wake((v) => woke.push(v));
    expect(woke).toEqual([]);
  });

  it('foreign puts never block anyone', () => {
    const r = ring(8, 4, true);
    for (let i = 0; i < 8; i++) r.putForeign(RequestKind.PAGE, i);
    expect([0, 1, 2, 3].map((v) => r.isBlocked(v))).toEqual([false, false, false, false]);
  });

  it('wake() unblocks round-robin from the vCPU after the last woken, at most `free` of them', () => {
    const r = ring(8, 4, true);
    for (let i = 0; i < 4; i++) r.putGuest(0, RequestKind.PAGE, i); // free 4: nobody blocked
    r.putGuest(3, RequestKind.PAGE, 4); // free 3 → vCPU 3 blocked
    r.putGuest(1, RequestKind.PAGE, 5); // free 2 → vCPU 1 blocked
    r.putGuest(2, RequestKind.PAGE, 6); // free 1 → vCPU 2 blocked
    expect([0, 1, 2, 3].map((v) => r.isBlocked(v))).toEqual([false, true, true, true]);
    const ids = takeAll(r);
    expect(ids.length).toBe(7);

    // free 1 → only one may go: vCPU 1 is the first blocked one in the scan.
    const w1: Array<[number, boolean]> = [];
    r.wake((v, q) => w1.push([v, q]));
    expect(w1).toEqual([[1, false]]);
    expect(r.isBlocked(1)).toBe(false);

    // free 2 → the scan resumes after vCPU 1: vCPUs 2 then 3.
    r.respond(ids[0]!);
    const w2: Array<[number, boolean]> = [];
    r.wake((v, q) => w2.push([v, q]));
    expect(w2).toEqual([[2, false], [3, false]]);
    expect([0, 1, 2, 3].map((v) => r.isBlocked(v))).toEqual([false, false, false, false]);

    // Block vCPUs 0, 1 and 2 again; last woken is 3, so the next scan starts at 0.
    r.putGuest(2, RequestKind.PAGE, 7); // free 1 → blocked
    r.putGuest(0, RequestKind.PAGE, 8); // free 0 → blocked
    expect(r.free).toBe(0);
    const more = takeAll(r);
    r.respond(more[0]!);
    r.respond(more[1]!);
    r.putGuest(1, RequestKind.PAGE, 9); // free 1 → blocked
    expect([0, 1, 2, 3].map((v) => r.isBlocked(v))).toEqual([true, true, true, false]);
    r.respond(ids[1]!);
    expect(r.free).toBe(2);
    const w3: number[] = [];
    r.wake((v) => w3.push(v));
    expect(w3).toEqual([0, 1]); // after 3 wraps to 0; only 2 slots free
    expect([0, 1, 2, 3].map((v) => r.isBlocked(v))).toEqual([false, false, true, false]);

    r.respond(ids[2]!);
    const w4: number[] = [];
    r.wake((v) => w4.push(v));
    expect(w4).toEqual([2]);
  });

  it('round-robin wraps around from the last woken vCPU', () => {
    const r = ring(8, 4, true);
    for (let i = 0; i < 4; i++) r.putGuest(3, RequestKind.PAGE, i); // free 4
    r.putGuest(2, RequestKind.PAGE, 4); // free 3 → 2 blocked
    const first = takeAll(r);
    const w1: number[] = [];
    r.wake((v) => w1.push(v));
    expect(w1).toEqual([2]); // last woken = 2
    r.putGuest(0, RequestKind.PAGE, 5); // free 2 → 0 blocked
    r.putGuest(3, RequestKind.PAGE, 6); // free 1 → 3 blocked
    r.putGuest(1, RequestKind.PAGE, 7); // free 0 → 1 blocked
    takeAll(r);
    for (const id of first.slice(0, 3)) r.respond(id);
    const w2: number[] = [];
    r.wake((v) => w2.push(v));
    expect(w2).toEqual([3, 0, 1]);
  });

  it('wait-queue sleepers take precedence over blocked vCPUs', () => {
    const r = ring(2, 2, true);
    r.putGuest(0, RequestKind.PAGE, 1); // free 1 < 2 → vCPU 0 blocked
    expect(r.isBlocked(0)).toBe(true);
    r.putForeign(RequestKind.PAGE, 2); // full
    expect(r.claimGuest(1)).toBe(false);
    const id = r.take();
    r.respond(id);
    const woke: Array<[number, boolean]> = [];
    r.wake((v, q) => woke.push([v, q]));
    expect(woke).toEqual([[1, true]]);
    expect(r.isBlocked(0)).toBe(true);
  });
});

describe('FaultRing request contents', () => {
  it('queues duplicate requests for the same gfn from two vCPUs', () => {
    const r = ring(8, 2);
    expect(r.claimGuest(0)).toBe(true);
    const a = r.putGuest(0, RequestKind.PAGE, 42);
    expect(r.claimGuest(1)).toBe(true);
    const b = r.putGuest(1, RequestKind.PAGE, 42);
    expect(a).not.toBe(b);
    expect(r.queued).toBe(2);
    expect(r.contents()).toEqual<RingRequest[]>([
      { id: a, kind: RequestKind.PAGE, gfn: 42, count: 1, producer: 0 },
      { id: b, kind: RequestKind.PAGE, gfn: 42, count: 1, producer: 1 },
    ]);
  });

  it('RANGE requests keep gfn and count; DROP requests keep their kind', () => {
    const r = ring(8, 3);
    const a = r.putForeign(RequestKind.RANGE, 1000, 256);
    const b = r.putGuest(2, RequestKind.DROP, 5);
    const c = r.putForeign(RequestKind.PAGE, 77);
    expect(r.describe(a)).toEqual({ id: a, kind: 1, gfn: 1000, count: 256, producer: -1 });
    expect(r.describe(b)).toEqual({ id: b, kind: 2, gfn: 5, count: 1, producer: 2 });
    expect(r.kindOf(a)).toBe(RequestKind.RANGE);
    expect(r.countOf(a)).toBe(256);
    expect(r.contents()).toEqual([
      { id: a, kind: RequestKind.RANGE, gfn: 1000, count: 256, producer: FOREIGN },
      { id: b, kind: RequestKind.DROP, gfn: 5, count: 1, producer: 2 },
      { id: c, kind: RequestKind.PAGE, gfn: 77, count: 1, producer: FOREIGN },
    ]);
    r.take();
    expect(r.contents().map((q) => q.id)).toEqual([b, c]);
    // A taken request can still be described until its slot is reused.
    expect(r.describe(a).count).toBe(256);
  });
});

describe('FaultRing capacities', () => {
  for (const cap of [1, 1024]) {
    it(`capacity ${cap}: fill, EBUSY, drain, reuse every slot`, () => {
      const r = ring(cap);
      const ids = new Set<number>();
      for (let i = 0; i < cap; i++) {
        const id = r.putForeign(RequestKind.PAGE, i);
        expect(id).toBeGreaterThanOrEqual(0);
        ids.add(id);
      }
      expect(ids.size).toBe(cap);
      expect([...ids].sort((x, y) => x - y)).toEqual(Array.from({ length: cap }, (_, i) => i));
      expect(r.free).toBe(0);
      expect(r.occupancy).toBe(cap);
      expect(r.putForeign(RequestKind.PAGE, cap)).toBe(EBUSY);
      expect(r.ebusy).toBe(1);

      const taken = takeAll(r);
      expect(taken.length).toBe(cap);
      expect(taken.map((id) => r.gfnOf(id))).toEqual(Array.from({ length: cap }, (_, i) => i));
      for (const id of taken) r.respond(id);
      expect(r.free).toBe(cap);
      expect(r.occupancy).toBe(0);

      const again = new Set<number>();
      for (let i = 0; i < cap; i++) again.add(r.putForeign(RequestKind.PAGE, cap + i));
      expect(again).toEqual(ids);
      expect(r.putForeign(RequestKind.PAGE, 0)).toBe(EBUSY);
      expect(r.ebusy).toBe(2);
      expect(takeAll(r).map((id) => r.gfnOf(id))).toEqual(Array.from({ length: cap }, (_, i) => cap + i));
      expect(r.maxOccupancy).toBe(cap);
      expect(r.puts).toBe(2 * cap);
    });
  }
});

describe('FaultRing statistics', () => {
  it('maxOccupancy is the high-water mark of occupancy', () => {
    const r = ring(8);
    const a = r.putForeign(RequestKind.PAGE, 1);
    const b = r.putForeign(RequestKind.PAGE, 2);
    r.putForeign(RequestKind.PAGE, 3);
    expect(r.maxOccupancy).toBe(3);
    r.take();
    r.take();
    r.respond(a);
    r.respond(b);
    r.putForeign(RequestKind.PAGE, 4);
    expect(r.occupancy).toBe(2);
    expect(r.maxOccupancy).toBe(3);
    for (let i = 0; i < 3; i++) r.putForeign(RequestKind.PAGE, 5 + i);
    expect(r.maxOccupancy).toBe(5);
  });

  it('timeFull accumulates the time the ring spends with no free slot', () => {
    const clock = { now: 0 };
    const r = ring(2, 1, false, clock);
    clock.now = 100;
    const a = r.putForeign(RequestKind.PAGE, 1);
    expect(r.timeFull(150)).toBe(0);
    clock.now = 200;
    r.putForeign(RequestKind.PAGE, 2); // full from 200
    expect(r.timeFull(200)).toBe(0);
    expect(r.timeFull(250)).toBe(50);
    clock.now = 300;
    expect(r.putForeign(RequestKind.PAGE, 3)).toBe(EBUSY); // still full, no change
    clock.now = 500;
    expect(r.take()).toBe(a);
    expect(r.timeFull(500)).toBe(300); // taking does not free a slot
    r.respond(a); // not full from 500
    expect(r.timeFullNs).toBe(300);
    expect(r.timeFull(1000)).toBe(300);
    clock.now = 700;
    r.putForeign(RequestKind.PAGE, 4); // full again from 700
    expect(r.timeFull(750)).toBe(350);
    clock.now = 900;
    const b = r.take();
    r.respond(b);
    expect(r.timeFullNs).toBe(500);
    expect(r.timeFull(5000)).toBe(500);
  });
});

type Op =
  | { op: 'foreign'; gfn: number; range: boolean }
  | { op: 'guest'; vcpu: number; gfn: number }
  | { op: 'take' }
  | { op: 'respond'; pick: number }
  | { op: 'wake' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('foreign' as const), gfn: fc.integer({ min: 0, max: 1000 }), range: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('guest' as const), vcpu: fc.integer({ min: 0, max: 3 }), gfn: fc.integer({ min: 0, max: 1000 }) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'take' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('respond' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ op: 'wake' as const }) },
);

describe('FaultRing property', () => {
  it('accounting holds and contents() matches a model FIFO over random operations', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.boolean(), fc.array(opArb, { minLength: 1, maxLength: 150, size: 'max' }), (cap, blackEye, ops) => {
        const vcpus = 4;
        const r = ring(cap, vcpus, blackEye);
        const model: RingRequest[] = [];
        const taken: number[] = [];
        const sleepers: number[] = [];
        let ebusy = 0;
        let maxOcc = 0;
        const put = (req: Omit<RingRequest, 'id'>, id: number) => {
          if (!(id >= 0 && id < cap)) expect(id, 'slot id out of range').toBe('an id in [0, capacity)');
          model.push({ id, ...req });
        };
        for (const o of ops) {
          switch (o.op) {
            case 'foreign': {
              const kind = o.range ? RequestKind.RANGE : RequestKind.PAGE;
              const count = o.range ? 8 : 1;
              const full = model.length + taken.length === cap;
              const id = r.putForeign(kind, o.gfn, count);
              if (full) {
                expect(id).toBe(EBUSY);
                ebusy++;
              } else put({ kind, gfn: o.gfn, count, producer: FOREIGN }, id);
              break;
            }
            case 'guest': {
              const free = cap - model.length - taken.length;
              const ok = r.claimGuest(o.vcpu);
              expect(ok).toBe(free > sleepers.length);
              if (ok) put({ kind: RequestKind.PAGE, gfn: o.gfn, count: 1, producer: o.vcpu }, r.putGuest(o.vcpu, RequestKind.PAGE, o.gfn));
              else sleepers.push(o.vcpu);
              break;
            }
            case 'take': {
              const id = r.take();
              const head = model.shift();
              expect(id).toBe(head === undefined ? -1 : head.id);
              if (head) taken.push(head.id);
              break;
            }
            case 'respond': {
              if (taken.length === 0) break;
              const [id] = taken.splice(o.pick % taken.length, 1);
              r.respond(id!);
              break;
            }
            case 'wake': {
              const free = cap - model.length - taken.length;
              const woke: Array<[number, boolean]> = [];
              r.wake((v, q) => woke.push([v, q]));
              if (sleepers.length > 0) {
                const n = Math.min(free, sleepers.length);
                expect(woke).toEqual(sleepers.splice(0, n).map((v) => [v, true]));
                // Each woken sleeper then puts its request.
                for (const [v] of woke) put({ kind: RequestKind.PAGE, gfn: 5000 + v, count: 1, producer: v }, r.putGuest(v, RequestKind.PAGE, 5000 + v));
              } else {
                expect(woke.length).toBeLessThanOrEqual(free);
                for (const [v, q] of woke) {
                  expect(q).toBe(false);
                  expect(r.isBlocked(v)).toBe(false);
                }
              }
              break;
            }
          }
          const occ = model.length + taken.length;
          maxOcc = Math.max(maxOcc, occ);
          // Cheap checks first; fall back to expect() only to report a mismatch.
          const ok =
            r.occupancy <= cap &&
            r.occupancy === occ &&
            r.free + r.occupancy === cap &&
            r.queued <= r.occupancy &&
            r.queued === model.length &&
            JSON.stringify(r.contents()) === JSON.stringify(model) &&
            JSON.stringify(r.waitQueue) === JSON.stringify(sleepers) &&
            r.ebusy === ebusy &&
            r.maxOccupancy === maxOcc;
          if (!ok) {
            expect(r.occupancy).toBeLessThanOrEqual(cap);
            expect(r.occupancy).toBe(occ);
            expect(r.free + r.occupancy).toBe(cap);
            expect(r.queued).toBeLessThanOrEqual(r.occupancy);
            expect(r.queued).toBe(model.length);
            expect(r.contents()).toEqual(model);
            expect(r.waitQueue).toEqual(sleepers);
            expect(r.ebusy).toBe(ebusy);
            expect(r.maxOccupancy).toBe(maxOcc);
          }
        }
      }),
      { numRuns: 300, seed: 20240601 },
    );
  });
});

describe('withdraw (userfaultfd: a UFFDIO_COPY wakes faults nobody has read)', () => {
  it('takes the queued guest page requests in the range out, in order; the rest keep theirs; slots stay claimed', () => {
    const ring = new FaultRing({ capacity: 8, vcpus: 4, blackEye: false });
    const ids = [ring.putGuest(0, RequestKind.PAGE, 10), ring.putForeign(RequestKind.PAGE, 11), ring.putGuest(1, RequestKind.PAGE, 11),
      ring.putGuest(2, RequestKind.RANGE, 11, 2), ring.putGuest(3, RequestKind.PAGE, 12)];
    const out: number[] = [];
    expect(ring.withdraw(11, 13, out)).toBe(2);
    // The foreign request and the range stay: only a guest thread's fault on the page is woken.
    expect(out).toEqual([ids[2], ids[4]]);
    expect(ring.queued).toBe(3);
    expect([ring.take(), ring.take(), ring.take(), ring.take()]).toEqual([ids[0], ids[1], ids[3], -1]);
    expect(ring.occupancy).toBe(5);
    for (const id of out) ring.respond(id);
    expect(ring.occupancy).toBe(3);
  });
});

describe('withdraw across the FIFO\'s wrap', () => {
  it('keeps the order of what stays when the queue wraps round the slots', () => {
    const ring = new FaultRing({ capacity: 4, vcpus: 4, blackEye: false });
    const a = ring.putGuest(0, RequestKind.PAGE, 1), b = ring.putGuest(1, RequestKind.PAGE, 2);
    expect([ring.take(), ring.take()]).toEqual([a, b]);
    ring.respond(a);
    ring.respond(b);
    // Head at 2: these four sit in FIFO positions 2, 3, 0, 1.
    const q = [5, 6, 5, 7].map((g, v) => ring.putGuest(v, RequestKind.PAGE, g));
    const out: number[] = [];
    expect(ring.withdraw(5, 6, out)).toBe(2);
    expect(out).toEqual([q[0], q[2]]);
    expect([ring.take(), ring.take(), ring.take()]).toEqual([q[1], q[3], -1]);
  });
});
