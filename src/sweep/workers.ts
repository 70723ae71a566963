import { WorkerPool } from '../workers/pool.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import type { RunOutcome } from './worker.ts';

/** A sweep's worker threads: each runs one scenario per message (sweep/worker.ts). */
export type SweepWorkers = WorkerPool<ScenarioInput, RunOutcome>;

/** Starts `jobs` sweep workers; a run whose worker crashed is answered with that as its error. */
export function startSweepWorkers(jobs: number): SweepWorkers {
  return new WorkerPool<ScenarioInput, RunOutcome>('sweep/worker', jobs, (_, e) => ({ error: `worker crashed: ${e.message}` }));
}
