import { describe, expect, it, vi } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { PageState } from '../src/memory/guest-memory.ts';
import { buildReport } from '../src/metrics/report.ts';
import { EBUSY, FOREIGN, RequestKind } from '../src/ring/ring.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import { PostcopyEmuError } from '../src/io/errors.ts';
import { VcpuState } from '../src/workload/vcpu.ts';
import { AccessPattern } from '../src/workload/access.ts';
import { Space } from '../src/memory/space.ts';
import { Rng } from '../src/kernel/rng.ts';
import { parseScenario } from '../src/scenario/validate.ts';

/** A small scenario every hand calculation below starts from (defaults elsewhere). */
function small(over: ScenarioInput = {}): ScenarioInput {
  const base: ScenarioInput = {
    memory: { pages: 256 },
    ring: { capacity: 4 },
    link: { latencyNs: 10_000 },
    backChannel: { latencyNs: 10_000 },
    mapper: { mapping: { kind: 'none' } },
    workload: { kind: 'idle', vcpus: 1 },
  };
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = b && typeof b === 'object' && v && typeof v === 'object' && !Array.isArray(v) ? { ...b, ...v } : v;
  }
  return out as ScenarioInput;
}

/**
 * vCPU-driven scenarios: pages 0..255 are outstanding, the vCPUs sweep pages 256..511, which are
 * already present, so they never fault on their own; the test faults them by hand with touch().
 */
function vcpuScenario(over: ScenarioInput = {}): ScenarioInput {
  return small({
    memory: { pages: 512, outstanding: { kind: 'ranges', ranges: [{ start: 0, count: 256 }] } },
    workload: { kind: 'sequential', vcpus: 1, region: { start: 256, count: 256 } },
    ...over,
  });
}

