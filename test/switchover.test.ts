import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

const GiB = 262_144; // 4 KiB pages

describe('QEMU switchover: discard ranges, no page list (source.switchover discard)', () => {
  const pure = (pages: number, policy: 'qemu' | 'xen'): ScenarioInput => ({
    memory: { pages }, source: { policy }, pager: { eviction: 'batched' },
    workload: { kind: 'idle' }, limits: { stopAt: 'resume' },
  });

  it('pure postcopy downtime in QEMU mode is flat in guest size (1, 4, 16, 64 GiB)', () => {
    const downtime = [1, 4, 16, 64].map((g) => {
      const emu = new Emulator(pure(g * GiB, 'qemu')).run();
      expect(emu.resumedAt).toBeGreaterThan(0);
      return emu.resumedAt;
    });
    for (const d of downtime) expect(Math.abs(d - downtime[0]!) / downtime[0]!).toBeLessThanOrEqual(0.2);
    // One discard range over memory the destination never received: one madvise, 2 µs.
    expect(new Emulator(pure(GiB, 'qemu')).run().pager.evictionNs).toBe(2_000);
  });

  it('Xen mode keeps its page list and eviction: downtime grows with the guest', () => {
    const one = new Emulator(pure(GiB, 'xen')).run(), four = new Emulator(pure(4 * GiB, 'xen')).run();
    // batched eviction (RFC v2): one populate_evicted call (5 µs) per POSTCOPY_PFNS record of
    // ≤ 512k pfns, 500 ns a pfn; 4 GiB is two records
    expect(one.pager.evictionNs).toBe(5_000 + GiB * 500);
    expect(four.pager.evictionNs).toBe(2 * 5_000 + 4 * GiB * 500);
    expect(four.resumedAt).toBeGreaterThan(3 * one.resumedAt);
  });

  it('charges one madvise per range and each page the destination held (sent, then dirtied)', () => {
    const emu = new Emulator({
      memory: { pages: 4096, outstanding: { kind: 'ranges', ranges: [{ start: 0, count: 100 }, { start: 200, count: 50 }] } },
      source: { policy: 'qemu' }, workload: { kind: 'idle' },
    }).run();
    expect(emu.pager.evictionNs).toBe(2 * 2_000 + 150 * 100);
    expect(checkRun(emu)).toEqual([]);
  });

  it('source.switchover pfns brings the page list back under policy qemu', () => {
    const emu = new Emulator({ ...pure(GiB, 'qemu'), source: { policy: 'qemu', switchover: 'pfns' } }).run();
    expect(emu.pager.evictionNs).toBe(5_000 + GiB * 500);
  });
});

describe('ring.unbounded', () => {
  it('gives any policy userfaultfd\'s queue: no wait for a slot, no EBUSY; a set capacity warns', () => {
    const input: ScenarioInput = {
      memory: { pages: 4096 }, ring: { capacity: 1, unbounded: true }, source: { policy: 'xen' },
      mapper: { mapping: { kind: 'ranges', ranges: [{ start: 1024, count: 512 }] } },
      workload: { kind: 'random', vcpus: 4, writeFraction: 1 },
    };
    const emu = new Emulator(input).run();
    expect(emu.warnings).toEqual(['ring.capacity and ring.blackEye are ignored with ring.unbounded: userfaultfd queues faults without bound']);
    expect(emu.ring.ebusy).toBe(0);
    expect(emu.mapper.requests).toBe(512);
    expect(checkRun(emu)).toEqual([]);
    const bounded = new Emulator({ ...input, ring: { capacity: 1 } }).run();
    expect(bounded.ring.ebusy).toBeGreaterThan(0);
  });
});

/** Page loads in order, as runs [first gfn, last gfn, time of first load, time of last load]. */
function loadRuns(emu: Emulator): number[][] {
  const runs: number[][] = [];
  emu.events.on('page-loaded', ({ time, gfn }) => {
    const r = runs.at(-1);
    if (r && r[1]! + 1 === gfn) {
      r[1] = gfn;
      r[3] = time;
    } else runs.push([gfn, gfn, time, time]);
  });
  return runs;
}

