import { describe, expect, it } from 'vitest';
import { Emulator } from '../src/emulator.ts';
import { EBUSY, type RequestKind } from '../src/ring/ring.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

/**
 * The device model maps all 4096 pages of a guest through a 2-slot ring, from a source that sends
 * only what is asked for: a walk of 1 µs per gfn after a 5 µs call, so 4.1 ms per first call.
 */
function mappingStorm(request: 'page' | 'range' = 'page'): ScenarioInput {
  return {
    memory: { pages: 4096 },
    ring: { capacity: 2 },
    link: { latencyNs: 10_000 },
    backChannel: { latencyNs: 10_000 },
    source: { policy: 'demand' },
    mapper: { mapping: { kind: 'all' }, mapCallNs: 5_000, perGfnNs: 1_000, request },
    workload: { kind: 'idle', vcpus: 1 },
    limits: { stopAt: 'resume' },
  };
}

/** Runs the scenario, logging each foreign put: [time, gfn, id or EBUSY]. */
function puts(input: ScenarioInput): { emu: Emulator; log: [number, number, number][] } {
  const emu = new Emulator(input);
  const ring = emu.ring, put = ring.putForeign.bind(ring), log: [number, number, number][] = [];
  ring.putForeign = (kind: RequestKind, gfn: number, count?: number) => {
    const id = put(kind, gfn, count);
    log.push([emu.kernel.now, gfn, id]);
    return id;
  };
  emu.run();
  return { emu, log };
}

describe('Mapper', () => {
  it('a slot freed while a call walks goes to the next paged-out gfn the walk reaches', () => {
    const { emu, log } = puts(mappingStorm());
    const [t0] = log[0]!;
    // The call's first gfns take the two slots; the third is refused.
    expect(log.slice(0, 3)).toEqual([[t0, 0, expect.any(Number)], [t0, 1, expect.any(Number)], [t0, 2, EBUSY]]);
    // The first responses come back while the walk is still going: the walk has reached gfn
    // (t − t0 − 5 µs) / 1 µs by then, and the freed slots go to the gfns there, not to gfn 2.
    const [t1, g1] = log[3]!;
    expect(t1 - t0).toBeLessThan(5_000 + 4_096_000);
    expect(g1).toBe(Math.floor((t1 - t0 - 5_000) / 1_000));
    expect(g1).toBeGreaterThan(100);
    expect(log[4]!.slice(1)).toEqual([g1 + 1, expect.any(Number)]);
    // The gfns 3 … g1 − 1 it passed on the full ring got no request: the next call asks for them.
    expect(emu.ring.ebusy).toBe(log.filter(([, , id]) => id === EBUSY).length);
    expect(emu.resumedAt).toBeGreaterThan(0);
    expect(emu.memory.pending).toBe(0);
  });

  it('the retry after the call starts again from the lowest paged-out gfn', () => {
    const { log } = puts(mappingStorm());
    const [t0] = log[0]!;
    // The first put at or after the first call's end (5 µs + 4096 gfns + usleep(100) + 50 µs slack).
    const retry = log.find(([t]) => t >= t0 + 5_000 + 4_096_000 + 150_000)!;
    expect(retry[1]).toBe(2);
  });

  it('with range requests a freed slot takes the next run of paged-out gfns past the walk’s position', () => {
    // Runs of 8 paged-out gfns every 16 (256 runs), at 10 Gbit/s.
    const input = mappingStorm('range');
    input.memory = { pages: 4096, outstanding: { kind: 'ranges', ranges: Array.from({ length: 256 }, (_, i) => ({ start: 16 * i, count: 8 })) } };
    input.link = { latencyNs: 10_000, rateMbps: 10_000 };
    const { emu, log } = puts(input);
    const [t0] = log[0]!;
    expect(log.slice(0, 3).map(([, g, id]) => [g, id === EBUSY])).toEqual([[0, false], [16, false], [32, true]]);
    const [t1, g1] = log[3]!;
    const reached = Math.floor((t1 - t0 - 5_000) / 1_000);
    expect(g1).toBe(Math.ceil(reached / 16) * 16);
    // One EBUSY each time the walk found the ring full, whatever it passed meanwhile.
    expect(emu.ring.ebusy).toBe(log.filter(([, , id]) => id === EBUSY).length);
    expect(emu.memory.pending).toBe(0);
  });
});
