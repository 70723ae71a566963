import { describe, expect, it } from 'vitest';
import { FRESH } from '../src/memory/arena.ts';
import { GuestMemory, outstandingSet } from '../src/memory/guest-memory.ts';
import { HostPages } from '../src/pager/host-pages.ts';
import { Rng } from '../src/kernel/rng.ts';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import { applySets, presetInput } from '../src/scenario/load.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import { parseScenario } from '../src/scenario/validate.ts';

/** A 16 MiB guest, nothing pushed, one idle vCPU driven by hand. */
const guest = (hostPageSize: number) => ({
  memory: { pages: 4096, hostPageSize },
  source: { policy: 'demand' as const },
  workload: { kind: 'idle' as const, vcpus: 1 },
  limits: { horizonNs: 1_000_000_000 },
});

function touchOnce(hostPageSize: number) {
  const emu = new Emulator(guest(hostPageSize));
  const loadedAt = new Map<number, number>();
  emu.events.on('page-loaded', (e) => loadedAt.set(e.gfn, e.time));
  while (emu.resumedAt < 0) emu.step();
  expect(emu.vcpus.touch(0, 1000, true)).toBe(false);
  emu.run();
  return { emu, loadedAt };
}

describe('the device model on huge host pages', () => {
  it('asks for whole host pages, so a source that waits for every request to be answered goes on (soak seed 807409)', () => {
    // 37 pages mapped: the host page 32..39 needs 37..39 too, which nobody maps. Asked for by the
    // page, they never came: CRIU's daemon pulls its next chunk only once every request is answered.
    const emu = new Emulator({
      memory: { pages: 64, hostPageSize: 8 * 4096 },
      source: { policy: 'lazy-pages', chunkMinPages: 7, chunkMaxPages: 82 },
      mapper: { mapping: { kind: 'ranges', ranges: [{ start: 0, count: 37 }] }, request: 'page' },
      workload: { kind: 'idle', vcpus: 1 },
      limits: { horizonNs: 1_000_000_000 },
    });
    const forwarded: { pfns: readonly number[]; ranges: readonly number[] }[] = [];
    emu.events.on('forward', (e) => forwarded.push({ pfns: e.pfns, ranges: e.ranges }));
    emu.run();
    expect([emu.status, emu.finished, emu.kernel.now, emu.mapper.retries]).toEqual(['completed', true, 3_405_844, 10]);
    expect(checkRun(emu)).toEqual([]);
    // One FAULT record: the five host pages the 37 mapped pages lie in, each asked for once.
    expect(forwarded).toEqual([{ pfns: [], ranges: [0, 8, 8, 8, 16, 8, 24, 8, 32, 8] }]);
    expect(emu.pager.pfnsRequested).toBe(40);
  });
});

describe('huge host pages', () => {
  it('a fault on a 2 MiB page waits for the whole page, which is placed at once', () => {
    const { emu, loadedAt } = touchOnce(2 * 1024 * 1024);
    // The request was for the host page 512..1023; all of it, and nothing else, arrived.
    expect([...loadedAt.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 512 }, (_, i) => 512 + i));
    expect(new Set(loadedAt.values()).size).toBe(1);
    expect(emu.pager.pfnsRequested).toBe(512);
    // 2 MiB on the wire at 1 Gbit/s takes ≈ 17.9 ms; the fault cannot be answered sooner.
    const wire = emu.stream.serialiseNs(512 * 4104);
    expect(emu.latency.count).toBe(1);
    expect(emu.latency.max).toBeGreaterThan(wire);
    expect(emu.latency.max).toBeLessThan(wire + 2_000_000);
    expect(emu.memory.destVersion(1000)).toBe(3); // loaded (2) then written once
    expect(checkRun(emu)).toEqual([]);
  });

  it('with 4 KiB host pages the same fault fetches one page', () => {
    const { emu, loadedAt } = touchOnce(4096);
    expect([...loadedAt.keys()]).toEqual([1000]);
    expect(emu.latency.max).toBeLessThan(1_000_000);
  });

  it('a 1 GiB host page over 10 Gbit/s takes about a second (the reference figure)', () => {
    const emu = new Emulator({
      memory: { pages: 262_144 * 2, hostPageSize: 1024 ** 3 },
      link: { rateMbps: 10_000 },
      backChannel: { rateMbps: 10_000 },
      source: { policy: 'demand' },
      pager: { eviction: 'batched' },
      workload: { kind: 'idle', vcpus: 1 },
    });
    while (emu.resumedAt < 0) emu.step();
    emu.vcpus.touch(0, 300_000, false);
    emu.run();
    expect(emu.latency.max).toBeGreaterThan(0.85e9);
    expect(emu.latency.max).toBeLessThan(1.1e9);
  });

  it('rejects a host page that is not a multiple of the guest page', () => {
    expect(() => parseScenario({ memory: { hostPageSize: 6000 } })).toThrow(ScenarioError);
    try {
      parseScenario({ memory: { hostPageSize: 6000 } });
    } catch (e) {
      expect((e as ScenarioError).path).toBe('memory.hostPageSize');
    }
  });
});

describe('page-wise placement and huge host pages', () => {
  it('warns that pager.wakeAt page is ignored: a huge host page is placed whole', () => {
    const emu = new Emulator({ ...guest(2 << 20), pager: { wakeAt: 'page' } });
    expect(emu.warnings).toContain('pager.wakeAt page is ignored with memory.hostPageSize 2097152: a huge host page is placed whole, when its last piece arrives');
  });
});

describe('a pause and huge host pages (recovery)', () => {
  it('throws away the pieces of incomplete host pages: not received, sent again (postcopy_temp_page_reset)', () => {
    // 16 pages all outstanding, host pages of 4.
    const memory = new GuestMemory(16, 4096, outstandingSet({ kind: 'all' }, 16, new Rng(1, 'memory')));
    const huge = new HostPages(memory, 4, FRESH);
    // Host page 0 arrives whole and is placed; host page 1 gets 3 of its 4 pieces, host page 2 one.
    for (const g of [0, 1, 2, 3]) huge.arrive(g);
    for (let g = 0; g < 4; g++) memory.load(g);
    for (const g of [4, 5, 6, 8]) huge.arrive(g);
    expect(huge.dropPieces()).toBe(4);
    expect(Array.from(huge.arrived.subarray(0, 12))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Sent again, host page 1 completes only with all four pieces.
    expect([4, 5, 6].map((g) => huge.arrive(g))).toEqual([-1, -1, -1]);
    expect(huge.arrive(7)).toBe(4);
  });

  it('recovery-link-cut with 2 MiB host pages: the pieces of the host page the cut split are sent again', () => {
    const emu = new Emulator(applySets(presetInput('recovery-link-cut'), ['memory.hostPageSize=2097152', 'source.policy=qemu'])).run();
    expect(checkRun(emu)).toEqual([]);
    // The 1024 pages of the lost send buffer, and 64 pieces of a host page that had not completed.
    expect(buildReport(emu).emulator.recovery!['resent-pages']).toBe(1024 + 64);
  });
});
