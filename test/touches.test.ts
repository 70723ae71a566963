import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Rng } from '../src/kernel/rng.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import type { Scenario } from '../src/scenario/schema.ts';
import { AccessPattern } from '../src/workload/access.ts';
import { Emulator } from '../src/emulator.ts';
import { presetInput } from '../src/scenario/load.ts';
import { Arena } from '../src/memory/arena.ts';
import { Space } from '../src/memory/space.ts';
import { lcgMask, lcgNext } from '../src/workload/lcg.ts';
import { drawZeroSet } from '../src/memory/guest-memory.ts';

type Touch = [gfn: number, write: number, think: number];

/** `n` touches of AccessPattern's batches, in order. */
function drawn(p: AccessPattern, n: number): Touch[] {
  return Array.from({ length: n }, () => {
    const at = p.take();
    return [p.gfn[at]!, p.write[at]!, p.think[at]!];
  });
}

/**
 * The touches as the patterns define them, drawn one by one from the JavaScript stream (Rng,
 * itself held against pure-rand in kernel.test.ts): page, then write, then think time.
 */
function reference(s: Scenario, vcpu: number, rng: Rng, n: number): Touch[] {
  const w = s.workload, region = w.region ?? { start: 0, count: s.memory.pages }, count = region.count;
  let cursor = Math.floor((vcpu * count) / w.vcpus);
  let lcg = w.kind === 'shuffled' ? rng.int(0, count - 1) : 0;
  const wf = w.kind === 'memtest' ? 1 : w.writeFraction;
  return Array.from({ length: n }, (): Touch => {
    let g: number;
    if (w.kind === 'random') g = rng.int(0, count - 1);
    else if (w.kind === 'hot-set') g = rng.int(0, (rng.chance(w.hotProbability) ? Math.min(w.hotPages, count) : count) - 1);
    else if (w.kind === 'shuffled') g = lcg = lcgNext(lcg, lcgMask(count), count);
    else {
      g = cursor;
      cursor = cursor + 1 === count ? 0 : cursor + 1;
    }
    const write = wf >= 1 || (wf > 0 && rng.chance(wf)) ? 1 : 0;
    return [region.start + g, write, w.think === 'constant' ? w.thinkNs : rng.exp(w.thinkNs)];
  });
}

const scenario = (kind: string, extra: object = {}) => parseScenario({
  memory: { pages: 4096 },
  workload: { kind, vcpus: 2, thinkNs: 1000, writeFraction: 0.5, hotPages: 16, region: { start: 100, count: 1000 }, ...extra },
});

describe('AccessPattern (touches drawn in WebAssembly)', () => {
  it('draws the touches the JavaScript patterns drew before it: touches 0–2 and 64–66 of vCPU 1, seed 42', () => {
    // Printed by the JavaScript AccessPattern of 38bbf29 (next(), isWrite(), thinkNs() per touch).
    const expected: Record<string, Touch[]> = {
      random: [[553, 0, 603], [559, 0, 358], [747, 1, 896], [836, 1, 310], [561, 1, 429], [1023, 0, 1303]],
      'hot-set': [[100, 1, 208], [100, 0, 55], [104, 1, 620], [102, 1, 42], [108, 0, 767], [106, 0, 13]],
      shuffled: [[894, 0, 603], [687, 1, 156], [140, 0, 283], [574, 0, 399], [623, 1, 911], [332, 1, 444]],
      sequential: [[600, 0, 129], [601, 0, 1459], [602, 1, 1533], [664, 0, 150], [665, 0, 2586], [666, 0, 89]],
    };
    for (const [kind, touches] of Object.entries(expected)) {
      const t = drawn(new AccessPattern(scenario(kind), 1, new Rng(42, 'vcpu1'), new Space()), 67);
      expect([...t.slice(0, 3), ...t.slice(64)], kind).toEqual(touches);
    }
  });

  it('a constant think time is thinkNs exactly; a write fraction of 1 (memtest) writes every touch', () => {
    const t = drawn(new AccessPattern(scenario('memtest', { think: 'constant', thinkNs: 777 }), 0, new Rng(1, 'v'), new Space()), 200);
    expect(new Set(t.map((x) => x[2]))).toEqual(new Set([777]));
    expect(t.every((x) => x[1] === 1)).toBe(true);
    expect(t.slice(0, 3).map((x) => x[0])).toEqual([100, 101, 102]);
  });

  it('matches the patterns drawn one by one in JavaScript, over many batches and stream states', () => {
    // One space for every case, reset between them, as an Arena's runs share one.
    const space = new Space();
    fc.assert(fc.property(
      fc.record({
        kind: fc.constantFrom('sequential', 'memtest', 'random', 'shuffled', 'hot-set'),
        seed: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        vcpu: fc.integer({ min: 0, max: 3 }),
        start: fc.integer({ min: 0, max: 500 }),
        count: fc.integer({ min: 1, max: 3000 }),
        hotPages: fc.integer({ min: 1, max: 4000 }),
        hotProbability: fc.double({ min: 0, max: 1, noNaN: true }),
        writeFraction: fc.constantFrom(0, 1, 0.25, 0.999),
        thinkNs: fc.constantFrom(0, 1, 2308, 1e9),
        think: fc.constantFrom('exponential', 'constant'),
      }),
      (c) => {
        space.reset();
        const s = parseScenario({
          memory: { pages: 4096 },
          workload: { kind: c.kind, vcpus: 4, region: { start: c.start, count: c.count }, hotPages: c.hotPages,
            hotProbability: c.hotProbability, writeFraction: c.writeFraction, thinkNs: c.thinkNs, think: c.think },
        });
        const n = 64 * 5 + 3;
        expect(drawn(new AccessPattern(s, c.vcpu, new Rng(c.seed, 'v'), space), n)).toEqual(reference(s, c.vcpu, new Rng(c.seed, 'v'), n));
      },
    ), { numRuns: 150 });
  });
});

