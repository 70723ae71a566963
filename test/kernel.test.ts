import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EventQueue } from '../src/kernel/queue.ts';
import { Kernel } from '../src/kernel/kernel.ts';
import { Rng, roundHalfUp, streamSeed } from '../src/kernel/rng.ts';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { WorkBudget } from '../src/kernel/work.ts';

/** Pops everything as [time, kind, arg] triples. */
function drain(q: EventQueue): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  while (q.pop()) out.push([q.time, q.kind, q.arg]);
  return out;
}

describe('EventQueue', () => {
  it('is empty at first', () => {
    const q = new EventQueue();
    expect(q.size).toBe(0);
    expect(q.peekTime()).toBe(Infinity);
    expect(q.pop()).toBe(false);
  });

  it('pops in time order', () => {
    const q = new EventQueue();
    q.push(30, 1, 300);
    q.push(10, 2, 100);
    q.push(20, 3, 200);
    expect(q.size).toBe(3);
    expect(q.peekTime()).toBe(10);
    expect(drain(q)).toEqual([
      [10, 2, 100],
      [20, 3, 200],
      [30, 1, 300],
    ]);
    expect(q.size).toBe(0);
  });

  it('equal times come out in push order', () => {
    const q = new EventQueue();
    for (let i = 0; i < 10; i++) q.push(5, 0, i);
    q.push(4, 1, 99);
    for (let i = 10; i < 20; i++) q.push(5, 0, i);
    const out = drain(q);
    expect(out[0]).toEqual([4, 1, 99]);
    expect(out.slice(1).map((e) => e[2])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('interleaved pushes and pops keep (time, sequence) order', () => {
    const q = new EventQueue();
    q.push(10, 0, 1);
    q.push(10, 0, 2);
    expect(q.pop()).toBe(true);
    expect(q.arg).toBe(1);
    q.push(10, 0, 3);
    q.push(5, 0, 4);
    expect(drain(q).map((e) => e[2])).toEqual([4, 2, 3]);
  });

  it('grows beyond its initial capacity without losing events', () => {
    const q = new EventQueue(2);
    for (let i = 0; i < 37; i++) q.push((i * 7919) % 101, i % 5, i);
    expect(q.size).toBe(37);
    const out = drain(q);
    expect(out.length).toBe(37);
    const expected = Array.from({ length: 37 }, (_, i) => [(i * 7919) % 101, i % 5, i] as [number, number, number]).sort(
      (a, b) => a[0] - b[0] || a[2] - b[2],
    );
    expect(out).toEqual(expected);
  });

  it('grows from an initial capacity of 1', () => {
    const q = new EventQueue(1);
    q.push(3, 0, 0);
    q.push(1, 0, 1);
    q.push(2, 0, 2);
    expect(drain(q)).toEqual([
      [1, 0, 1],
      [2, 0, 2],
      [3, 0, 0],
    ]);
  });

  it('an initial capacity below 1 is refused at once (not events silently dropped later)', () => {
    expect(() => new EventQueue(0)).toThrow('EventQueue.initialCapacity: must be an integer in 1..16777216, got 0');
  });

  it('random pushes pop sorted by time with stable ties (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 7 })), { maxLength: 300, size: 'max' }), fc.integer({ min: 1, max: 8 }), (evs, cap) => {
        const q = new EventQueue(cap);
        evs.forEach(([t, k], i) => q.push(t, k, i));
        const expected = evs.map(([t, k], i) => [t, k, i] as [number, number, number]).sort((a, b) => a[0] - b[0] || a[2] - b[2]);
        expect(drain(q)).toEqual(expected);
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it('pushInOrder keeps one event of a kind in the heap: the order is (time, sequence) still, the size counts them all', () => {
    const q = new EventQueue();
    q.inOrder(1);
    q.pushInOrder(5, 1, 10);
    q.pushInOrder(7, 1, 11);
    q.pushInOrder(6, 1, 12); // earlier than the kind's latest: into the heap as any event
    q.push(7, 0, 13);
    q.push(3, 0, 14);
    expect(q.size).toBe(5);
    expect(drain(q)).toEqual([[3, 0, 14], [5, 1, 10], [6, 1, 12], [7, 1, 11], [7, 0, 13]]);
    expect(q.size).toBe(0);
    expect(() => q.pushInOrder(1, 0, 0)).toThrow('kind 0 was not marked inOrder');
    expect(() => q.pushInOrder(1, 9, 0)).toThrow('kind 9 was not marked inOrder');
    expect(() => q.inOrder(-1)).toThrow('EventQueue.inOrder.kind: must be an integer in 0..65535, got -1');
    expect(() => q.push(1, 65536, 0)).toThrow('EventQueue.push.kind: must be an integer in 0..65535, got 65536');
  });

  it('pushInOrder\'s ring grows past 16 waiting events when it has wrapped, oldest first', () => {
    const q = new EventQueue();
    q.inOrder(0);
    for (let i = 0; i < 10; i++) q.pushInOrder(i, 0, i);
    for (let i = 0; i < 6; i++) q.pop();
    for (let i = 10; i < 40; i++) q.pushInOrder(i, 0, i);
    expect(q.size).toBe(34);
    expect(drain(q).map((e) => e[2])).toEqual(Array.from({ length: 34 }, (_, i) => i + 6));
  });

  it('pushInOrder pops exactly as push under pushes and pops that never go back in time (property)', () => {
    const op = fc.oneof(fc.constant(null), fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 3 })));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400, size: 'max' }), (ops) => {
        const plain = new EventQueue(4), chained = new EventQueue(4);
        chained.inOrder(0);
        chained.inOrder(2);
        let now = 0;
        ops.forEach((o, i) => {
          if (o === null) {
            expect(chained.pop()).toBe(plain.pop());
            expect([chained.time, chained.kind, chained.arg]).toEqual([plain.time, plain.kind, plain.arg]);
            now = plain.time;
          } else {
            plain.push(now + o[0], o[1], i);
            // Kinds 0 and 2 in order, 1 and 3 not.
            if (o[1] % 2 === 0) chained.pushInOrder(now + o[0], o[1], i);
            else chained.push(now + o[0], o[1], i);
          }
          expect(chained.size).toBe(plain.size);
        });
        expect(drain(chained)).toEqual(drain(plain));
      }),
      { numRuns: 150, seed: 11 },
    );
  });
});

