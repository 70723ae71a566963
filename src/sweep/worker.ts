import { parentPort } from 'node:worker_threads';
import { Emulator } from '../emulator.ts';
import { buildReport, type RunReport } from '../metrics/report.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { Arena } from '../memory/arena.ts';

// Runs in a worker never overlap: their per-page arrays reuse one arena.
const arena = new Arena();

/** A run's outcome as a sweep worker answers it. */
export type RunOutcome = { index: number; report: RunReport } | { index: number; error: string };

/** A sweep worker: runs one scenario per message and answers with its report or its error. */
parentPort?.on('message', (msg: { index: number; scenario: ScenarioInput }) => {
  try {
    arena.reset();
    const report = buildReport(new Emulator(msg.scenario, arena).run());
    parentPort!.postMessage({ index: msg.index, report });
  } catch (e) {
    parentPort!.postMessage({ index: msg.index, error: e instanceof Error ? e.message : String(e) });
  }
});
