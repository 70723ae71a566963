import { describe, expect, it } from 'vitest';
import { Emulator } from '../src/emulator.ts';
import { NextMember } from '../src/memory/skip-list.ts';
import { buildReport } from '../src/metrics/report.ts';
import { expectSound, lifecycleRun, report } from './lifecycle-fixture.ts';
import { Convergence, WINDOW_NS } from '../src/precopy/convergence.ts';
import { DirtyLog } from '../src/precopy/dirty-log.ts';
import { makeDirtier } from '../src/precopy/dirtying.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { qemuPagesBytes } from '../src/stream/records.ts';

/** The precopy section with every default but `over`. */
const precopyParams = (over: ScenarioInput['precopy'] = {}) => parseScenario({ precopy: over }).precopy;

describe('Convergence: QEMU switchover arithmetic', () => {
  it('bandwidth, mbps and pages-per-second come from the window; threshold = bandwidth × downtime-limit', () => {
    const c = new Convergence(precopyParams({ downtimeLimitMs: 300 }), 0);
    expect(WINDOW_NS).toBe(100_000_000);
    expect(c.windowEnd).toBe(100_000_000);
    // No window has ended yet: nothing is measured, the threshold is 0.
    c.update(99_999_999, 10_000_000, 2_500);
    expect([c.bandwidth, c.threshold, c.mbps]).toEqual([0, 0, 0]);
    // 10 MB in 100 ms: 100 000 B/ms, threshold 100 000 × 300 = 3e7 B; 8e7 bits / 0.1 s = 800 Mbit/s;
    // 2 500 pages / 0.1 s = 25 000 pages/s.
    c.update(100_000_000, 10_000_000, 2_500);
    expect(c.bandwidth).toBe(100_000);
    expect(c.threshold).toBe(30_000_000);
    expect(c.mbps).toBeCloseTo(800, 9);
    expect(c.pagesPerSecond).toBeCloseTo(25_000, 9);
    // The next window starts where this one was measured; only its own bytes count:
    // 6 MB in 200 ms (the thread was late) = 30 000 B/ms, threshold 9e6.
    expect(c.windowEnd).toBe(200_000_000);
    c.update(150_000_000, 99_000_000, 0); // inside the window: ignored
    expect(c.bandwidth).toBe(100_000);
    c.update(300_000_000, 16_000_000, 3_000);
    expect(c.bandwidth).toBe(30_000);
    expect(c.threshold).toBe(9_000_000);
    expect(c.mbps).toBeCloseTo(240, 9);
    expect(c.pagesPerSecond).toBeCloseTo(2_500, 9);
  });

  it('avail-switchover-bandwidth replaces the measured bandwidth in the threshold only', () => {
    // 5e8 B/s = 500 000 B/ms; × 300 ms = 1.5e8 B, whatever the window measured.
    const c = new Convergence(precopyParams({ availSwitchoverBandwidth: 500_000_000 }), 0);
    c.update(100_000_000, 10_000_000, 2_500);
    expect(c.threshold).toBe(150_000_000);
    expect(c.bandwidth).toBe(100_000);
    expect(c.mbps).toBeCloseTo(800, 9);
    // Same window without it, for comparison.
    const d = new Convergence(precopyParams(), 0);
    d.update(100_000_000, 10_000_000, 2_500);
    expect(d.threshold).toBe(30_000_000);
    expect(d.bandwidth).toBe(c.bandwidth);
  });

  it('budget: max-bandwidth / 10 per 100 ms window, Infinity without max-bandwidth', () => {
    // 1e8 B/s → 1e7 B per window.
    const c = new Convergence(precopyParams({ maxBandwidth: 100_000_000 }), 0);
    expect(c.budget(0)).toBe(10_000_000);
    expect(c.budget(4_000_000)).toBe(6_000_000);
    expect(c.budget(12_000_000)).toBe(-2_000_000);
    // A new window: the budget counts from the bytes sent when it began (12 MB).
    c.update(100_000_000, 12_000_000, 0);
    expect(c.budget(12_000_000)).toBe(10_000_000);
    expect(c.budget(15_000_000)).toBe(7_000_000);
    expect(new Convergence(precopyParams(), 0).budget(1e15)).toBe(Infinity);
  });

  it('dirty-pages-rate only over periods longer than 1 s; expected-downtime once a rate exists', () => {
    const c = new Convergence(precopyParams(), 0);
    // Window 1: 10 MB in 100 ms; the sync left 4 096 000 B, but no dirty rate yet: no expectation.
    expect(c.synced(50_000_000, 1_000, 4_096_000, 5_000_000, 4096)).toBe(false);
    c.update(100_000_000, 10_000_000, 0);
    expect(c.dirtyBytesLastSync).toBe(4_096_000);
    expect(c.dirtyPagesRate).toBe(0);
    expect(c.expectedDowntimeMs).toBe(0);
    // Exactly 1 s after the period began: still no rate (QEMU: end_time > start + 1000).
    c.synced(1_000_000_000, 500, 2_048_000, 50_000_000, 4096);
    expect(c.dirtyPagesRate).toBe(0);
    // 1.25 s: 1 000 + 500 + 1 000 new dirty pages over 1.25 s = 2 000 pages/s.
    c.synced(1_250_000_000, 1_000, 2_048_000, 100_000_000, 4096);
    expect(c.dirtyPagesRate).toBe(2_000);
    // Now a rate exists: window 100 ms..1.3 s sent 20 MB in 1 200 ms, 16 667 B/ms; 2 048 000 B left
    // at the last sync → 122.88 ms.
    c.update(1_300_000_000, 30_000_000, 0);
    expect(c.bandwidth).toBeCloseTo(20_000_000 / 1_200, 9);
    expect(c.expectedDowntimeMs).toBeCloseTo(122.88, 9);
    // Next window: 20 MB in 100 ms = 200 000 B/ms → 2 048 000 / 200 000 = 10.24 ms.
    c.update(1_400_000_000, 50_000_000, 0);
    expect(c.bandwidth).toBe(200_000);
    expect(c.expectedDowntimeMs).toBeCloseTo(10.24, 12);
    // A window that sent ≤ 10 000 bytes leaves the expectation alone.
    c.update(1_500_000_000, 50_010_000, 0);
    expect(c.bandwidth).toBe(100);
    expect(c.expectedDowntimeMs).toBeCloseTo(10.24, 12);
  });

  it('expected-downtime divides by avail-switchover-bandwidth when it is set', () => {
    const c = new Convergence(precopyParams({ availSwitchoverBandwidth: 1_000_000_000 }), 0);
    c.synced(1_100_000_000, 3_000, 8_192_000, 0, 4096); // 3 000 pages over 1.1 s → 2 727 pages/s
    expect(c.dirtyPagesRate).toBe(2_727);
    c.update(1_200_000_000, 120_000_000, 0);
    expect(c.bandwidth).toBe(100_000);
    // 8 192 000 B / 1 000 000 B/ms.
    expect(c.expectedDowntimeMs).toBeCloseTo(8.192, 12);
  });

  it('auto-converge: 20 % after the second high period, then +10 % per two, capped at throttleMaxPct', () => {
    const c = new Convergence(precopyParams({ autoConverge: true, throttleMaxPct: 45 }), 0);
    // Each period: 1.5 s, 1 000 new dirty pages (4 096 000 B) while 1 000 000 B were sent: far above 50 %.
    const pcts: number[] = [], raised: boolean[] = [];
    for (let i = 1; i <= 10; i++) {
      raised.push(c.synced(i * 1_500_000_000, 1_000, 0, i * 1_000_000, 4096));
      pcts.push(c.throttlePct);
    }
    expect(pcts).toEqual([0, 20, 20, 30, 30, 40, 40, 45, 45, 45]);
    expect(raised).toEqual([false, true, false, true, false, true, false, true, false, true]);
    expect(c.runShare).toBeCloseTo(0.55, 12);
  });

  it('auto-converge ignores periods where dirtying is at most 50 % of sending, and runs off without the capability', () => {
    const c = new Convergence(precopyParams({ autoConverge: true }), 0);
    // 1 000 dirty pages = 4 096 000 B against 8 192 000 B sent: exactly 50 %, not above.
    for (let i = 1; i <= 4; i++) c.synced(i * 1_500_000_000, 1_000, 0, i * 8_192_000, 4096);
    expect(c.throttlePct).toBe(0);
    expect(c.runShare).toBe(1);
    const off = new Convergence(precopyParams({ autoConverge: false }), 0);
    for (let i = 1; i <= 4; i++) expect(off.synced(i * 1_500_000_000, 1_000, 0, i * 1_000, 4096)).toBe(false);
    expect(off.throttlePct).toBe(0);
  });

  it('the throttle steps from throttleInitialPct by throttleIncrementPct to the 99 % default cap; runShare = 1 − pct/100', () => {
    const c = new Convergence(precopyParams({ autoConverge: true, throttleInitialPct: 50, throttleIncrementPct: 25 }), 0);
    const seen: number[] = [];
    for (let i = 1; i <= 8; i++) {
      c.synced(i * 2_000_000_000, 10_000, 0, 0, 4096);
      if (i % 2 === 0) seen.push(c.throttlePct);
    }
    expect(seen).toEqual([50, 75, 99, 99]);
    expect(c.runShare).toBeCloseTo(0.01, 12);
  });
});

