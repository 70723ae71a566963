import { expect } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

/** A small QEMU-source guest at 1 Gbit/s, no device model, idle vCPUs; `over` replaces whole sections. */
export function lifecycleRun(over: ScenarioInput): Emulator {
  return new Emulator({
    memory: { pages: 8192 },
    link: { rateMbps: 1000 },
    backChannel: { rateMbps: 1000 },
    source: { policy: 'qemu' },
    mapper: { mapping: { kind: 'none' } },
    workload: { kind: 'idle' },
    ...over,
  }).run();
}

/** The run's report with its precopy section at hand. */
export const report = (emu: Emulator) => {
  const r = buildReport(emu);
  return { ...r, pre: r.emulator.precopy! };
};

/** A sound run: no invariant broken, and no page left older at the destination after precopy. */
export function expectSound(emu: Emulator): void {
  expect(checkRun(emu)).toEqual([]);
  expect(emu.precopy!.staleOutside()).toBe(0);
}
