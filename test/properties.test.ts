import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { PageState } from '../src/memory/guest-memory.ts';
import { buildReport } from '../src/metrics/report.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

type Range = { start: number; count: number };

/** A range inside 0..pages-1. */
const rangeIn = (pages: number, maxCount = pages): fc.Arbitrary<Range> =>
  fc.integer({ min: 0, max: pages - 1 }).chain((start) =>
    fc.integer({ min: 1, max: Math.min(maxCount, pages - start) }).map((count) => ({ start, count })));

const linkArb = fc.record({
  rateMbps: fc.constantFrom(100, 1000, 10_000),
  latencyNs: fc.integer({ min: 0, max: 200_000 }),
  sendBufferBytes: fc.constantFrom(0, 65_536, 4 * 1024 * 1024),
  receiveBufferBytes: fc.constantFrom(0, 262_144, 6 * 1024 * 1024),
});

/** Small random scenarios over every knob that changes the paging protocol. */
type Policy = 'xen' | 'qemu' | 'demand' | 'bubbling' | 'adaptive-chunk' | 'prefault';
/** Every policy that pushes in the background (all but demand). */
const PUSH_POLICIES = ['xen', 'qemu', 'bubbling', 'adaptive-chunk', 'prefault'] as const;

function scenarioArb(policy: fc.Arbitrary<Policy>): fc.Arbitrary<ScenarioInput> {
  return fc.integer({ min: 64, max: 2048 }).chain((pages) => {
    const outstanding = fc.oneof(
      fc.constant({ kind: 'all' as const }),
      fc.double({ min: 0.05, max: 1, noNaN: true }).map((fraction) => ({ kind: 'fraction' as const, fraction })),
      fc.array(rangeIn(pages, 512), { minLength: 1, maxLength: 3 }).map((ranges) => ({ kind: 'ranges' as const, ranges })),
    );
    const mapping = fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.constant({ kind: 'all' as const }),
      fc.array(rangeIn(pages, 256), { minLength: 1, maxLength: 4 }).map((ranges) => ({ kind: 'ranges' as const, ranges })),
      fc.integer({ min: 1, max: Math.min(256, pages) }).chain((bucketPages) =>
        fc.integer({ min: 1, max: Math.min(8, Math.floor(pages / bucketPages)) })
          .map((count) => ({ kind: 'buckets' as const, bucketPages, count }))),
    );
    return fc.record({
      seed: fc.integer({ min: 0, max: 2 ** 32 }),
      memory: fc.record({ pages: fc.constant(pages), outstanding, hostPageSize: fc.constantFrom(4096, 4096, 16_384, 65_536) }),
      ring: fc.record({ capacity: fc.integer({ min: 1, max: 32 }), blackEye: fc.boolean() }),
      link: linkArb,
      backChannel: linkArb,
      source: fc.record({
        policy,
        recordPages: fc.integer({ min: 1, max: 128 }),
        pfnBatch: fc.integer({ min: 1, max: pages }),
        pivots: fc.integer({ min: 1, max: 8 }),
        bubbleDirection: fc.constantFrom('both' as const, 'forward' as const),
        chunkMinPages: fc.integer({ min: 1, max: 32 }),
        chunkMaxPages: fc.integer({ min: 32, max: 256 }),
        prefaultAfter: fc.integer({ min: 0, max: 64 }),
        prefaultBefore: fc.integer({ min: 0, max: 16 }),
      }),
      pager: fc.record({
        eviction: fc.constantFrom('per-pfn' as const, 'batched' as const),
        wakeNs: fc.integer({ min: 0, max: 20_000 }),
        notifyNs: fc.integer({ min: 0, max: 20_000 }),
        loadPageNs: fc.integer({ min: 0, max: 5_000 }),
      }),
      mapper: fc.record({
        mapping,
        request: fc.constantFrom('page' as const, 'range' as const),
        order: fc.constantFrom('sequential' as const, 'random' as const),
        retryNs: fc.integer({ min: 1_000, max: 200_000 }),
        timerSlackNs: fc.integer({ min: 0, max: 50_000 }),
      }),
      workload: fc.record({
        kind: fc.constantFrom('idle' as const, 'sequential' as const, 'random' as const, 'hot-set' as const, 'memtest' as const),
        vcpus: fc.integer({ min: 1, max: 4 }),
        region: fc.option(rangeIn(pages), { nil: undefined }),
        hotPages: fc.integer({ min: 1, max: 256 }),
        writeFraction: fc.double({ min: 0, max: 1, noNaN: true }),
        // A guest that thinks a little between touches: see emulator.test.ts for thinkNs 0.
        thinkNs: fc.integer({ min: 1_000, max: 10_000 }),
        prefetchPages: fc.integer({ min: 0, max: 16 }),
      }, { requiredKeys: ['kind', 'vcpus', 'hotPages', 'writeFraction', 'thinkNs', 'prefetchPages'] }),
    }).map((s) => (s.ring.blackEye && s.ring.capacity < s.workload.vcpus
      // Black eye needs a slot per vCPU (the scenario is rejected otherwise).
      ? { ...s, ring: { ...s.ring, capacity: s.workload.vcpus } }
      : s)) as fc.Arbitrary<ScenarioInput>;
  });
}