/** The pages a log holds, ascending; empties it (a sync). */
function drained(log: DirtyLog): number[] {
  const out: number[] = [];
  log.drain((w, bits) => {
    for (let b = 0; b < 32; b++) if ((bits >>> b) & 1) out.push(w * 32 + b);
  });
  return out.sort((a, b) => a - b);
}

describe('DirtyLog', () => {
  it('marks each page once per period, makes it stale, and takes it out of the zero set', () => {
    const stale = new Uint32Array(2), zero = new NextMember(40);
    const log = new DirtyLog(40, zero, stale);
    log.mark(3);
    log.mark(3);
    log.markRange(2, 6);
    expect(log.writes).toBe(6);
    expect(log.count).toBe(4);
    expect(stale[0]).toBe(0b111100);
    expect([1, 2, 3, 4, 5, 6].map((g) => zero.has(g))).toEqual([true, false, false, false, false, true]);
    expect(drained(log)).toEqual([2, 3, 4, 5]);
    // After a sync the same pages can be marked again; a range may span words.
    expect(log.count).toBe(0);
    log.markRange(30, 35);
    expect(log.count).toBe(5);
    expect([stale[0]! >>> 30, stale[1]]).toEqual([0b11, 0b111]);
    expect(drained(log)).toEqual([30, 31, 32, 33, 34]);
    expect(log.writes).toBe(11);
  });
});