describe('Kernel', () => {
  it('register returns consecutive kinds', () => {
    const k = new Kernel();
    expect(k.register(() => {})).toBe(0);
    expect(k.register(() => {})).toBe(1);
  });

  it('refuses a kind past the queue\'s 65,536 at registration, not when it is scheduled', () => {
    const k = new Kernel(), h = () => {};
    for (let i = 0; i < 65_536; i++) k.register(h);
    k.at(0, 65_535);
    expect(k.pending).toBe(1);
    expect(() => k.register(h)).toThrow('at most 65536 event kinds (a run registers a few dozen)');
  });

  it('a kind registered inOrder: atInOrder\'s events run with the others in (time, scheduling) order and count as pending', () => {
    const k = new Kernel(), seen: string[] = [];
    const arrive = k.register((a) => seen.push(`arrive ${a}@${k.now}`), true);
    const tick = k.register((a) => seen.push(`tick ${a}@${k.now}`));
    k.atInOrder(10, arrive, 1);
    k.atInOrder(20, arrive, 2);
    k.at(20, tick, 3);
    k.atInOrder(30, arrive, 4);
    k.atInOrder(15, arrive, 5);
    expect(k.pending).toBe(5);
    k.run();
    expect(seen).toEqual(['arrive 1@10', 'arrive 5@15', 'arrive 2@20', 'tick 3@20', 'arrive 4@30']);
    expect(() => k.atInOrder(35, 2)).toThrow('2 is not a registered event kind');
    expect(() => k.atInOrder(35, tick)).toThrow(`kind ${tick} was not marked inOrder`);
    expect(() => k.register(() => {}, 1 as unknown as boolean)).toThrow('Kernel.register.inOrder: must be true or false, or left out');
    expect(() => k.atInOrder(-1, arrive)).toThrow('event at -1 ns is not an integer time from now (30 ns) to 2^53 ns');
  });

  it('step dispatches one event, advances the clock and counts it', () => {
    const k = new Kernel();
    const seen: Array<[string, number, number]> = [];
    const a = k.register((arg) => seen.push(['a', arg, k.now]));
    const b = k.register((arg) => seen.push(['b', arg, k.now]));
    k.at(20, b, 7);
    k.at(10, a, 3);
    expect(k.pending).toBe(2);
    expect(k.nextTime()).toBe(10);
    expect(k.step()).toBe(true);
    expect(seen).toEqual([['a', 3, 10]]);
    expect(k.now).toBe(10);
    expect(k.events).toBe(1);
    expect(k.step()).toBe(true);
    expect(seen).toEqual([
      ['a', 3, 10],
      ['b', 7, 20],
    ]);
    expect(k.now).toBe(20);
    expect(k.step()).toBe(false);
    expect(k.events).toBe(2);
    expect(k.now).toBe(20);
    expect(k.nextTime()).toBe(Infinity);
  });

  it('after() schedules relative to now and arg defaults to 0', () => {
    const k = new Kernel();
    const seen: Array<[number, number]> = [];
    const kind = k.register((arg) => {
      seen.push([k.now, arg]);
      if (seen.length < 3) k.after(100, kind, arg + 1);
    });
    k.at(50, kind);
    k.run();
    expect(seen).toEqual([
      [50, 0],
      [150, 1],
      [250, 2],
    ]);
  });

  it('events scheduled for the same time run in scheduling order', () => {
    const k = new Kernel();
    const seen: number[] = [];
    const kind = k.register((arg) => {
      seen.push(arg);
      if (arg === 1) k.after(0, kind, 9); // same time, after those already scheduled
    });
    k.at(5, kind, 1);
    k.at(5, kind, 2);
    k.at(5, kind, 3);
    k.run();
    expect(seen).toEqual([1, 2, 3, 9]);
  });

  it('runUntil processes events up to and including t, then sets the clock to t', () => {
    const k = new Kernel();
    const seen: number[] = [];
    const kind = k.register((arg) => seen.push(arg));
    k.at(10, kind, 10);
    k.at(20, kind, 20);
    k.at(30, kind, 30);
    k.runUntil(20);
    expect(seen).toEqual([10, 20]);
    expect(k.now).toBe(20);
    expect(k.pending).toBe(1);
    k.runUntil(25);
    expect(seen).toEqual([10, 20]);
    expect(k.now).toBe(25);
    // The clock never goes back.
    k.runUntil(5);
    expect(k.now).toBe(25);
    k.runUntil(1000);
    expect(seen).toEqual([10, 20, 30]);
    expect(k.now).toBe(1000);
  });

  it('run processes until the queue is empty', () => {
    const k = new Kernel();
    let n = 0;
    const kind = k.register(() => {
      n++;
    });
    for (let i = 0; i < 50; i++) k.at(i * 3, kind);
    k.run();
    expect(n).toBe(50);
    expect(k.events).toBe(50);
    expect(k.now).toBe(147);
    expect(k.pending).toBe(0);
  });

  it('halt stops run after the current event and stays halted', () => {
    const k = new Kernel();
    const seen: number[] = [];
    const kind = k.register((arg) => {
      seen.push(arg);
      if (arg === 2) k.halt();
    });
    for (let i = 1; i <= 5; i++) k.at(i * 10, kind, i);
    expect(k.isHalted).toBe(false);
    k.run();
    expect(seen).toEqual([1, 2]);
    expect(k.isHalted).toBe(true);
    expect(k.now).toBe(20);
    expect(k.pending).toBe(3);
    expect(k.step()).toBe(false);
    k.run();
    expect(seen).toEqual([1, 2]);
  });

  it('halt stops runUntil without advancing the clock to t', () => {
    const k = new Kernel();
    const seen: number[] = [];
    const kind = k.register((arg) => {
      seen.push(arg);
      k.halt();
    });
    k.at(10, kind, 1);
    k.at(20, kind, 2);
    k.runUntil(100);
    expect(seen).toEqual([1]);
    expect(k.now).toBe(10);
  });

  it('scheduling in the past throws', () => {
    const k = new Kernel();
    const kind = k.register(() => {});
    k.at(100, kind);
    k.run();
    expect(k.now).toBe(100);
    expect(() => k.at(99, kind)).toThrow('event at 99 ns is not an integer time from now (100 ns) to 2^53 ns');
    expect(() => k.after(-1, kind)).toThrow(/event at 99 ns/);
    expect(() => k.at(100, kind)).not.toThrow();
    expect(k.pending).toBe(1);
  });

  it('non-integer and non-finite times throw', () => {
    const k = new Kernel();
    const kind = k.register(() => {});
    expect(() => k.at(1.5, kind)).toThrow(/event at 1\.5 ns/);
    expect(() => k.at(Number.NaN, kind)).toThrow(/event at NaN ns/);
    expect(() => k.at(-Infinity, kind)).toThrow(/event at -Infinity ns/);
    expect(() => k.after(0.25, kind)).toThrow(/event at 0\.25 ns/);
    expect(k.pending).toBe(0);
  });

  it('a time past 2^53 ns is never: it waits at 2^53 − 1 ns, past every horizon, and is counted', () => {
    const k = new Kernel();
    const fired: number[] = [];
    const kind = k.register((a) => fired.push(a));
    k.at(Infinity, kind, 1);
    k.after(2 ** 60, kind, 2);
    k.at(5, kind, 3);
    expect([k.pending, k.beyond]).toEqual([3, 2]);
    k.runTo(1e15);
    expect([fired, k.now, k.pending]).toEqual([[3], 5, 2]);
    k.run();
    expect([fired, k.now]).toEqual([[3, 1, 2], Number.MAX_SAFE_INTEGER]);
  });
});

