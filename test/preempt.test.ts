import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { Link } from '../src/link/link.ts';
import { PreemptChannel } from '../src/link/preempt.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

/** The head-of-line scenario: a 256 MiB guest at 10 Gbit/s, 2 vCPUs rewriting 64 MiB of it. */
const hol = (preempt: boolean): ScenarioInput => ({
  memory: { pages: 65_536 },
  ring: { capacity: 64 },
  link: { rateMbps: 10_000 },
  backChannel: { rateMbps: 10_000 },
  // A pager that keeps up with 10 Gbit/s (1 µs a page): Xen's load call (6.4 µs) would not, and
  // a requested page would wait behind the pager, not behind the wire.
  pager: { eviction: 'batched', loadPageNs: 1_000 },
  workload: { kind: 'random', vcpus: 2, region: { start: 0, count: 16_384 }, writeFraction: 1 },
  preempt: { enabled: preempt },
});

describe('postcopy-preempt channel', () => {
  it('lowers fault latency when requested pages would queue behind background data', () => {
    const vanilla = new Emulator(hol(false)).run();
    const preempt = new Emulator(hol(true)).run();
    for (const e of [vanilla, preempt]) {
      expect(e.finished).toBe(true);
      expect(checkRun(e)).toEqual([]);
    }
    const [v50] = vanilla.latency.percentiles([50]);
    const [p50] = preempt.latency.percentiles([50]);
    // Vanilla waits behind the send buffer: 4 MiB at 10 Gbit/s ≈ 3.6 ms.
    expect(v50!).toBeGreaterThan(3_000_000);
    expect(p50!).toBeLessThan(v50! / 5);
    expect(vanilla.preempt).toBeNull();
    expect(preempt.preempt!.records).toBeGreaterThan(0);
    // Every requested page travelled on the preempt channel, none on the main stream.
    expect(preempt.source.pagesDemanded).toBeGreaterThan(0);
    expect(preempt.pager.pagesLoaded).toBe(65_536);
  });

  it('shares the wire: a preempt record takes 1/share of its wire time while the main stream is busy', () => {
    const params = parseScenario({}).link;
    const main = new Link(params);
    const channel = new PreemptChannel(main, 0.5);
    const wire = main.serialiseNs(4096 + 24);
    // Idle main stream: the record has the wire to itself.
    expect(channel.send(0, 4096 + 24)).toBe(wire + params.latencyNs);
    // Busy main stream: half the wire, and the main stream's queue goes out that much later.
    main.send(1_000_000, 1_000_000);
    const busy = main.busyUntil;
    expect(channel.send(1_000_000, 4096 + 24)).toBe(1_000_000 + 2 * wire + params.latencyNs);
    expect(main.busyUntil).toBe(busy + wire);
  });
});

describe('the preempt thread (QEMU 7.1+ postcopy_preempt_thread)', () => {
  it('places a requested page beside the main loader: it does not wait for the record being placed', () => {
    // Slow placement: 64 × 30 µs of UFFDIO_COPY a record keeps the main loader busy 1.9 ms a record.
    const at = (preempt: boolean) => {
      const emu = new Emulator({
        memory: { pages: 4096 }, source: { policy: 'qemu' }, pager: { uffdCopyNs: 30_000 },
        preempt: { enabled: preempt }, workload: { kind: 'idle' },
      });
      let placed = -1;
      emu.events.on('page-loaded', (e) => { if (e.gfn === 4000) placed = e.time; });
      emu.runUntil(50e6);
      const t = emu.kernel.now;
      emu.foreignFault(4000);
      emu.run();
      expect(checkRun(emu)).toEqual([]);
      return placed - t;
    };
    const own = at(true), main = at(false);
    // The fault thread's request (wake 9 µs + read 1.7 µs + write 2 µs), the back channel (50 µs),
    // the source's copy and record, the preempt connection (50 µs + the page's wire time at half
    // the 1 Gbit/s wire, 67 µs), the preempt thread's wake-up (9 µs), one read() (7.9 µs) and the
    // copy (30 µs + 0.4 µs): 236.5 µs, where waiting for the main loader's record in progress
    // would add up to 1.9 ms.
    expect(own).toBe(236_488);
    // Without the channel the page goes behind the main stream's buffers and the loader's backlog.
    expect(main).toBeGreaterThan(10 * own);
  });
});

describe('the preempt channel and the background scan (QEMU 8.0+)', () => {
  it('a page the return-path thread sent does not move the migration thread\'s scan', () => {
    const emu = new Emulator({ memory: { pages: 4096 }, source: { policy: 'qemu' }, preempt: { enabled: true }, workload: { kind: 'idle', vcpus: 1 } });
    const loaded: number[] = [];
    emu.events.on('page-loaded', (e) => loaded.push(e.gfn));
    emu.runUntil(20e6); // ~470 pages in (35 µs a page at 1 Gbit/s)
    const before = loaded.length;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(3000);
    emu.vcpus.touch(0, 3000, false);
    emu.run();
    expect(checkRun(emu)).toEqual([]);
    // 3000 came at once on the preempt channel; the scan went on in order, reaching 3001 after 2999.
    expect(loaded.indexOf(3000)).toBeLessThan(2000);
    expect(loaded.indexOf(3001)).toBe(loaded.indexOf(2999) + 1);
  });
});