/** drawZeroSet(16384, 0.25, seed 7)'s count and first six pages, as d325cb9's JavaScript loop drew them. */
const GOLDEN_ZERO = [4088, 8, 10, 24, 26, 27, 28];

describe('drawZeroSet (its draws in WebAssembly)', () => {
  it('sets exactly the pages whose draw, one float() a page in order, is below the fraction (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.double({ min: 1e-6, max: 1, noNaN: true }), fc.integer({ min: 1, max: 1e6 }), (pages, fraction, seed) => {
        const zero = drawZeroSet(pages, fraction, new Rng(seed, 'zero-pages'))!;
        const reference = new Rng(seed, 'zero-pages'), expected: number[] = [];
        for (let g = 0; g < pages; g++) if (reference.float() < fraction) expected.push(g);
        const got: number[] = [];
        for (let g = zero.next(0); g < pages; g = zero.next(g + 1)) got.push(g);
        expect(got).toEqual(expected);
        expect(zero.count()).toBe(expected.length);
      }),
      { numRuns: 100, seed: 13 },
    );
  });

  it('draws the zero pages of seed 7 at 16,384 pages and a quarter as before (count and first pages)', () => {
    const zero = drawZeroSet(16384, 0.25, new Rng(7, 'zero-pages'))!;
    const first: number[] = [];
    for (let g = zero.next(0); g < 16384 && first.length < 6; g = zero.next(g + 1)) first.push(g);
    expect([zero.count(), ...first]).toEqual(GOLDEN_ZERO);
  });
});

describe('Space (the memory the touches run in)', () => {
  it('keeps every view valid as it grows, and hands out zeroed, 8-aligned arrays', () => {
    const space = new Space();
    const a = space.uint8(100);
    a[99] = 7;
    const b = space.int32(3 * 65536); // grows the memory by several WebAssembly pages
    b[0] = 5;
    expect(space.memory.buffer.byteLength).toBeGreaterThan(4 * 3 * 65536);
    expect(a[99]).toBe(7);
    a[98] = 8;
    expect(new Uint8Array(space.memory.buffer, a.byteOffset, 100)[98]).toBe(8);
    expect(b.byteOffset % 8).toBe(0);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 100);
  });

  it('an Arena keeps one space for its runs, and a reset gives its memory out again zeroed', () => {
    const arena = new Arena();
    const first = arena.space();
    const x = first.uint8(64);
    x.fill(9);
    arena.reset();
    expect(arena.space()).toBe(first);
    const y = first.uint8(64);
    expect(y.byteOffset).toBe(x.byteOffset);
    expect([...y].every((v) => v === 0)).toBe(true);
  });
});

describe('vCPU slices (in WebAssembly, on the run\'s Space)', () => {
  it('count the touches, writes, faults and first touches the JavaScript slices counted (38bbf29)', () => {
    const random = { memory: { pages: 4096 }, workload: { kind: 'random', vcpus: 2, thinkNs: 500, writeFraction: 0.5 }, ring: { capacity: 4 }, limits: { stopAt: 'complete' } };
    const cases: [string, object, number[]][] = [
      ['random', random, [427, 204, 11, 404, 11, 316]],
      ['hot-set, no think time', { ...random, workload: { kind: 'hot-set', vcpus: 3, hotPages: 64, thinkNs: 0 } }, [151303, 75631, 25, 3972, 25, 2723]],
      // 8,385 touches of a trace: JavaScript replays its records into the block every 64, mid-slice.
      ['trace-hashtable', presetInput('trace-hashtable'), [8385, 3592, 8, 1702, 8, 439]],
    ];
    for (const [name, input, expected] of cases) {
      const e = new Emulator(input).run(), v = e.vcpus;
      expect([v.accesses, v.writes, v.faults, v.minorPages, v.networkPages, e.kernel.events], name).toEqual(expected);
    }
  });
});

describe('precopy dirtier advances (in WebAssembly)', () => {
  it('writes the pages the JavaScript dirtier wrote (38bbf29): a trace replayed mid-advance, 4,096 pages handed back at a time', () => {
    const base = presetInput('trace-hashtable');
    const e = new Emulator({ ...base, migration: { mode: 'precopy' }, precopy: { dirtying: { kind: 'workload' } } }).run();
    expect([e.status, e.kernel.events, e.precopy!.log.writes, e.precopy!.pagesSent]).toEqual(['completed', 244, 1925516, 7884]);
  });
});