/** Safety net: a run longer than this many events is a livelock, reported as a failure. */
const MAX_EVENTS = 2_000_000;

function runBounded(input: ScenarioInput): Emulator {
  const emu = new Emulator(input);
  const horizon = emu.scenario.limits.horizonNs;
  while (emu.kernel.nextTime() <= horizon && emu.kernel.events < MAX_EVENTS && emu.step());
  expect(emu.kernel.events).toBeLessThan(MAX_EVENTS);
  emu.vcpus.stop();
  return emu;
}

describe('random scenarios with a push policy (xen, qemu, bubbling, adaptive-chunk, prefault)', () => {
  it('always complete soundly', () => {
    fc.assert(
      fc.property(scenarioArb(fc.constantFrom(...PUSH_POLICIES)), (input) => {
        const emu = runBounded(input);
        const { memory, ring, source, vcpus, pager, latency } = emu;
        expect(emu.finished).toBe(true);
        expect(checkRun(emu)).toEqual([]);
        expect(ring.maxOccupancy).toBeLessThanOrEqual(ring.capacity);
        expect(ring.occupancy).toBe(0);
        expect(ring.waitQueue).toEqual([]);
        expect(memory.pending).toBe(0);
        for (let g = 0; g < memory.pages; g++) {
          if (memory.state[g] !== PageState.READY) throw new Error(`page ${g} is in state ${memory.state[g]}`);
          if (memory.destVersion(g) < memory.sourceVersion(g)) throw new Error(`page ${g} is stale`);
        }
        expect(source.pagesPushed + source.pagesDemanded).toBe(memory.outstandingAtStart);
        expect(pager.pagesLoaded).toBe(memory.outstandingAtStart);
        expect(pager.pagesDiscarded).toBe(0);
        expect(vcpus.blockedAtStop).toEqual([]);
        expect(pager.waiting).toBe(0);
        // Every fault was answered exactly once, and each answer has a latency.
        expect(latency.count).toBe(ring.puts + vcpus.spurious);
        expect(latency.count).toBe(emu.vcpuFaults + emu.foreignFaults);
        expect(emu.resumedAt).toBeGreaterThanOrEqual(0);
        expect(source.completeAt).toBeGreaterThan(0);
        const report = buildReport(emu);
        expect(report.status).toBe('completed');
        // QEMU's histogram counts the vCPU faults its fault thread read before their page came;
        // without a fault thread it is every fault's.
        const spans = pager.blocktime?.latency ?? latency;
        expect(report['postcopy-latency-dist'].reduce((a, b) => a + b, 0)).toBe(spans.count);
        if (pager.blocktime) expect(spans.count).toBeLessThanOrEqual(emu.vcpuFaults);
      }),
      { numRuns: 150 },
    );
  });
});

describe('random scenarios with the demand-only policy', () => {
  it('push nothing, fetch only requested pages, and stay sound', () => {
    fc.assert(
      fc.property(
        scenarioArb(fc.constant('demand' as const)).map((s) => ({ ...s, limits: { horizonNs: 100_000_000 } })),
        (input) => {
          const emu = runBounded(input);
          const { memory, source, pager, ring } = emu;
          expect(checkRun(emu)).toEqual([]);
          expect(source.pagesPushed).toBe(0);
          expect(ring.maxOccupancy).toBeLessThanOrEqual(ring.capacity);
          expect(pager.pagesLoaded).toBeLessThanOrEqual(source.pagesDemanded);
          expect(source.pagesDemanded).toBeLessThanOrEqual(pager.pfnsRequested);
          expect(pager.pagesLoaded + memory.pending).toBe(memory.outstandingAtStart);
          if (emu.finished) expect(memory.pending).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('determinism', () => {
  it('the same scenario and seed give the same report', () => {
    fc.assert(
      fc.property(scenarioArb(fc.constantFrom<Policy>('demand', ...PUSH_POLICIES)), (input) => {
        const bounded = { ...input, limits: { horizonNs: 200_000_000 } };
        const a = JSON.stringify(buildReport(runBounded(bounded)));
        const b = JSON.stringify(buildReport(runBounded(structuredClone(bounded))));
        expect(b).toBe(a);
      }),
      { numRuns: 60 },
    );
  });
});
