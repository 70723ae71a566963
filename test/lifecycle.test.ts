import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import { expectSound, lifecycleRun, report } from './lifecycle-fixture.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { RECORD_HEADER_BYTES, pageDataBytes, pfnListBytes, qemuPagesBytes } from '../src/stream/records.ts';

/** fio rewriting pages 0..4095 at 250 MB/s: the whole region is dirty again well within a pass (~280 ms). */
const R = 4096;
const FIO = { kind: 'fio' as const, region: { start: 0, count: R }, bytesPerSec: 250e6 };

describe('hybrid: precopy, then the switch to postcopy', () => {
  it('Xen passes: after pass 1 the rewritten region is discarded and becomes the outstanding set', () => {
    const emu = lifecycleRun({ migration: { mode: 'hybrid', switchAfterIterations: 1 }, precopy: { policy: 'xen', dirtying: FIO } });
    const r = report(emu), pre = emu.precopy!;
    expect(r.status).toBe('completed');
    expect(r.pre.end).toBe('switch');
    expect(r.pre['switched-to-postcopy']).toBe(true);
    expect(r.pre.iterations).toBe(1);
    // Pass 1 sent every page once: 128 Xen PAGE_DATA records of 64 pages.
    expect(r.pre['pages-sent']).toBe(8192);
    expect(r.ram['precopy-bytes']).toBe(128 * pageDataBytes(64, 4096));
    // Every region page was sent in pass 1 and rewritten since: all R discarded, in one range,
    // one range; Xen sends no discard message: its POSTCOPY_PFNS records list the pages.
    expect(r.pre['discarded-pages']).toBe(R);
    expect(r.pre['discard-ranges']).toBe(1);
    expect(pre.bytes - pre.precopyBytes).toBe(0);
    expect(r.emulator['outstanding-at-start']).toBe(R);
    // The core fetched exactly the outstanding set.
    expect(r.emulator['pages-pushed'] + r.emulator['pages-demand-fetched']).toBe(R);
    expect(r.ram.normal).toBe(8192 + R);
    // Downtime: from the pause at the source to the guest running at the destination.
    expect(emu.pausedAt).toBe(pre.pausedAt);
    expect(emu.resumedAt).toBeGreaterThan(emu.pausedAt);
    expect(r.downtime).toBeCloseTo((emu.resumedAt - emu.pausedAt) / 1e6, 3);
    expect(r.emulator['status-history'].map((h) => h.status)).toEqual(['setup', 'active', 'postcopy-active', 'completed']);
    expect(checkRun(emu)).toEqual([]);
    expect(pre.staleOutside()).toBe(0);
  });

  it('QEMU policy: the discarded pages are the region; the outstanding set adds the pages never sent', () => {
    const emu = lifecycleRun({
      migration: { mode: 'hybrid', switchAfterIterations: 1 },
      precopy: { downtimeLimitMs: 30, dirtying: FIO },
    });
    const r = report(emu), pre = emu.precopy!;
    expect(r.pre.end).toBe('switch');
    expect(r.pre['switched-to-postcopy']).toBe(true);
    let neverSent = 0;
    for (let g = 0; g < 8192; g++) if (!pre.sentBefore(g)) neverSent++;
    expect(neverSent).toBeGreaterThan(0);
    expect(r.pre['discarded-pages']).toBe(R);
    expect(r.emulator['outstanding-at-start']).toBe(R + neverSent);
    // QEMU sends every dirty run as a 16-byte discard range, 12 to a message, after the pause.
    const ranges = r.pre['discard-ranges'];
    expect(ranges).toBeGreaterThanOrEqual(1);
    expect(r.ram['downtime-bytes']).toBe(ranges * 16 + Math.ceil(ranges / 12) * RECORD_HEADER_BYTES);
    expect(r.status).toBe('completed');
    expect(r.downtime).toBeCloseTo((emu.resumedAt - emu.pausedAt) / 1e6, 3);
    expect(checkRun(emu)).toEqual([]);
    expect(pre.staleOutside()).toBe(0);
  });

  it('switchAtNs switches at the first step past it', () => {
    const emu = lifecycleRun({ migration: { mode: 'hybrid', switchAtNs: 300e6 }, precopy: { downtimeLimitMs: 30, dirtying: FIO } });
    const r = report(emu);
    expect(r.pre.end).toBe('switch');
    expect(r.pre['paused-at-ms']).toBeGreaterThanOrEqual(300);
    expect(r.pre['paused-at-ms']).toBeLessThan(305);
    expect(r.pre['discarded-pages']).toBe(R);
    expectSound(emu);
  });

  it('a hybrid migration that converges completes with stop-and-copy, not postcopy', () => {
    const emu = lifecycleRun({ migration: { mode: 'hybrid', switchAfterIterations: 50 }, precopy: { dirtying: { kind: 'none' } } });
    const r = report(emu);
    expect(r.pre.end).toBe('converged');
    expect(r.pre['switched-to-postcopy']).toBe(false);
    expect(r.pre['discarded-pages']).toBe(0);
    expect(r.emulator['outstanding-at-start']).toBe(0);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('zero pages in precopy', () => {
  const zeroRun = (zeroPageDetection: 'legacy' | 'none') => lifecycleRun({
    memory: { pages: 4096, zeroFraction: 0.5 },
    source: { policy: 'qemu', zeroPageDetection },
    migration: { mode: 'precopy' },
    precopy: { dirtying: { kind: 'none' } },
  });

  it('legacy detection: zero pages are duplicate and cost a 9-byte marker instead of 4 KiB', () => {
    const emu = zeroRun('legacy'), r = report(emu);
    let zeros = 0;
    for (let g = 0; g < 4096; g++) if (emu.precopy!.zero!.has(g)) zeros++;
    expect(zeros).toBeGreaterThan(1900);
    expect(zeros).toBeLessThan(2200);
    expect(r.ram.duplicate).toBe(zeros);
    expect(r.ram.duplicate + r.ram.normal).toBe(4096);
    expect(r.ram['normal-bytes']).toBe(r.ram.normal * 4096);
    // QEMU's stream: 8-byte header per page, + 1 byte per zero page, + 4 KiB per normal page.
    const precopyBytes = qemuPagesBytes(r.ram.normal, r.ram.duplicate, 4096);
    expect(precopyBytes).toBe(r.ram.normal * 4104 + r.ram.duplicate * 9);
    expect(emu.precopy!.bytes).toBe(precopyBytes);
    // After stop-and-copy the core sends only an empty PFNS record and the 64 KiB transition.
    expect(emu.stream.bytesPayload).toBe(pfnListBytes(0) + emu.scenario.source.transitionBytes);
    expect(r.ram.transferred).toBe(precopyBytes + pfnListBytes(0) + 65_536);
    expectSound(emu);
  });

  it('detection none: every page is sent whole', () => {
    const emu = zeroRun('none'), r = report(emu);
    expect(r.ram.duplicate).toBe(0);
    expect(r.ram.normal).toBe(4096);
    expect(r.ram.transferred).toBeGreaterThanOrEqual(4096 * 4096);
    expect(emu.precopy!.bytes).toBe(qemuPagesBytes(4096, 0, 4096));
    const legacy = report(zeroRun('legacy'));
    // The same pages, the zero ones whole: 4 096 + 8 − 9 bytes more each.
    expect(r.ram.transferred - legacy.ram.transferred).toBe(legacy.ram.duplicate * 4095);
    expect(r['total-time']).toBeGreaterThan(legacy['total-time']);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('multifd', () => {
  /** 4 096 pages, nothing dirtied: the time is one pass plus the stop-and-copy tail. */
  const mf = (over: { precopy?: ScenarioInput['precopy']; multifd?: ScenarioInput['multifd']; memory?: ScenarioInput['memory']; source?: ScenarioInput['source'] }) => lifecycleRun({
    memory: { pages: 4096, ...over.memory },
    source: { policy: 'qemu', ...over.source },
    migration: { mode: 'precopy' },
    precopy: { dirtying: { kind: 'none' }, ...over.precopy },
    multifd: over.multifd ?? {},
  });

  it('with a cheap main thread, 4 channels on their own wires are faster than one stream', () => {
    // One stream: 16.8 MB at 117.7 MB/s ≈ 143 ms. Multifd: the main thread hands a 128-page packet
    // every 128 × 100 ns + 5 µs; each wire carries 8 packets of 525 376 B: ≈ 36 ms.
    const single = mf({}), four = mf({ multifd: { channels: 4, wire: 'per-channel' } });
    const a = report(single), b = report(four);
    expect(a['total-time']).toBeGreaterThan(140);
    expect(b['total-time']).toBeLessThan(a['total-time'] / 3);
    expect(b.pre.multifd).toEqual({ packets: 32, 'channel-busy-ms': 1.638 }); // 4 096 × 400 ns
    // Packets: MultiFDPacket_t (320 bytes) with 128 offset slots, then the pages; one sync of 4 × 320 bytes.
    expect(b.ram['multifd-bytes']).toBe(32 * (320 + 8 * 128) + 4096 * 4096 + 4 * 320);
    // SYNC packets count in transferred too.
    expect(b.ram.transferred - b.ram['postcopy-bytes'] - b.ram['downtime-bytes'] - b.ram['precopy-bytes']).toBe(b.ram['multifd-bytes']);
    expect(a.ram['multifd-bytes']).toBe(0);
    for (const e of [single, four]) {
      expectSound(e);
    }
  });

  it('one channel: the thread fills the next packet while the channel sends the last (multifd_send_pages)', () => {
    // 8 packets of 128 pages. Thread per packet: 128 × 10 µs scan + 3 µs hand-off = 1.283 ms;
    // channel per packet: 128 × 10 µs copy = 1.28 ms; the 1 Tbit/s wire adds 4 µs.
    const run = (channels: number) => lifecycleRun({
      memory: { pages: 1024 },
      link: { rateMbps: 1e6 },
      backChannel: { rateMbps: 1e6 },
      source: { policy: 'qemu', perPageNs: 10_000 },
      migration: { mode: 'precopy' },
      precopy: { dirtying: { kind: 'none' }, scanPageNs: 10_000 },
      multifd: { channels, wire: 'per-channel' },
    });
    const one = run(1), setup = 2_000_000 + 1024; // setupNs + the first sync (1 ns a page)
    // Handed over back to back: the last at setup + 8 × 1.283 ms; two syncs (1 024 ns each) then pause.
    expect(one.precopy!.pausedAt).toBe(setup + 8 * 1_283_000 + 1024);
    // The channel ends 1.28 ms after the last hand-off, then SYNC (20 µs): ≈ max, not the sum
    // (setup + 8 × 2.563 ms = 22.5 ms had the thread waited for each send).
    expect(one.precopy!.startAt).toBe(setup + 8 * 1_283_000 + 1_280_000 + 20_000);
    // The thread is the bottleneck: a second channel changes nothing.
    expect(run(2).precopy!.startAt).toBe(one.precopy!.startAt);
    expectSound(one);
  });

  it('on one shared wire, multifd cannot beat the wire', () => {
    const a = report(mf({})), b = report(mf({ multifd: { channels: 4 } }));
    expect(Math.abs(b['total-time'] / a['total-time'] - 1)).toBeLessThan(0.01);
  });

  it('with the main thread saturated (40 µs per page), multifd gives no speed-up', () => {
    // Main thread: 4 096 × 40 µs = 164 ms either way, more than the wire's 143 ms.
    const a = report(mf({ precopy: { scanPageNs: 40_000 } }));
    const b = report(mf({ precopy: { scanPageNs: 40_000 }, multifd: { channels: 4, wire: 'per-channel' } }));
    expect(a['total-time']).toBeGreaterThan(2.004 + 4096 * 0.04);
    expect(b['total-time']).toBeGreaterThan(2.004 + 4096 * 0.04);
    expect(Math.abs(b['total-time'] / a['total-time'] - 1)).toBeLessThan(0.03);
  });

  it('zero-page-detection multifd moves zero pages into the channels\' packets', () => {
    const zeroMf = (zeroPageDetection: 'legacy' | 'multifd', zeroCheckNs = 400) => mf({
      memory: { pages: 4096, zeroFraction: 0.5 },
      source: { zeroPageDetection, zeroCheckNs },
      multifd: { channels: 4, wire: 'per-channel' },
    });
    const legacy = zeroMf('legacy'), inChannel = zeroMf('multifd');
    const a = report(legacy), b = report(inChannel);
    const zeros = a.ram.duplicate;
    expect(zeros).toBeGreaterThan(1900);
    expect(b.ram.duplicate).toBe(zeros);
    expect(b.ram.normal).toBe(a.ram.normal);
    expect(b.ram['multifd-bytes']).toBeGreaterThan(0);
    // Legacy: the main thread sends each zero page as a 9-byte record on the main channel and
    // fills packets with data pages only…
    expect(legacy.precopy!.stream.bytesPayload).toBe(9 * zeros);
    expect(inChannel.precopy!.stream.bytesPayload).toBe(0);
    const packets = (e: Emulator) => e.precopy!.multifd!.packets;
    expect(packets(legacy)).toBe(Math.ceil((4096 - zeros) / 128));
    // … in the channels every page rides in a packet, a zero page as its offset slot only…
    expect(packets(inChannel)).toBe(32);
    expect(b.ram['multifd-bytes'] - a.ram['multifd-bytes']).toBe((32 - packets(legacy)) * (320 + 8 * 128));
    // … and the channels read the zero pages whole (400 ns each) instead of the main thread.
    expect(inChannel.precopy!.multifd!.busyNs - legacy.precopy!.multifd!.busyNs).toBe(zeros * 400);
    for (const e of [legacy, inChannel]) {
      expectSound(e);
    }
    // With a costly check (20 µs a page) the main thread is the bottleneck in legacy mode:
    // its pass takes at least the ~2 000 zero checks (≈ 41 ms); spread over 4 channels it is faster.
    const slowLegacy = report(zeroMf('legacy', 20_000)), slowChannels = report(zeroMf('multifd', 20_000));
    expect(slowLegacy.pre['paused-at-ms']).toBeGreaterThanOrEqual(2.004 + (zeros * 20_000) / 1e6);
    expect(slowChannels.pre['paused-at-ms']).toBeLessThan(slowLegacy.pre['paused-at-ms']!);
    expect(slowChannels['total-time']).toBeLessThan(slowLegacy['total-time'] * 0.7);
  });
});

// ───────────────────────── invariants, whatever the path ─────────────────────────

const dirtyingArb = (pages: number) => fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.constant({ kind: 'workload' as const }),
  fc.record({
    kind: fc.constant('stress' as const),
    workers: fc.integer({ min: 1, max: 4 }),
    bytesPerWorker: fc.integer({ min: 1, max: (pages / 4) * 4096 }),
    start: fc.constant(0),
    pageNs: fc.integer({ min: 50, max: 20_000 }),
  }),
  fc.integer({ min: 0, max: pages - 1 }).chain((start) => fc.record({
    kind: fc.constant('fio' as const),
    region: fc.record({ start: fc.constant(start), count: fc.integer({ min: 1, max: pages - start }) }),
    blockBytes: fc.constantFrom(4096, 65_536),
    bytesPerSec: fc.constantFrom(1e7, 1e8, 1e9),
    order: fc.constantFrom('sequential' as const, 'random' as const),
  })),
);

const lifecycleArb: fc.Arbitrary<ScenarioInput> = fc.constantFrom(256, 1024, 2048).chain((pages) => fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 32 }),
  mode: fc.constantFrom('precopy' as const, 'hybrid' as const),
  switchAfterIterations: fc.integer({ min: 0, max: 3 }),
  policy: fc.constantFrom('qemu' as const, 'xen' as const),
  channels: fc.integer({ min: 0, max: 3 }),
  zeroFraction: fc.constantFrom(0, 0.5, 0.9),
  zeroPageDetection: fc.constantFrom('legacy' as const, 'multifd' as const, 'none' as const),
  sourcePolicy: fc.constantFrom('qemu' as const, 'xen' as const),
  downtimeLimitMs: fc.constantFrom(5, 300),
  maxIterations: fc.integer({ min: 1, max: 5 }),
  autoConverge: fc.boolean(),
  dirtying: dirtyingArb(pages),
  workload: fc.constantFrom('random' as const, 'sequential' as const),
}).map((c): ScenarioInput => ({
  seed: c.seed,
  memory: { pages, zeroFraction: c.zeroFraction },
  source: { policy: c.sourcePolicy, zeroPageDetection: c.zeroPageDetection },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: c.workload, vcpus: 1 },
  // switchAfterIterations only applies to hybrid; multifd only with QEMU's policy.
  migration: c.mode === 'hybrid' ? { mode: 'hybrid', switchAfterIterations: c.switchAfterIterations } : { mode: 'precopy' },
  // maxIterations keeps a non-converging precopy finite.
  precopy: { policy: c.policy, downtimeLimitMs: c.downtimeLimitMs, maxIterations: c.maxIterations, autoConverge: c.autoConverge, dirtying: c.dirtying },
  multifd: { channels: c.policy === 'qemu' ? c.channels : 0 },
})));

describe('lifecycle invariants', () => {
  it('every mode, dirtier, policy and channel count ends with the destination equal to the source, deterministically', () => {
    fc.assert(
      fc.property(lifecycleArb, (input) => {
        const emu = new Emulator(input).run();
        expect(emu.finished).toBe(true);
        expect(emu.status).toBe('completed');
        expect(checkRun(emu)).toEqual([]);
        const pre = emu.precopy!;
        expect(pre.finished).toBe(true);
        // Outside the outstanding set the destination holds the newest data; the core fetched the rest.
        expect(pre.staleOutside()).toBe(0);
        expect(emu.memory.outstandingAtStart).toBe(pre.postcopy ? pre.remaining : 0);
        const r = buildReport(emu);
        expect(r.ram.duplicate + r.ram.normal).toBeGreaterThanOrEqual(emu.scenario.memory.pages);
        const again = JSON.stringify(buildReport(new Emulator(structuredClone(input)).run()));
        expect(again).toBe(JSON.stringify(r));
      }),
      { numRuns: 20 },
    );
  });
});

describe('one clock for the whole migration', () => {
  const hybrid = {
    memory: { pages: 4096 },
    migration: { mode: 'hybrid', switchAfterIterations: 1 },
    // A 1 ms downtime limit keeps the 5.5 MB pending at the switch above QEMU's threshold, so it switches.
    precopy: { downtimeLimitMs: 1, dirtying: { kind: 'fio', region: { start: 0, count: 1024 }, bytesPerSec: 1e9 } },
    workload: { kind: 'sequential', vcpus: 1, region: { start: 0, count: 1024 } },
  } as const;

  it('the events cover precopy, the switch and postcopy, in time order', () => {
    const emu = new Emulator(hybrid);
    const log: string[] = [];
    emu.events.on('status', (e) => log.push(`${e.time} ${e.status}`));
    emu.events.on('sync', (e) => log.push(`${e.time} sync ${e.count} ${e.fresh} ${e.remaining}`));
    emu.events.on('guest-resumed', (e) => log.push(`${e.time} resumed`));
    emu.events.on('complete', (e) => log.push(`${e.time} complete`));
    emu.run();
    expect(log).toEqual([
      '2004096 active',
      '111353096 sync 2 1024 1024',
      '111377672 sync 3 0 1024',
      '111377672 postcopy-active',
      '148110208 resumed',
      '181800320 complete',
    ]);
    expect(emu.status).toBe('completed');
  });

  it('step() walks precopy and the core on one kernel: the same run as run()', () => {
    const stepped = new Emulator(hybrid);
    let before = 0;
    while (stepped.step()) if (!stepped.switchedOver) before++;
    const whole = new Emulator(hybrid).run();
    expect(before).toBe(66);
    expect(stepped.settle().kernel.events).toBe(whole.kernel.events);
    expect(buildReport(stepped)).toEqual(buildReport(whole));
  });
});