describe('Kernel.runTo', () => {
  it('stops at the horizon or once `events` reaches the cap, whichever first, and goes on from there', () => {
    const k = new Kernel();
    const fired: number[] = [];
    const kind = k.register((a) => fired.push(a));
    for (let i = 1; i <= 6; i++) k.at(i * 10, kind, i);
    k.runTo(1e15, undefined, 2);
    expect([fired, k.now, k.events, k.pending, k.isHalted]).toEqual([[1, 2], 20, 2, 4, false]);
    k.runTo(45, undefined, 10);
    expect([fired, k.now, k.events]).toEqual([[1, 2, 3, 4], 40, 4]);
    k.runTo(1e15);
    expect([fired, k.now, k.events, k.pending]).toEqual([[1, 2, 3, 4, 5, 6], 60, 6, 0]);
  });

  it('rejects a horizon that is not a time, a tick that is not a function and a negative cap', () => {
    const k = new Kernel();
    expect(() => k.runTo(Number.NaN)).toThrow(/Kernel\.runTo\.horizon: must be a time in ns, got NaN/);
    expect(() => k.runTo(10, 'x' as unknown as () => void)).toThrow(/Kernel\.runTo\.tick: must be a function/);
    expect(() => k.runTo(10, undefined, -1)).toThrow(/Kernel\.runTo\.maxEvents: must be a count of events, 0 or more \(Infinity: no cap\), got -1/);
  });
});

