import { Worker } from 'node:worker_threads';
import PQueue from 'p-queue';
import type { RunReport } from '../metrics/report.ts';
import type { ScenarioInput } from '../scenario/schema.ts';

export type RunOutcome = { index: number; report: RunReport } | { index: number; error: string };

/**
 * A pool of worker threads; p-queue bounds how many runs are in flight (one per worker) and
 * hands them out in index order. Each run's result depends only on its scenario, so the pool's
 * size changes wall time, never results.
 */
export class RunPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: PQueue;

  constructor(readonly jobs: number) {
    this.queue = new PQueue({ concurrency: jobs });
    for (let i = 0; i < jobs; i++) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./worker-entry.mjs', import.meta.url));
    this.all.push(w);
    return w;
  }

  /** Queues one run; resolves when it is done (a failed run resolves with its error). */
  run(index: number, scenario: ScenarioInput): Promise<RunOutcome> {
    return this.queue.add(() => this.onWorker(index, scenario)) as Promise<RunOutcome>;
  }

  private onWorker(index: number, scenario: ScenarioInput): Promise<RunOutcome> {
    const w = this.idle.pop()!;
    return new Promise((resolve) => {
      const done = (outcome: RunOutcome, next: Worker) => {
        w.off('message', onMessage);
        w.off('error', onError);
        this.idle.push(next);
        resolve(outcome);
      };
      const onMessage = (m: RunOutcome) => done(m, w);
      // A crashed worker is replaced; the run is recorded as failed and the sweep goes on.
      const onError = (e: Error) => done({ index, error: `worker crashed: ${e.message}` }, this.spawn());
      w.on('message', onMessage);
      w.on('error', onError);
      w.postMessage({ index, scenario });
    });
  }

  async close(): Promise<void> {
    await this.queue.onIdle();
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
