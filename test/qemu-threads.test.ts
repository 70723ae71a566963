import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import { RequestKind } from '../src/ring/ring.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { REQ_PAGES_BYTES } from '../src/stream/records.ts';

/** Back-channel requests as [time, pfns, ranges]. */
function forwards(emu: Emulator): [number, number[], number[]][] {
  const out: [number, number[], number[]][] = [];
  emu.events.on('forward', (e) => out.push([e.time, [...e.pfns], [...e.ranges]]));
  return out;
}

describe('QEMU fault thread (pager.faultThread, postcopy_ram_fault_thread)', () => {
  // Slow placement (64 × 30 µs of UFFDIO_COPY a record, one every 2.1 ms) keeps the pager busy:
  // Xen's loop reads faults only between them.
  const busy = (faultThread?: boolean): ScenarioInput => ({
    memory: { pages: 4096 }, source: { policy: 'qemu' }, pager: { uffdCopyNs: 30_000, faultThread },
    workload: { kind: 'idle' },
  });
  // wakeNs (poll returns) + drainPerRequestNs (read the uffd_msg: 1.7 µs, unset under uffd) + faultRecordNs (write the message)
  const ownCost = 9_000 + 1_700 + 2_000;

  it('requests a fault at once, one REQ_PAGES per fault, while the pager is loading', () => {
    const emu = new Emulator(busy());
    const sent = forwards(emu);
    emu.runUntil(50e6);
    const t = emu.kernel.now;
    expect(emu.pager.idle).toBe(false);
    emu.foreignFault(4000);
    emu.foreignFault(4001);
    emu.run();
    // The second fault waits only for the first one's read and write.
    expect(sent).toEqual([[t + ownCost, [4000], []], [t + ownCost + 3_700, [4001], []]]);
    expect(emu.backChannel.bytesPayload).toBe(2 * REQ_PAGES_BYTES + 8); // + COMPLETE
    expect(emu.source.requestsReceived).toBe(2);
    expect(checkRun(emu)).toEqual([]);
  });

  it('without it (Xen\'s loop) the same fault waits for the load in progress', () => {
    const emu = new Emulator(busy(false));
    const sent = forwards(emu);
    emu.runUntil(50e6);
    const t = emu.kernel.now;
    emu.foreignFault(4000);
    emu.run();
    expect(sent).toHaveLength(1);
    // After the 64-page record it was loading (30 µs a page), not 12.7 µs after the fault.
    expect(sent[0]![0]).toBeGreaterThan(t + 1e6);
  });

  it('asks again for a page already requested, not for one already received (migrate_send_rp_req_pages)', () => {
    const emu = new Emulator(busy());
    const sent = forwards(emu);
    emu.runUntil(50e6);
    const received = 0;
    expect(emu.memory.isSettled(received)).toBe(true);
    // Two faults on one missing page (two threads touching it), one on a page already placed.
    for (const g of [4000, 4000, received]) emu.ring.putForeign(RequestKind.PAGE, g);
    emu.pager.kick();
    emu.run();
    expect(sent.map((s) => s[1])).toEqual([[4000], [4000]]);
    expect(emu.source.requestsReceived).toBe(2);
    expect(emu.latency.count).toBe(3); // every fault answered
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('postcopy rate limit (source.maxPostcopyBandwidth, migration_rate_limit)', () => {
  // 64 MiB idle guest on a 10 Gbit/s wire, limited to 100 MB/s: 10 MB per 100 ms window.
  const limited = (extra: ScenarioInput = {}): ScenarioInput => ({
    memory: { pages: 16_384 }, link: { rateMbps: 10_000, latencyNs: 20_000 }, backChannel: { rateMbps: 10_000, latencyNs: 20_000 },
    source: { policy: 'qemu', maxPostcopyBandwidth: 100e6 }, workload: { kind: 'idle' }, ...extra,
  });

  it('sends a budget of rate/10 per 100 ms window, then sleeps to the window\'s end', () => {
    const free = new Emulator({ ...limited(), source: { policy: 'qemu' } }).run();
    expect(free.kernel.now).toBeLessThan(100e6);
    const emu = new Emulator(limited());
    const sentAt: number[] = [];
    emu.events.on('page-loaded', (e) => sentAt.push(e.time));
    emu.run();
    // 67 MB at 10 MB per window: the seventh window (from 600 ms) sends the rest.
    expect(emu.kernel.now).toBeGreaterThan(600e6);
    expect(emu.kernel.now).toBeLessThan(610e6);
    const perWindow = new Map<number, number>();
    for (const t of sentAt) perWindow.set(Math.floor(t / 100e6), (perWindow.get(Math.floor(t / 100e6)) ?? 0) + 1);
    // 10 MB is 2 441 pages; the record that crosses the budget still goes (qemu_file_rate_limit).
    for (const n of perWindow.values()) expect(n).toBeLessThanOrEqual(2_441 + 64);
    expect(checkRun(emu)).toEqual([]);
  });

  it('a request arriving in the sleep waits for the window\'s end; the preempt channel is not limited', () => {
    const wait = (preempt: boolean) => {
      const emu = new Emulator(limited({ preempt: { enabled: preempt } }));
      emu.runUntil(50e6);
      emu.foreignFault(16_000);
      emu.run();
      expect(checkRun(emu)).toEqual([]);
      return emu.latency.percentiles([50])[0]!;
    };
    expect(wait(false)).toBeGreaterThan(50e6);
    expect(wait(true)).toBeLessThan(1e6);
  });

  it('the preempt channel is not held back, but its bytes use the running window\'s budget (QEMU 8.1+)', () => {
    const emu = new Emulator(limited({ preempt: { enabled: true }, workload: { kind: 'random', vcpus: 2, region: { start: 0, count: 16_384 }, writeFraction: 1 } })).run();
    expect(checkRun(emu)).toEqual([]);
    // 6 338 pages went on the preempt channel; those sent inside a running window shrank the main
    // stream's share of it. Those sent while the main thread slept do not carry over: the next
    // window starts from what was sent by then.
    expect(emu.source.pagesDemanded).toBe(6_338);
    expect(emu.kernel.now).toBe(401_384_767);
  });

  it('QEMU 7.2\'s preempt (preempt.sender migration-thread): requests over budget wait for the window, as without preempt', () => {
    const run = (sender: 'return-path' | 'migration-thread') => new Emulator(limited({
      preempt: { enabled: true, sender }, workload: { kind: 'random', vcpus: 2, region: { start: 0, count: 16_384 }, writeFraction: 1 },
    })).run();
    const thread = run('migration-thread'), rp = run('return-path');
    expect(checkRun(thread)).toEqual([]);
    // The return-path thread answers at once (6 338 pages on demand); the migration thread only
    // between its records and not while it sleeps out a window, so each fault waits longer and
    // fewer pages are asked for before the background scan brings them.
    expect(rp.source.pagesDemanded).toBe(6_338);
    expect(thread.source.pagesDemanded).toBe(170);
    // The slowest requests wait out a window's sleep (~95 ms), where the return path's take 80 µs.
    expect(rp.pager.requestLatency.summary().p99).toBeLessThan(100_000);
    expect(thread.pager.requestLatency.summary().p99).toBeGreaterThan(90e6);
    expect(thread.kernel.now).toBe(605_177_567);
    // Its requested pages still go on the preempt channel.
    expect(thread.preempt!.records).toBe(121);
  });

  it('a guest faster than the budget waits for each next window, and the run stays sound', () => {
    // 2 MB a window (488 pages) against a vCPU touching a page every 6 µs.
    const emu = new Emulator(limited({
      source: { policy: 'qemu', maxPostcopyBandwidth: 20e6 },
      workload: { kind: 'sequential', region: { start: 0, count: 4096 }, writeFraction: 1, thinkNs: 6_000 },
    })).run();
    expect(checkRun(emu)).toEqual([]);
    // COMPLETE read after a window's sleep still ends the run (not the guest running on to the horizon).
    expect(emu.finished).toBe(true);
    expect(emu.kernel.now).toBeLessThan(5e9);
    // Seven waits for a next window (~97 ms: the 64–131 ms bucket); the other faults are on
    // pages being placed, which the guest catches up with (pager.wakeAt page), all under 1 ms.
    expect(emu.latency.buckets[16]).toBe(7);
    expect(emu.latency.count - 7).toBe(emu.latency.buckets.slice(0, 10).reduce((a, b) => a + b, 0));
    expect(emu.latency.max).toBeLessThan(100e6);
  });
});

describe('QEMU\'s switchover costs (source.deviceSaveNs, pager.listenNs, pager.deviceLoadNs)', () => {
  it('add to the downtime where they happen: the save before the package, listen and load after it', () => {
    const run = (source: ScenarioInput['source'], pager: ScenarioInput['pager']) => new Emulator({
      memory: { pages: 4096 },
      source: { policy: 'qemu', ...source }, pager, mapper: { mapping: { kind: 'none' } }, workload: { kind: 'idle' },
    }).run();
    const none = run({}, {});
    const all = run({ deviceSaveNs: 1_300_000 }, { listenNs: 1_800_000, deviceLoadNs: 1_150_000 });
    expect(checkRun(all)).toEqual([]);
    // 4.25 ms more, less what the destination did meanwhile anyway (its wake-up for the first records).
    const more = all.resumedAt - all.pausedAt - (none.resumedAt - none.pausedAt);
    expect(more).toBeGreaterThan(4_240_000);
    expect(more).toBeLessThanOrEqual(4_250_000);
    const b = buildReport(all).emulator['downtime-breakdown']!, b0 = buildReport(none).emulator['downtime-breakdown']!;
    // The save delays the package (CPU state reaching the destination); listen and load follow it.
    expect(b['vcpu-state-ms'] - b0['vcpu-state-ms']).toBeCloseTo(1.3, 2);
    expect(b['switchover-ms'] - b0['switchover-ms']).toBeCloseTo(2.95, 2);
  });
});
