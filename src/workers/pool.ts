import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import PQueue from 'p-queue';
import { packageRoot } from '../io/package.ts';

/** Running from the TS sources (tests, bench) rather than the built package. */
const fromSource = import.meta.url.endsWith('.ts');

/**
 * A worker module by its path under src/ (`sweep/worker`): the built dist/ module in the package,
 * wherever the caller was bundled; its TS source when running from source, loaded through
 * entry.mjs (Node 20's workers do not inherit tsx's loader).
 */
export function workerModule(path: string): URL {
  return pathToFileURL(join(packageRoot, fromSource ? `src/${path}.ts` : `dist/${path}.js`));
}

/**
 * A pool of worker threads, each running the module at `module` (it answers every message
 * with one reply); p-queue bounds the messages in flight to one per worker and hands them out
 * in order. A crashed worker is replaced and its message answered by `crashed(error)`, so one
 * bad job never stops the rest. Results depend only on the messages, never on the pool's size.
 */
export class WorkerPool<In, Out> {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: PQueue;

  constructor(private readonly module: URL, readonly jobs: number, private readonly crashed: (message: In, error: Error) => Out) {
    this.queue = new PQueue({ concurrency: jobs });
    for (let i = 0; i < jobs; i++) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    const w = fromSource
      ? new Worker(new URL('./entry.mjs', import.meta.url), { workerData: { module: this.module.href } })
      : new Worker(this.module);
    this.all.push(w);
    return w;
  }

  /** Queues one message; resolves with the worker's reply. */
  run(message: In): Promise<Out> {
    return this.queue.add(() => this.onWorker(message)) as Promise<Out>;
  }

  private onWorker(message: In): Promise<Out> {
    const w = this.idle.pop()!;
    return new Promise((resolve) => {
      const done = (reply: Out, next: Worker) => {
        w.off('message', onMessage);
        w.off('error', onError);
        this.idle.push(next);
        resolve(reply);
      };
      const onMessage = (reply: Out) => done(reply, w);
      const onError = (e: Error) => done(this.crashed(message, e), this.spawn());
      w.on('message', onMessage);
      w.on('error', onError);
      w.postMessage(message);
    });
  }

  /** Stops at once: queued messages are dropped and the workers terminated mid-job. */
  async terminate(): Promise<void> {
    this.queue.clear();
    await Promise.all(this.all.map((w) => w.terminate()));
  }

  async close(): Promise<void> {
    await this.queue.onIdle();
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