/** A dirtier for a 64-page guest, with its own log. */
function dirtier(dirtying: NonNullable<ScenarioInput['precopy']>['dirtying'], pages = 64) {
  const s = parseScenario({ memory: { pages }, precopy: { dirtying } });
  const log = new DirtyLog(pages, null, new Uint32Array((pages + 31) >>> 5));
  return { d: makeDirtier(s), log, marked: () => drained(log) };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('dirtying workloads', () => {
  // stress --vm 2 --vm-bytes 40K from page 20: worker 0 owns pages 20..29, worker 1 pages 30..39.
  // A cycle is 10 writes then 10 read-backs, 100 ns each: 2 µs.
  const stress = { kind: 'stress' as const, workers: 2, bytesPerWorker: 10 * 4096, start: 20, pageNs: 100 };

  it('stress: a full cycle marks exactly the workers\' slices', () => {
    const { d, log, marked } = dirtier(stress);
    d.advance(0, 2_000, 1, log);
    expect(log.writes).toBe(20);
    expect(marked()).toEqual(range(20, 40));
    // Many cycles still mark each page once (the log holds a page once per period).
    d.advance(2_000, 1_000_000, 1, log);
    expect(marked()).toEqual(range(20, 40));
  });

  it('stress: the write pass dirties, the read-back pass does not', () => {
    const { d, log, marked } = dirtier(stress);
    d.advance(0, 500, 1, log); // 5 steps: the first half of each write pass
    expect(marked()).toEqual([...range(20, 25), ...range(30, 35)]);
    d.advance(500, 1_500, 1, log); // steps 5..14: the rest of the write pass, then 5 read-backs
    expect(marked()).toEqual([...range(25, 30), ...range(35, 40)]);
    d.advance(1_500, 2_000, 1, log); // steps 15..19: read-back only
    expect(marked()).toEqual([]);
    d.advance(2_000, 2_300, 1, log); // a new cycle: writes again from the slice's start
    expect(marked()).toEqual([20, 21, 22, 30, 31, 32]);
  });

  it('stress: time short of a step is carried to the next interval', () => {
    const { d, log, marked } = dirtier(stress);
    d.advance(0, 150, 1, log); // 1 step, 50 ns carried
    expect(marked()).toEqual([20, 30]);
    d.advance(150, 200, 1, log); // 50 + 50 ns: one more step
    expect(marked()).toEqual([21, 31]);
  });

  it('a throttle share of 0.5 halves the pages written in an interval', () => {
    const full = dirtier(stress), half = dirtier(stress);
    full.d.advance(0, 800, 1, full.log); // 8 steps per worker
    half.d.advance(0, 800, 0.5, half.log); // 4 steps per worker
    expect(full.log.writes).toBe(16);
    expect(half.log.writes).toBe(8);
    expect(half.marked()).toEqual([...range(20, 24), ...range(30, 34)]);
  });

  // fio over pages 100..108 in 2-page blocks (5 blocks, the last one page), one block per µs.
  const fio = { kind: 'fio' as const, region: { start: 100, count: 9 }, blockBytes: 8192, bytesPerSec: 8.192e9 };

  it('fio sequential writes blocks in order and wraps around the region', () => {
    const { d, log, marked } = dirtier(fio, 128);
    d.advance(0, 3_000, 1, log); // blocks 0, 1, 2
    expect(marked()).toEqual(range(100, 106));
    d.advance(3_000, 6_000, 1, log); // blocks 3, 4 (one page: the region ends at 108), then 0
    expect(marked()).toEqual([100, 101, 106, 107, 108]);
    expect(log.writes).toBe(6 + 5);
    d.advance(6_000, 7_000, 0.5, log); // half a block: nothing yet
    expect(marked()).toEqual([]);
    d.advance(7_000, 8_000, 0.5, log); // the other half: block 1
    expect(marked()).toEqual([102, 103]);
  });

  it('fio random stays inside the region and is drawn from the seed', () => {
    const a = dirtier({ ...fio, order: 'random' }, 128), b = dirtier({ ...fio, order: 'random' }, 128);
    a.d.advance(0, 3_000, 1, a.log);
    b.d.advance(0, 3_000, 1, b.log);
    const pages = a.marked();
    expect(pages).toEqual(b.marked());
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.every((g) => g >= 100 && g <= 108)).toBe(true);
    // 100 blocks' time ≥ 20 draws per block: every page of the region.
    a.d.advance(3_000, 103_000, 1, a.log);
    expect(a.marked()).toEqual(range(100, 109));
  });

  it('prime() removes the pages the workload wrote before migration from the zero set', () => {
    const zero = new NextMember(128);
    dirtier(stress, 128).d.prime(zero);
    expect(range(0, 128).filter((g) => !zero.has(g))).toEqual(range(20, 40));
    const zero2 = new NextMember(128);
    dirtier(fio, 128).d.prime(zero2);
    expect(range(0, 128).filter((g) => !zero2.has(g))).toEqual(range(100, 109));
    const zero3 = new NextMember(128);
    dirtier({ kind: 'none' }, 128).d.prime(zero3);
    dirtier({ kind: 'workload' }, 128).d.prime(zero3);
    expect(zero3.next(0)).toBe(0);
    expect(range(0, 128).every((g) => zero3.has(g))).toBe(true);
  });

  it('precopy primes the zero set: a dirtied region is never counted as zero pages', () => {
    const emu = new Emulator({
      memory: { pages: 1024, zeroFraction: 1 },
      source: { policy: 'qemu' },
      migration: { mode: 'precopy' },
      precopy: { dirtying: { kind: 'fio', region: { start: 0, count: 256 }, bytesPerSec: 1e6 } },
    }).run();
    // Every page is zero but the fio region's 256; fio writes them slowly, but they were written before.
    const ram = buildReport(emu).ram;
    expect(ram.duplicate).toBe(1024 - 256);
    expect(emu.precopy!.zeroPages).toBe(768);
  });
});

