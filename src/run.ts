import { checkRun } from './check/invariants.ts';
import { Emulator } from './emulator.ts';
import { buildReport, type RunReport } from './metrics/report.ts';
import type { ScenarioInput } from './scenario/schema.ts';

/** Wall-clock figures of one run: the only non-deterministic part of a result. */
export interface HostFigures {
  'wall-ms': number;
  'events-per-sec': number;
  'peak-rss-bytes': number;
}

export type HostedReport = RunReport & { emulator: RunReport['emulator'] & { host: HostFigures } };

/** Runs one scenario and adds the wall-clock figures under emulator.host. */
export function runScenario(input: ScenarioInput, check = false, onProgress?: (nowNs: number) => void): { report: HostedReport; violations: string[] } {
  const t0 = process.hrtime.bigint();
  const emu = new Emulator(input).run(onProgress);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const violations = check ? checkRun(emu) : [];
  const report = buildReport(emu);
  const host: HostFigures = {
    'wall-ms': Math.round(wallNs / 1e3) / 1e3,
    'events-per-sec': Math.round(report.emulator.events / (wallNs / 1e9)),
    'peak-rss-bytes': process.resourceUsage().maxRSS * 1024,
  };
  return { report: { ...report, emulator: { ...report.emulator, host } }, violations };
}