describe('WorkBudget', () => {
  it('takes items while they last, then says why once spent; Kernel.limit gives maxEvents × 4 and halts on it', () => {
    const why: string[] = [];
    const w = new WorkBudget(10, (r) => why.push(r));
    expect([w.take(4, 'a'), w.take(6, 'b'), w.left, why]).toEqual([true, true, 0, []]);
    expect([w.take(1, 'c'), w.left]).toEqual([false, 0]);
    expect(why).toEqual(['work cap: 10 items drawn one by one inside events, the last by c (limits.maxEvents × 4: the guest\'s touches precopy applies at its dirty syncs, devices\' DMA writes)']);
    const k = new Kernel();
    k.limit(25, 10);
    expect([k.work.take(100, 'x'), k.work.take(1, 'y'), k.isHalted]).toEqual([true, false, true]);
    expect(k.stopReason).toMatch(/^work cap: 100 items drawn one by one inside events, the last by y /);
  });
});

describe('Rng', () => {
  const draws = (r: Rng, n: number) => Array.from({ length: n }, () => r.float());

  it('the same (seed, name) gives the same sequence', () => {
    const a = new Rng(42, 'mapper');
    const b = new Rng(42, 'mapper');
    const xs = draws(a, 100);
    expect(draws(b, 100)).toEqual(xs);
    expect(new Set(xs).size).toBe(100);
    for (const x of xs) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });

  it('different names or seeds give different sequences', () => {
    const base = draws(new Rng(42, 'mapper'), 20);
    expect(draws(new Rng(42, 'vcpu0'), 20)).not.toEqual(base);
    expect(draws(new Rng(43, 'mapper'), 20)).not.toEqual(base);
    expect(streamSeed(42, 'mapper')).not.toBe(streamSeed(42, 'vcpu0'));
    expect(streamSeed(42, 'mapper')).not.toBe(streamSeed(43, 'mapper'));
    // Seeds above 2^32 still matter.
    expect(streamSeed(2 ** 32 + 5, 'x')).not.toBe(streamSeed(5, 'x'));
    expect(streamSeed(42, 'mapper')).toBe(streamSeed(42, 'mapper'));
  });

  it('int() stays within its inclusive bounds and reaches both ends', () => {
    const r = new Rng(7, 'int');
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const x = r.int(3, 9);
      expect(Number.isInteger(x)).toBe(true);
      expect(x).toBeGreaterThanOrEqual(3);
      expect(x).toBeLessThanOrEqual(9);
      seen.add(x);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(r.int(5, 5)).toBe(5);
  });

  it('exp() has roughly the requested mean and yields whole nanoseconds', () => {
    const r = new Rng(1, 'exp');
    const mean = 10_000;
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const x = r.exp(mean);
      expect(Number.isInteger(x)).toBe(true);
      expect(x).toBeGreaterThanOrEqual(0);
      sum += x;
    }
    const m = sum / 10_000;
    expect(Math.abs(m - mean) / mean).toBeLessThan(0.05);
  });

  it('exp(0) is 0 and takes its draw: the stream after it is where a float() would leave it', () => {
    const a = new Rng(3, 'think'), b = new Rng(3, 'think');
    expect([a.exp(0), a.exp(0), a.exp(0)]).toEqual([0, 0, 0]);
    b.float();
    b.float();
    b.float();
    expect([a.exp(5000), a.int(0, 1e6)]).toEqual([b.exp(5000), b.int(0, 1e6)]);
  });

  it('draws pure-rand\'s values: xoroshiro128+, uniformFloat64 and uniformInt, in any mix, at the range edges', () => {
    // A draw: float, chance(p), or int over a range (sizes 1, 2, 3, 2^32 − 1, 2^32, past 2^32).
    const draw = fc.oneof(
      fc.constant({ kind: 'float' as const }),
      fc.record({ kind: fc.constant('chance' as const), p: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({
        kind: fc.constant('int' as const),
        from: fc.integer({ min: -1e6, max: 1e6 }),
        span: fc.oneof(fc.constantFrom(0, 1, 2, 2 ** 32 - 2, 2 ** 32 - 1, 2 ** 32, 2 ** 40), fc.integer({ min: 0, max: 2 ** 31 }), fc.nat()),
      }),
    );
    fc.assert(fc.property(fc.integer(), fc.string({ maxLength: 8 }), fc.array(draw, { minLength: 1, maxLength: 60 }), (seed, name, steps) => {
      const r = new Rng(seed, name), g = xoroshiro128plus(streamSeed(seed, name));
      for (const d of steps) {
        if (d.kind === 'float') expect(r.float()).toBe(uniformFloat64(g));
        else if (d.kind === 'chance') expect(r.chance(d.p)).toBe(uniformFloat64(g) < d.p);
        else expect(r.int(d.from, d.from + d.span)).toBe(uniformInt(g, d.from, d.from + d.span));
      }
      // And the streams stay in step after the mix.
      expect(r.float()).toBe(uniformFloat64(g));
    }), { numRuns: 2_000 });
  });

  it('roundHalfUp is Math.round bit for bit, at the edges where floor(v + 0.5) is not', () => {
    // 0.5 − 2^-54 + 0.5 rounds to 1; −0 must stay −0; from 2^52 on, v + 0.5 ties to even.
    const edges = [0, -0, 0.5 - 2 ** -54, 0.5, 1 - 2 ** -53, 1.5, 2.5, -2.5, 2 - 2 ** -52, 2 ** 52 - 0.5, 2 ** 52 + 1, 2 ** 53 - 1, NaN, Infinity, -Infinity];
    expect(edges.map(roundHalfUp)).toEqual(edges.map(Math.round));
    expect(Object.is(roundHalfUp(-0), -0)).toBe(true);
    expect(roundHalfUp(0.5 - 2 ** -54)).toBe(0);
    expect(roundHalfUp(2 ** 52 + 1)).toBe(2 ** 52 + 1);
    fc.assert(fc.property(fc.double({ noNaN: true }), (v) => Object.is(roundHalfUp(v), Math.round(v))), { numRuns: 20_000 });
    fc.assert(fc.property(fc.double({ min: 0, max: 1e13, noNaN: true }), (v) => Object.is(roundHalfUp(v), Math.round(v))), { numRuns: 20_000 });
  });
});
