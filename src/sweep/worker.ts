import { parentPort } from 'node:worker_threads';
import { Emulator } from '../emulator.ts';
import { buildReport } from '../metrics/report.ts';
import type { ScenarioInput } from '../scenario/schema.ts';

/** A sweep worker: runs one scenario per message and answers with its report or its error. */
parentPort!.on('message', (msg: { index: number; scenario: ScenarioInput }) => {
  try {
    const report = buildReport(new Emulator(msg.scenario).run());
    parentPort!.postMessage({ index: msg.index, report });
  } catch (e) {
    parentPort!.postMessage({ index: msg.index, error: e instanceof Error ? e.message : String(e) });
  }
});
