import { parentPort } from 'node:worker_threads';
import { Emulator } from '../emulator.ts';
import { buildReport, type RunReport } from '../metrics/report.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { Arena } from '../memory/arena.ts';

// Runs in a worker never overlap: their per-page arrays reuse one arena.
const arena = new Arena();

/** A run's outcome as a sweep worker answers it. */
export type RunOutcome = { report: RunReport } | { error: string };

/** A sweep worker: runs one scenario per message and answers with its report or its error. */
parentPort?.on('message', (scenario: ScenarioInput) => {
  try {
    arena.reset();
    parentPort!.postMessage({ report: buildReport(new Emulator(scenario, arena).run()) } satisfies RunOutcome);
  } catch (e) {
    parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) } satisfies RunOutcome);
  }
});
