import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
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