// ───────────────────────────── end to end ─────────────────────────────

/** A QEMU precopy of a small idle guest at 1 Gbit/s; `over` replaces whole sections. */
const precopyRun = (over: ScenarioInput = {}): Emulator => lifecycleRun({ migration: { mode: 'precopy' }, ...over });

/** 1 Gbit/s of 1 538-byte frames carrying 1 448 payload bytes: 117 685 B/ms of payload. */
const LINK_PAYLOAD_BYTES_PER_MS = (125e6 * 1448) / 1538 / 1000;

/**
 * fio rewriting a 4 096-page (16 MiB) region at 250 MB/s: twice what 1 Gbit/s sends (117.7 MB/s).
 * With downtime-limit 30 ms the threshold is ~117 685 × 30 = 3.5 MB (862 pages), so the dirty set
 * never falls under it by itself.
 */
const FAST_FIO = { kind: 'fio' as const, region: { start: 0, count: 4096 }, bytesPerSec: 250e6 };

describe('precopy: convergence end to end', () => {
  it('an idle guest converges: setup, one pass, the exact sync, completion (dirty-sync-count 3)', () => {
    const emu = precopyRun({ memory: { pages: 4096 }, precopy: { dirtying: { kind: 'none' } } });
    const r = report(emu);
    expect(r.status).toBe('completed');
    expect(r.pre.end).toBe('converged');
    expect(r.ram['dirty-sync-count']).toBe(3);
    expect(r.pre.iterations).toBe(2);
    // setup-time: setupNs 2 ms + the first sync's walk of 4 096 pages at 1 ns.
    expect(emu.precopy!.setupNs).toBe(2_004_096);
    expect(r['setup-time']).toBe(2.004);
    // Each page went once, as a 8-byte header + 4 KiB; stop-and-copy left nothing outstanding.
    expect(r.ram.normal).toBe(4096);
    expect(r.ram.duplicate).toBe(0);
    expect(emu.precopy!.bytes).toBe(qemuPagesBytes(4096, 0, 4096));
    expect(emu.precopy!.bytes).toBe(16_809_984);
    expect(r.emulator['outstanding-at-start']).toBe(0);
    expect(r.pre['switched-to-postcopy']).toBe(false);
    // The first window measured the bandwidth, and the threshold is it × 300 ms.
    expect(Math.abs(r.pre['threshold-bytes'] - emu.precopy!.convergence.bandwidth * 300)).toBeLessThan(1);
    expect(r['cpu-throttle-percentage']).toBe(0);
    expect(r['expected-downtime']).toBe(0); // no dirty rate: never computed
    expect(r.emulator['status-history'].map((h) => h.status)).toEqual(['setup', 'active', 'device', 'completed']);
    expect(r.downtime).toBeCloseTo((emu.resumedAt - emu.pausedAt) / 1e6, 3);
    expectSound(emu);
  });

  it('a dirty rate above the bandwidth never converges without throttling', () => {
    const at = (horizonNs: number) => precopyRun({ precopy: { downtimeLimitMs: 30, dirtying: FAST_FIO }, limits: { horizonNs } });
    const one = report(at(1.5e9)), two = report(at(3e9));
    for (const r of [one, two]) {
      expect(r.status).toBe('active');
      expect(r.pre.end).toBe('horizon');
      expect(r.pre['paused-at-ms']).toBeNull();
      expect(r['cpu-throttle-percentage']).toBe(0);
      // Measured at link speed; threshold = bandwidth × 30 ms ≈ 3.53 MB, under the 16.8 MB region.
      expect(r.pre['bandwidth-bytes-per-ms'] / LINK_PAYLOAD_BYTES_PER_MS).toBeGreaterThan(0.999);
      expect(r.pre['bandwidth-bytes-per-ms'] / LINK_PAYLOAD_BYTES_PER_MS).toBeLessThan(1.001);
      expect(Math.abs(r.pre['threshold-bytes'] - r.pre['bandwidth-bytes-per-ms'] * 30)).toBeLessThan(30);
      // Each sync finds the whole region dirty again: 16 777 216 B / 117 662 B/ms = 142.6 ms expected.
      expect(r['expected-downtime']).toBe(143);
      expect(r.ram['dirty-pages-rate']).toBeGreaterThan(0);
    }
    expect(one.pre.iterations).toBeGreaterThan(3);
    expect(two.pre.iterations).toBeGreaterThan(one.pre.iterations + 3);
    expect(two.ram.transferred).toBeGreaterThan(one.ram.transferred);
  });

  it('with auto-converge the same guest converges once the throttle reaches 60 %', () => {
    // The dirty set shrinks only when the guest writes less than 117.7 / 250 = 47 % of the time:
    // throttle > 53 %. Steps 20, 30, 40, 50, 60, each after two high periods of > 1 s: > 10 s.
    const emu = precopyRun({ precopy: { downtimeLimitMs: 30, autoConverge: true, dirtying: FAST_FIO } });
    const r = report(emu);
    expect(r.status).toBe('completed');
    expect(r.pre.end).toBe('converged');
    expect(r['cpu-throttle-percentage']).toBe(60);
    expect(r.pre['paused-at-ms']).toBeGreaterThan(10_000);
    expect(emu.precopy!.convergence.runShare).toBeCloseTo(0.4, 12);
    expectSound(emu);
  });

  it('a throttle capped below what is needed never converges', () => {
    const emu = precopyRun({
      precopy: { downtimeLimitMs: 30, autoConverge: true, throttleMaxPct: 50, dirtying: FAST_FIO },
      limits: { horizonNs: 13e9 },
    });
    const r = report(emu);
    expect(r.status).toBe('active');
    expect(r['cpu-throttle-percentage']).toBe(50);
  });

  it('the throttle rises 20, 30, 40 … as the polls see it', () => {
    const emu = precopyRun({
      precopy: { downtimeLimitMs: 30, autoConverge: true, dirtying: FAST_FIO },
      timeline: { pollMs: 500 },
    });
    const pcts = emu.poll!.samples.map((s) => s['cpu-throttle-percentage']);
    const steps = pcts.filter((p, i) => i === 0 || p !== pcts[i - 1]);
    expect(steps).toEqual([0, 20, 30, 40, 50, 60]);
  });

  it('maxIterations ends precopy with stop-and-copy: setup + 3 syncs + the completion sync', () => {
    const emu = precopyRun({ precopy: { downtimeLimitMs: 30, maxIterations: 3, dirtying: FAST_FIO } });
    const r = report(emu);
    expect(r.status).toBe('completed');
    expect(r.pre.end).toBe('max-iterations');
    expect(r.ram['dirty-sync-count']).toBe(5);
    expect(r.pre['switched-to-postcopy']).toBe(false);
    expect(r.emulator['outstanding-at-start']).toBe(0);
    expectSound(emu);
  });

  it('maxTimeNs ends precopy at the first step past it', () => {
    const emu = precopyRun({ precopy: { downtimeLimitMs: 30, maxTimeNs: 500e6, dirtying: FAST_FIO } });
    const r = report(emu);
    expect(r.status).toBe('completed');
    expect(r.pre.end).toBe('max-time');
    // A step comes at least every 64-page record (~2.2 ms at 1 Gbit/s).
    expect(r.pre['paused-at-ms']).toBeGreaterThanOrEqual(500);
    expect(r.pre['paused-at-ms']).toBeLessThan(505);
    expectSound(emu);
  });

  it('avail-switchover-bandwidth set high converges where the measured bandwidth does not', () => {
    const measured = report(precopyRun({ precopy: { downtimeLimitMs: 30, dirtying: FAST_FIO }, limits: { horizonNs: 2e9 } }));
    const emu = precopyRun({ precopy: { downtimeLimitMs: 30, availSwitchoverBandwidth: 1e9, dirtying: FAST_FIO }, limits: { horizonNs: 2e9 } });
    const r = report(emu);
    expect(measured.status).toBe('active');
    expect(r.status).toBe('completed');
    expect(r.pre.end).toBe('converged');
    // 1e9 B/s = 1e6 B/ms × 30 ms: 3e7 B, more than the 16.8 MB the region can hold dirty.
    expect(r.pre['threshold-bytes']).toBe(30_000_000);
    // The bandwidth is still the measured one, far below 1e6 B/ms.
    expect(r.pre['bandwidth-bytes-per-ms']).toBeLessThan(200_000);
    expect(r.pre['bandwidth-bytes-per-ms']).toBe(Math.round(emu.precopy!.convergence.bandwidth));
    expectSound(emu);
  });

  it('max-bandwidth caps mbps: 5 MB per 100 ms window, overshot by the last 64-page record', () => {
    const emu = precopyRun({ precopy: { downtimeLimitMs: 30, maxBandwidth: 50e6, dirtying: FAST_FIO }, limits: { horizonNs: 2e9 } });
    const r = report(emu);
    expect(r.status).toBe('active');
    // A record is 64 × (8 + 4 096) = 262 656 B; 19 make 4 990 464 < 5e6, so a 20th goes:
    // 5 253 120 B per 100 ms = 52 531 B/ms, 420.25 Mbit/s, 1 280 pages / 0.1 s.
    expect(qemuPagesBytes(64, 0, 4096)).toBe(262_656);
    expect(r.ram.mbps).toBe(420.25);
    expect(r.pre['bandwidth-bytes-per-ms']).toBe(52_531);
    expect(r.ram['pages-per-second']).toBe(12_800);
    expect(r.ram.mbps).toBeLessThan(400 * 1.06);
  });
});