describe('push-only and lazy-pages', () => {
  const faulting = (policy: 'push-only' | 'lazy-pages' | 'xen'): ScenarioInput => ({
    memory: { pages: 1024 }, source: { policy }, link: { sendBufferBytes: 65_536, receiveBufferBytes: 65_536 },
    workload: { kind: 'sequential', vcpus: 1, region: { start: 1000, count: 1 } }, limits: { horizonNs: 100e6 },
  });

  it('push-only ignores the fault: page 1000 comes when the scan reaches it, in page order', () => {
    const emu = new Emulator(faulting('push-only'));
    const runs = loadRuns(emu), resumed: number[] = [];
    emu.events.on('vcpu-resumed', (e) => resumed.push(e.time));
    emu.run();
    expect(runs.map((r) => [r[0], r[1]])).toEqual([[0, 1023]]);
    expect([emu.source.requestsReceived, emu.source.pagesDemanded]).toEqual([1, 0]);
    const xen = new Emulator(faulting('xen')).run();
    expect(xen.source.pagesDemanded).toBe(1);
    expect(xen.latency.count).toBe(1);
    // The vCPU runs again one notify (2 µs) after the page is loaded… when the scan got there.
    expect(resumed[0]).toBeGreaterThan(emu.resumedAt + 3e6);
  });

  it('lazy-pages: one chunk in flight at a time (16, 32, 48 pages), each pulled once the last arrived', () => {
    const loadTimes = (policy: 'lazy-pages' | 'adaptive-chunk') => {
      const emu = new Emulator({ memory: { pages: 96 }, source: { policy }, workload: { kind: 'idle' } });
      const at: number[] = [];
      emu.events.on('page-loaded', ({ time, gfn }) => { at[gfn] = time; });
      emu.run();
      expect(emu.finished).toBe(true);
      expect(checkRun(emu)).toEqual([]);
      return at;
    };
    const lazy = loadTimes('lazy-pages'), streamed = loadTimes('adaptive-chunk');
    // A record's pages load together: chunks 0–15, 16–47, 48–95 as adaptive-chunk sizes them.
    for (const at of [lazy, streamed]) expect([at[0] === at[15], at[16] === at[47], at[48] === at[95], at[15]! < at[16]!]).toEqual([true, true, true, true]);
    // adaptive-chunk streams its chunks back to back; lazy-pages asks for each one after the
    // last arrived: the request crosses the back-channel (50 µs) and the chunk the stream
    // (50 µs) before its serialisation starts, so each gap is a round trip longer, or more.
    for (const [last, first] of [[15, 16], [47, 48]] as const) {
      expect(lazy[first]! - lazy[last]! - (streamed[first]! - streamed[last]!)).toBeGreaterThanOrEqual(100_000);
    }
  });

  it('lazy-pages: a fault waits for the chunk in flight, then comes alone; the next chunk follows it', () => {
    const emu = new Emulator(faulting('lazy-pages'));
    const runs = loadRuns(emu);
    const at: number[] = [];
    emu.events.on('page-loaded', ({ time, gfn }) => { at[gfn] = time; });
    emu.run();
    // chunk 0–15 (sent at the switchover), page 1000 alone after it, then chunks from 1001.
    expect(runs.map((r) => [r[0], r[1]])).toEqual([[0, 15], [1000, 1023], [16, 999]]);
    expect(at[1000]).toBeGreaterThan(at[15]!);
    // The chunk after the reply is pulled once the reply arrived: a round trip (100 µs) or more.
    expect(at[1001]! - at[1000]!).toBeGreaterThanOrEqual(100_000);
    // The fault reset the chunk: 1001–1016 is one record of 16 pages.
    expect([at[1001] === at[1016], at[1016]! < at[1017]!]).toEqual([true, true]);
    expect(emu.source.pagesDemanded).toBe(1);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('QEMU ending a hybrid migration as precopy', () => {
  // An idle 64 MiB guest: nothing is dirty once the first pass is over.
  const idle = (policy: 'qemu' | 'xen', mode: 'hybrid' | 'precopy'): ScenarioInput => ({
    memory: { pages: 16_384 }, source: { policy }, mapper: { mapping: { kind: 'none' } }, workload: { kind: 'idle' },
    migration: mode === 'hybrid' ? { mode, switchAfterIterations: 1 } : { mode }, precopy: { policy },
  });

  it('completes as precopy when nothing is pending at the switch (migration_iteration_run), and the load waits for the delayed ACK', () => {
    const hybrid = new Emulator(idle('qemu', 'hybrid')).run(), pre = new Emulator(idle('qemu', 'precopy')).run();
    expect(checkRun(hybrid)).toEqual([]);
    expect(buildReport(hybrid).emulator.precopy!.end).toBe('converged');
    expect(buildReport(hybrid).emulator['status-history'].map((h) => h.status)).not.toContain('postcopy-active');
    // With the return path open (postcopy-ram), VMDESC waits out the destination's 40 ms
    // delayed ACK; a plain precopy has no return path and no wait.
    const down = (e: Emulator) => e.resumedAt - e.pausedAt;
    expect(down(hybrid) - down(pre)).toBe(40_000_000);
    expect(down(new Emulator({ ...idle('qemu', 'hybrid'), link: { delayedAckNs: 0 } }).run())).toBe(down(pre));
  });

  it('Xen has no such wait: its stream is libxc\'s, not QEMU\'s', () => {
    const down = (e: Emulator) => e.resumedAt - e.pausedAt;
    const hybrid = new Emulator(idle('xen', 'hybrid')).run();
    expect(buildReport(hybrid).emulator.precopy!.end).toBe('converged');
    expect(down(hybrid)).toBe(down(new Emulator(idle('xen', 'precopy')).run()));
  });
});

describe('QEMU\'s switchover commands under Nagle', () => {
  // A 4 MiB idle guest at 1 Gbit/s; pages outstanding: one, or all 1 024.
  const run = (transitionBytes: number, outstanding: number, delayedAckNs = 40_000_000, clearPerPageNs = 0) => {
    const emu = new Emulator({
      memory: { pages: 1024, outstanding: outstanding === 1024 ? { kind: 'all' } : { kind: 'ranges', ranges: [{ start: 0, count: outstanding }] } },
      link: { delayedAckNs }, source: { policy: 'qemu', transitionBytes }, workload: { kind: 'idle' },
      precopy: { clearPerPageNs }, limits: { stopAt: 'resume' },
    }).run();
    expect(checkRun(emu)).toEqual([]);
    return (emu.resumedAt - emu.pausedAt) / 1e6;
  };

  it('a package under 32 KiB waits in the socket for the next 32 KiB QEMU writes, or for the delayed ACK', () => {
    // 40 KB fills a segment: it goes at once (0.32 ms on the wire, the rest the pager's).
    expect(run(40_000, 1)).toBeCloseTo(0.401, 3);
    // 1 000 bytes and a single 4 KiB page after them: nothing more to push it out, so the
    // destination's delayed ACK releases them, 40 ms (or 5 ms) after the stop.
    expect(run(1_000, 1)).toBeCloseTo(40.062, 3);
    expect(run(1_000, 1, 5_000_000)).toBeCloseTo(5.062, 3);
    // With every page to send, the first 64-page record (256 KiB) follows at once and takes
    // the package with it.
    expect(run(1_000, 1024)).toBeCloseTo(0.092, 3);
  });

  it('the first page after the switch waits for its chunk\'s dirty-log clear, and the held package with it', () => {
    // Postcopy with no precopy: the log is all set, the 4 MiB chunk's 1 024 pages cleared at
    // 100 ns each before the first record goes.
    expect(run(1_000, 1024, 40_000_000, 100) - run(1_000, 1024)).toBeCloseTo(0.1024, 4);
    // A package that went on its own does not wait for it.
    expect(run(40_000, 1024, 40_000_000, 100) - run(40_000, 1024)).toBeCloseTo(0, 4);
  });
});