function stepUntilResumed(emu: Emulator): void {
  while (emu.resumedAt < 0) if (!emu.step()) throw new Error('run ended before the guest resumed');
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** An emulator run to the guest's resume, recording the pages loaded and the FAULT records written. */
function observed(input: ScenarioInput) {
  const emu = new Emulator(input);
  const loaded: number[] = [];
  const forwards: Array<{ pfns: number[]; ranges: number[] }> = [];
  emu.events.on('page-loaded', (e) => loaded.push(e.gfn));
  emu.events.on('forward', (e) => forwards.push({ pfns: [...e.pfns], ranges: [...e.ranges] }));
  stepUntilResumed(emu);
  return { emu, loaded, forwards };
}

/** Every one of the 1024 pages loaded exactly once, the run finished and sound. */
function expectEachPageOnce(emu: Emulator, loaded: number[]): void {
  expect(loaded).toHaveLength(1024);
  expect(new Set(loaded).size).toBe(1024);
  expect(emu.finished).toBe(true);
  expect(checkRun(emu)).toEqual([]);
}

describe('library API walk-through (1 vCPU, 4-slot ring, 256 pages)', () => {
  it('touch, foreign faults up to EBUSY, drain, then a clean run to the end', () => {
    const emu = new Emulator(small());
    stepUntilResumed(emu);
    // PFNS (2064 B) arrives at 28 736 ns, the pager wakes 9 µs later and evicts 256 × 3 µs:
    // the transition (already queued) is handled at 37 736 + 768 000 = 805 736 ns.
    expect(emu.resumedAt).toBe(805_736);
    expect(emu.pager.pagesLoaded).toBe(0);

    expect(emu.vcpus.touch(0, 200, true)).toBe(false);
    expect(emu.ring.contents()).toEqual([
      { id: expect.any(Number), kind: RequestKind.PAGE, gfn: 200, count: 1, producer: 0 },
    ]);
    expect(emu.vcpus.isBlocked(0)).toBe(true);

    const ids = [201, 202, 203, 204].map((g) => emu.foreignFault(g));
    expect(ids.slice(0, 3).every((id) => id >= 0)).toBe(true);
    expect(new Set(ids.slice(0, 3)).size).toBe(3);
    expect(ids[3]).toBe(EBUSY);
    expect(ids[3]).toBe(-1);
    expect(emu.ring.ebusy).toBe(1);
    expect(emu.ring.occupancy).toBe(4);
    expect(emu.ring.contents().map((r) => [r.gfn, r.producer])).toEqual([[200, 0], [201, FOREIGN], [202, FOREIGN], [203, FOREIGN]]);

    emu.runUntil(emu.resumedAt + 50_000);
    expect(emu.ring.queued).toBe(0); // the pager drained the ring...
    expect(emu.ring.occupancy).toBe(4); // ...but every slot stays claimed until its page arrives
    expect(emu.pager.pfnsRequested).toBe(4);
    expect(emu.pager.faultRecords).toBe(1);

    emu.run();
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
    expect(emu.ring.occupancy).toBe(0);
    expect(emu.vcpuFaults).toBe(1);
    expect(emu.foreignFaults).toBe(3);
    expect(emu.latency.count).toBe(4);
    expect(emu.memory.destVersion(200)).toBe(3); // source version 2, plus the vCPU's write
  });

  it('the checker finds a page made present without its load (older than at the source)', () => {
    const emu = new Emulator(small());
    emu.run();
    expect(checkRun(emu)).toEqual([]);
    const g = emu.memory.unasked.size - 1;
    const tampered = new Emulator(small());
    // Present, as if placed without copying the source's page, and never sent.
    tampered.memory.state[g] = PageState.READY;
    tampered.memory.unasked.remove(g);
    tampered.memory.pending--;
    tampered.source.unsent.remove(g);
    expect(tampered.memory.destVersion(g)).toBe(0);
    tampered.run();
    expect(checkRun(tampered).some((v) => /pages hold older data than the source/.test(v))).toBe(true);
  });

  it('an idle vCPU that faulted through touch() stays idle once its page arrives', () => {
    const emu = new Emulator(small());
    const blocked: number[] = [];
    emu.events.on('vcpu-blocked', (e) => blocked.push(e.gfn));
    stepUntilResumed(emu);
    expect(emu.vcpus.touch(0, 17, false)).toBe(false);
    emu.run();
    expect(blocked).toEqual([17]);
    expect(emu.vcpus.accesses).toBe(1);
    expect(emu.vcpuFaults).toBe(1);
    expect(emu.ring.puts).toBe(1);
    expect(emu.ring.occupancy).toBe(0);
    expect(emu.vcpus.blockedAtStop).toEqual([]);
  });

  it('touching a present page succeeds at once and applies the write', () => {
    const emu = new Emulator(vcpuScenario());
    stepUntilResumed(emu);
    expect(emu.vcpus.touch(0, 300, true)).toBe(true);
    expect(emu.memory.destVersion(300)).toBe(2);
    expect(emu.ring.occupancy).toBe(0);
    expect(emu.vcpuFaults).toBe(0);
  });
});

describe('library API argument checks', () => {
  it('touch and foreignFault refuse pages outside guest memory', () => {
    const emu = new Emulator(small());
    stepUntilResumed(emu);
    expect(() => emu.vcpus.touch(0, 256, false)).toThrow(PostcopyEmuError);
    expect(() => emu.vcpus.touch(0, -1, false)).toThrow(PostcopyEmuError);
    expect(() => emu.foreignFault(256)).toThrow(PostcopyEmuError);
    expect(() => emu.foreignFault(250, 10)).toThrow(PostcopyEmuError);
    expect(() => emu.foreignFault(10, 0)).toThrow(PostcopyEmuError);
    expect(emu.ring.occupancy).toBe(0);
    expect(emu.ring.puts).toBe(0);
    expect(emu.foreignFault(250, 6)).toBeGreaterThanOrEqual(0); // the last six pages: in range
  });
});

describe('demand-only source', () => {
  it('fetches exactly the touched page and pushes nothing', () => {
    const emu = new Emulator(vcpuScenario({
      memory: { pages: 512, outstanding: { kind: 'ranges', ranges: [{ start: 0, count: 64 }] } },
      source: { policy: 'demand' },
      limits: { horizonNs: 30_000_000 },
    }));
    const loaded: number[] = [];
    const resumed: Array<[number, number]> = [];
    emu.events.on('page-loaded', (e) => loaded.push(e.gfn));
    emu.events.on('vcpu-resumed', (e) => resumed.push([e.vcpu, e.gfn]));
    stepUntilResumed(emu);
    expect(emu.vcpus.touch(0, 37, false)).toBe(false);
    emu.run();
    expect(loaded).toEqual([37]);
    expect(resumed).toEqual([[0, 37]]);
    expect(emu.source.pagesDemanded).toBe(1);
    expect(emu.source.pagesPushed).toBe(0);
    expect(emu.source.requestsReceived).toBe(1);
    expect(emu.memory.isReady(37)).toBe(true);
    expect(range(0, 64).filter((g) => emu.memory.isReady(g))).toEqual([37]);
    expect(emu.memory.pending).toBe(63);
    // 63 pages never travel: the source never receives COMPLETE.
    expect(emu.finished).toBe(false);
    expect(emu.source.done).toBe(false);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('requested pages jump the queue', () => {
  it('a requested gfn leads the next record and the xen scan continues from it + 1', () => {
    // No send buffer: the source writes a record only when the previous one is on the wire,
    // so a request reaches it while most of memory is still unsent.
    const emu = new Emulator(small({
      memory: { pages: 4096 },
      link: { latencyNs: 10_000, sendBufferBytes: 0 },
      pager: { eviction: 'batched' },
    }));
    const loaded: number[] = [];
    const forwards: Array<{ pfns: number[]; ranges: number[] }> = [];
    emu.events.on('page-loaded', (e) => loaded.push(e.gfn));
    emu.events.on('forward', (e) => forwards.push({ pfns: [...e.pfns], ranges: [...e.ranges] }));
    stepUntilResumed(emu);
    expect(emu.foreignFault(3000)).toBeGreaterThanOrEqual(0);
    emu.run();

    expect(forwards).toEqual([{ pfns: [3000], ranges: [] }]);
    const k = loaded.indexOf(3000);
    // Only the first record (pages 0..63) left the source before the request arrived.
    expect(k).toBe(64);
    expect(loaded.slice(k, k + 8)).toEqual([3000, 3001, 3002, 3003, 3004, 3005, 3006, 3007]);
    expect(loaded).toEqual([...range(0, 64), ...range(3000, 4096), ...range(64, 3000)]);
    expect(emu.source.pagesDemanded).toBe(1);
    expect(emu.source.pagesPushed).toBe(4095);
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('range requests', () => {
  const scenario = () => small({
    memory: { pages: 1024 },
    link: { latencyNs: 10_000, sendBufferBytes: 0 },
    pager: { eviction: 'batched' },
  });

  it('one ring request covers the range; every page is loaded once', () => {
    const { emu, loaded, forwards } = observed(scenario());
    const id = emu.foreignFault(500, 32);
    expect(id).toBeGreaterThanOrEqual(0);
    expect(emu.ring.contents()).toEqual([{ id, kind: RequestKind.RANGE, gfn: 500, count: 32, producer: FOREIGN }]);
    expect(emu.ring.occupancy).toBe(1);
    emu.run();

    expect(forwards).toEqual([{ pfns: [], ranges: [500, 32] }]);
    expect(emu.pager.pfnsRequested).toBe(32);
    expect(emu.source.pagesDemanded).toBe(32);
    expect(emu.source.requestsReceived).toBe(1);
    const k = loaded.indexOf(500);
    expect(loaded.slice(k, k + 32)).toEqual(range(500, 532));
    expectEachPageOnce(emu, loaded);
    expect(emu.pager.pagesLoaded).toBe(1024);
    expect(emu.latency.count).toBe(1);
  });

  it('a range overlapping requested and present pages asks only for the missing ones', () => {
    const { emu, loaded, forwards } = observed(scenario());

    const single = emu.foreignFault(600);
    expect(single).toBeGreaterThanOrEqual(0);
    const overlapping = emu.foreignFault(590, 32); // 600 is already paging in
    expect(overlapping).toBeGreaterThanOrEqual(0);
    expect(emu.foreignFault(600)).toBe(-2); // nothing left to ask for
    expect(emu.foreignFault(595, 4)).toBe(-2);
    expect(emu.ring.occupancy).toBe(2);

    // Let the first record (pages 0..63) arrive, then ask for a range straddling its end.
    while (!emu.memory.isReady(63)) expect(emu.step()).toBe(true);
    expect(emu.memory.isReady(64)).toBe(false);
    expect(emu.foreignFault(0, 8)).toBe(-2);
    const straddling = emu.foreignFault(60, 8);
    expect(straddling).toBeGreaterThanOrEqual(0);
    emu.run();

    expect(forwards).toEqual([
      { pfns: [600], ranges: [590, 32] },
      { pfns: [], ranges: [60, 8] },
    ]);
    // 600, the 31 other pages of 590..621, then 64..67: 60..63 were already present.
    expect(emu.pager.pfnsRequested).toBe(36);
    expect(emu.source.pagesDemanded).toBe(36);
    expect(loaded.slice(0, 64 + 64 + 4)).toEqual([
      ...range(0, 64), 600, ...range(590, 600), ...range(601, 654), 64, 65, 66, 67,
    ]);
    expectEachPageOnce(emu, loaded);
    expect(emu.latency.count).toBe(3);
    expect(emu.ring.puts).toBe(3);
  });

  it('counts requested pages, not requests, when a range and a page request are drained together', () => {
    const emu = new Emulator(scenario());
    stepUntilResumed(emu);
    expect(emu.foreignFault(700)).toBeGreaterThanOrEqual(0);
    expect(emu.foreignFault(690, 32)).toBeGreaterThanOrEqual(0);
    emu.runUntil(emu.kernel.now + 20_000);
    expect(emu.ring.queued).toBe(0);
    expect(emu.pager.pfnsRequested).toBe(32);
    expect(emu.pager.faultRecords).toBe(1);
  });
});

describe('duplicate faults', () => {
  it('Xen: a second vCPU on a page being paged in puts no request; it spins and runs again at the load', () => {
    const emu = new Emulator(vcpuScenario({
      workload: { kind: 'sequential', vcpus: 2, region: { start: 256, count: 256 } },
    }));
    const loaded: number[] = [], anyLoaded = new Set<number>();
    const resumed: Array<{ vcpu: number; gfn: number; time: number }> = [];
    emu.events.on('page-loaded', (e) => {
      anyLoaded.add(e.time);
      if (e.gfn === 42) loaded.push(e.time);
    });
    emu.events.on('vcpu-resumed', (e) => resumed.push({ vcpu: e.vcpu, gfn: e.gfn, time: e.time }));
    stepUntilResumed(emu);

    expect(emu.vcpus.touch(0, 42, false)).toBe(false);
    expect(emu.vcpus.touch(1, 42, true)).toBe(false);
    expect(emu.ring.contents().map((r) => [r.gfn, r.producer])).toEqual([[42, 0]]);
    expect([emu.vcpus.state[1], emu.vcpus.spurious, emu.vcpus.blockedCount]).toEqual([VcpuState.SPINNING, 1, 2]);
    emu.run();

    // vCPU 1 runs once p2m_mem_paging_prep made the page present, in the middle of its record;
    // vCPU 0 once the response, pushed after the record's last page, is consumed (notify: 2 µs).
    expect(resumed.map((r) => [r.vcpu, r.gfn])).toEqual([[1, 42], [0, 42]]);
    expect(resumed[0]!.time).toBe(loaded[0]);
    expect(resumed[1]!.time - 2_000).toBeGreaterThan(loaded[0]!);
    expect(anyLoaded.has(resumed[1]!.time - 2_000)).toBe(true);
    expect([emu.ring.puts, emu.pager.pfnsRequested, emu.latency.count]).toEqual([1, 1, 2]);
    expect(buildReport(emu).emulator.faults).toMatchObject({ vcpu: 2, spurious: 1, network: 1 });
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
  });

  it('userfaultfd: two vCPUs on the same missing page put two requests, one forward, and resume together', () => {
    const emu = new Emulator(vcpuScenario({
      pager: { placement: 'uffd' },
      workload: { kind: 'sequential', vcpus: 2, region: { start: 256, count: 256 } },
    }));
    const forwarded: number[] = [];
    const resumed: Array<{ vcpu: number; gfn: number; time: number }> = [];
    emu.events.on('forward', (e) => forwarded.push(...e.pfns));
    emu.events.on('vcpu-resumed', (e) => resumed.push({ vcpu: e.vcpu, gfn: e.gfn, time: e.time }));
    stepUntilResumed(emu);

    expect(emu.vcpus.touch(0, 42, false)).toBe(false);
    expect(emu.vcpus.touch(1, 42, true)).toBe(false);
    expect(emu.ring.occupancy).toBe(2);
    expect(emu.ring.contents().map((r) => [r.gfn, r.producer])).toEqual([[42, 0], [42, 1]]);
    emu.run();

    expect(forwarded.filter((g) => g === 42)).toHaveLength(1);
    expect(emu.pager.pfnsRequested).toBe(1);
    expect(resumed.map((r) => [r.vcpu, r.gfn]).sort()).toEqual([[0, 42], [1, 42]]);
    expect(resumed[0]!.time).toBe(resumed[1]!.time);
    expect(emu.latency.count).toBe(2);
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('full ring with vCPUs', () => {
  it('a vCPU that finds the ring full sleeps on the wait queue and is served later', () => {
    const emu = new Emulator(vcpuScenario({
      ring: { capacity: 1 },
      workload: { kind: 'sequential', vcpus: 2, region: { start: 256, count: 256 } },
    }));
    const resumed: Array<[number, number]> = [];
    const faults: Array<[number, number]> = [];
    emu.events.on('vcpu-resumed', (e) => resumed.push([e.vcpu, e.gfn]));
    emu.events.on('fault', (e) => faults.push([e.producer, e.gfn]));
    stepUntilResumed(emu);

    expect(emu.vcpus.touch(0, 10, false)).toBe(false);
    expect(emu.vcpus.touch(1, 200, false)).toBe(false);
    expect(emu.ring.occupancy).toBe(1);
    expect(emu.ring.waitQueue).toEqual([1]);
    expect(emu.ring.contents().map((r) => r.gfn)).toEqual([10]);
    expect(faults).toEqual([[0, 10]]); // vCPU 1 has not put its request yet
    expect(emu.foreignFault(100)).toBe(EBUSY);
    emu.run();

    expect(emu.ring.waitQueue).toEqual([]);
    expect(faults).toEqual([[0, 10], [1, 200]]);
    expect(resumed).toEqual([[0, 10], [1, 200]]);
    expect(emu.vcpuFaults).toBe(2);
    expect(emu.ring.puts).toBe(2);
    expect(emu.latency.count).toBe(2);
    expect(emu.ring.maxOccupancy).toBe(1);
    expect(emu.ring.occupancy).toBe(0);
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('eviction at the transition', () => {
  const run = (pager: ScenarioInput['pager']) => buildReport(new Emulator(small({ memory: { pages: 4096 }, pager })).run());

  it('per-pfn costs pages × evictPerPfnNs; batched costs ⌈pages / batch⌉ calls plus a per-page cost', () => {
    const perPfn = run({ eviction: 'per-pfn' }), batched = run({ eviction: 'batched' });
    const cheap = run({ eviction: 'batched', evictBatchPages: 1024, evictBatchPerPageNs: 100 });
    expect(perPfn.emulator['eviction-time']).toBe(12.288); // 4096 × 3 000 ns
    expect(batched.emulator['eviction-time']).toBe(2.053); // one call per PFNS record: 5 000 + 4096 × 500
    expect(cheap.emulator['eviction-time']).toBe(0.43); // 4 × 5 000 + 4096 × 100 = 429 600 ns
    // PFNS arrives at 289 616 ns, the pager starts 9 µs later; the transition waits for the
    // eviction, unless the eviction ends first and the transition (847 088 ns) wakes the pager.
    expect(perPfn.downtime).toBe(12.587); // 298 616 + 12 288 000
    expect(batched.downtime).toBe(2.352); // 298 616 + 2 053 000
    expect(cheap.downtime).toBe(0.856); // 847 088 + 9 000
    for (const r of [perPfn, batched, cheap]) expect(r.status).toBe('completed');
    expect(perPfn.emulator['pages-loaded']).toBe(4096);
  });

  it('eviction uses the configured costs', () => {
    const r = buildReport(new Emulator(small({
      memory: { pages: 3000 },
      pager: { eviction: 'batched', evictBatchPages: 1000, evictBatchCallNs: 7_000, evictBatchPerPageNs: 10 },
    })).run());
    expect(r.emulator['eviction-time']).toBe(0.051); // 3 × 7 000 + 3000 × 10
  });
});

describe('observer events', () => {
  it('nothing is emitted without listeners', () => {
    const emu = new Emulator(small());
    const emit = vi.spyOn(emu.events, 'emit');
    stepUntilResumed(emu);
    emu.foreignFault(5);
    emu.run();
    expect(emu.finished).toBe(true);
    expect(emit).not.toHaveBeenCalled();
  });

  it('only the events listened to are emitted: one page-loaded per page', () => {
    const emu = new Emulator(small());
    const emit = vi.spyOn(emu.events, 'emit');
    const loaded: number[] = [];
    emu.events.on('page-loaded', (e) => loaded.push(e.gfn));
    stepUntilResumed(emu);
    emu.foreignFault(5);
    emu.run();
    expect(loaded).toHaveLength(256);
    expect(emu.pager.pagesLoaded).toBe(256);
    expect(emit).toHaveBeenCalledTimes(256);
    expect(new Set(emit.mock.calls.map((c) => c[0]))).toEqual(new Set(['page-loaded']));
  });

  it('guest-resumed and complete fire once, in order, and the run then stops', () => {
    const emu = new Emulator(small());
    const seen: Array<[string, number]> = [];
    emu.events.on('guest-resumed', (e) => seen.push(['guest-resumed', e.time]));
    emu.events.on('complete', (e) => seen.push(['complete', e.time]));
    emu.run();
    expect(seen.map((s) => s[0])).toEqual(['guest-resumed', 'complete']);
    expect(seen[0]![1]).toBe(805_736);
    expect(seen[0]![1]).toBe(emu.resumedAt);
    expect(seen[1]![1]).toBe(emu.source.completeAt);
    expect(emu.kernel.now).toBe(emu.source.completeAt);
    expect(emu.step()).toBe(false);
  });
});

describe('end of the run', () => {
  it('a completed migration has consumed every response, even when the notify is slower than COMPLETE', () => {
    // The last page answers a foreign request; its response is consumed 1 ms after the load,
    // while COMPLETE reaches the source about 11 µs after it.
    const emu = new Emulator(small({ pager: { notifyNs: 1_000_000 } }));
    stepUntilResumed(emu);
    expect(emu.foreignFault(255)).toBeGreaterThanOrEqual(0);
    emu.run();
    expect(emu.finished).toBe(true);
    expect(emu.ring.occupancy).toBe(0);
    expect(emu.latency.count).toBe(1);
    expect(checkRun(emu)).toEqual([]);
  });

  it('black eye on a ring smaller than the vCPU count is rejected: it could leave a vCPU paused for ever', () => {
    let err: unknown;
    try {
      new Emulator({ memory: { pages: 256 }, ring: { capacity: 1, blackEye: true }, workload: { kind: 'random', vcpus: 2 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as ScenarioError).path).toBe('ring.blackEye');
  });

  it('black eye with a slot per vCPU completes with every vCPU running', () => {
    const emu = new Emulator(vcpuScenario({
      ring: { capacity: 2, blackEye: true },
      workload: { kind: 'sequential', vcpus: 2, region: { start: 256, count: 256 } },
    }));
    stepUntilResumed(emu);
    expect(emu.vcpus.touch(0, 10, false)).toBe(false);
    expect(emu.vcpus.touch(1, 20, false)).toBe(false);
    // Two puts leave 0 free slots < 2 vCPUs: both are marked for the black eye.
    expect(emu.ring.isBlocked(0)).toBe(true);
    expect(emu.ring.isBlocked(1)).toBe(true);
    emu.run();
    expect(emu.finished).toBe(true);
    expect(emu.vcpus.blockedAtStop).toEqual([]);
    expect(emu.latency.count).toBe(2);
    expect(checkRun(emu)).toEqual([]);
  });

  it('a workload with zero think time still lets the clock reach the end of the migration', () => {
    const emu = new Emulator(small({ workload: { kind: 'sequential', vcpus: 1, thinkNs: 0 } }));
    // The same scenario with the default think time takes a few thousand events.
    while (emu.kernel.events < 200_000 && emu.step());
    expect(emu.memory.pending).toBe(0);
    expect(emu.finished).toBe(true);
    expect(emu.kernel.now).toBe(emu.source.completeAt);
  });
});

describe('library touches on a running vCPU', () => {
  it('a touch that faults supersedes the slice already scheduled: the vCPU keeps one access stream', () => {
    // Long think times put the next slice far ahead, well after the fault is answered.
    const workload = { kind: 'sequential' as const, vcpus: 1, thinkNs: 5_000_000, region: { start: 256, count: 256 } };
    const accessesBy = (touch: boolean) => {
      const emu = new Emulator(vcpuScenario({ workload, source: { policy: 'demand' } }));
      stepUntilResumed(emu);
      emu.runUntil(emu.resumedAt + 1_000_000); // the first slice ran; the next is ~320 ms ahead
      if (touch) expect(emu.vcpus.touch(0, 5, false)).toBe(false);
      emu.runUntil(emu.resumedAt + 2_000_000_000);
      return emu.vcpus.accesses;
    };
    const control = accessesBy(false);
    const touched = accessesBy(true);
    // ~400 touches in 2 s at 5 ms each; a second stream left running in parallel after the
    // fault would almost double the count.
    expect(control).toBeGreaterThan(340);
    expect(control).toBeLessThan(460);
    expect(touched).toBeLessThan(control * 1.2);
    expect(touched).toBeGreaterThan(control * 0.8);
  });
});

describe('think times', () => {
  it('constant think times are exactly thinkNs; exponential ones vary around it', () => {
    const pattern = (think: 'constant' | 'exponential') =>
      new AccessPattern(parseScenario({ memory: { pages: 64 }, workload: { kind: 'sequential', vcpus: 1, thinkNs: 5000, think } }), 0, new Rng(1, 'vcpu-0'), new Space());
    const draws = (p: AccessPattern) => Array.from({ length: 1000 }, () => p.think[p.take()]!);
    expect(new Set(draws(pattern('constant')))).toEqual(new Set([5000]));
    const exp = draws(pattern('exponential'));
    expect(new Set(exp).size).toBeGreaterThan(900);
    expect(exp.reduce((a, b) => a + b, 0) / 1000).toBeGreaterThan(4500);
    expect(exp.reduce((a, b) => a + b, 0) / 1000).toBeLessThan(5500);
  });
});

describe('shuffled workload', () => {
  it('visits every page of the region once per pass, from a seeded place in the firmware\'s LCG order', () => {
    const s = parseScenario({ memory: { pages: 2048 }, workload: { kind: 'shuffled', vcpus: 1, region: { start: 100, count: 1000 } } });
    const p = new AccessPattern(s, 0, new Rng(7, 'vcpu-0'), new Space());
    const seen = new Uint16Array(1000);
    for (let i = 0; i < 3000; i++) seen[p.gfn[p.take()]! - 100]!++;
    expect(seen.every((n) => n === 3)).toBe(true);
    const again = new AccessPattern(s, 0, new Rng(7, 'vcpu-0'), new Space());
    const other = new AccessPattern(s, 0, new Rng(8, 'vcpu-0'), new Space());
    const first = (a: AccessPattern) => Array.from({ length: 8 }, () => a.gfn[a.take()]!);
    const a = first(again);
    expect(a).toEqual(first(new AccessPattern(s, 0, new Rng(7, 'vcpu-0'), new Space())));
    expect(a).not.toEqual(first(other));
  });
});