describe('precopy: Xen policy (≤ 50 dirty pages, or 5 passes)', () => {
  const xen = (dirtying: NonNullable<ScenarioInput['precopy']>['dirtying']) =>
    precopyRun({ precopy: { policy: 'xen', dirtying } });
  const fioOver = (count: number) => ({ kind: 'fio' as const, region: { start: 100, count }, bytesPerSec: 1e9 });

  it('stops after 5 passes when a writer keeps more than 50 pages dirty', () => {
    for (const dirtying of [FAST_FIO, fioOver(51)]) {
      const emu = xen(dirtying);
      const r = report(emu);
      expect(r.status).toBe('completed');
      expect(r.pre.end).toBe('max-iterations');
      expect(r.pre.iterations).toBe(5);
      // setup + one sync per pass + the completion sync.
      expect(r.ram['dirty-sync-count']).toBe(7);
      expectSound(emu);
    }
  });

  it('stops after the first pass when at most 50 pages are dirty', () => {
    for (const dirtying of [{ kind: 'none' as const }, fioOver(50), fioOver(1)]) {
      const emu = xen(dirtying);
      const r = report(emu);
      expect(r.pre.end).toBe('converged');
      expect(r.pre.iterations).toBe(1);
      expect(r.ram['dirty-sync-count']).toBe(3);
      expectSound(emu);
    }
  });

  it('xenDirtyThreshold and xenMaxIterations are the knobs', () => {
    const r = report(precopyRun({ precopy: { policy: 'xen', xenDirtyThreshold: 60, dirtying: fioOver(51) } }));
    expect(r.pre.end).toBe('converged');
    expect(r.pre.iterations).toBe(1);
    const s = report(precopyRun({ precopy: { policy: 'xen', xenMaxIterations: 2, dirtying: fioOver(51) } }));
    expect(s.pre.end).toBe('max-iterations');
    expect(s.pre.iterations).toBe(2);
  });
});
