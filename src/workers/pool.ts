import { Worker } from 'node:worker_threads';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import PQueue from 'p-queue';
import { packageRoot } from '../io/package.ts';
import { codeCacheFile, type BundledWorker } from '../io/bundle.ts';

/** The build's last output (scripts/bundle-cli.mjs writes it after everything else). */
const BUILT = codeCacheFile('dist/cli-bundle/commands.cjs');

/**
 * Running from the TS sources (tests, bench), workers too run their TS through tsx, unless a
 * build made after the last change to src/ is there (`npm test` builds first): then they run it,
 * as the package does. The same code either way; a worker from the build starts in ~0.25 s, one
 * through tsx in ~0.65 s, and the test suite starts hundreds.
 */
const fromSource = import.meta.url.endsWith('.ts') && !builtAfterSources();

function builtAfterSources(): boolean {
  let built: number;
  try {
    built = statSync(join(packageRoot, BUILT)).mtimeMs;
  } catch {
    return false;
  }
  const src = join(packageRoot, 'src');
  return readdirSync(src, { recursive: true, withFileTypes: true })
    .every((e) => !e.isFile() || statSync(join(e.parentPath, e.name)).mtimeMs < built);
}

/**
 * A worker module by its path under src/ (`sweep/worker`): the built dist/ module in the package,
 * wherever the caller was bundled; its TS source when running from source, loaded through
 * entry.mjs (Node 20's workers do not inherit tsx's loader).
 */
export function workerModule(path: string): URL {
  return pathToFileURL(join(packageRoot, fromSource ? `src/${path}.ts` : `dist/${path}.js`));
}

/**
 * Starts a worker on `module`: a bundled worker module from the package's bundle (workers/boot.ts)
 * in the built package, or from its TS source (through entry.mjs) when running from source; any
 * other module by its URL.
 */
function startWorker(module: BundledWorker | URL): Worker {
  if (typeof module === 'string' && !fromSource) return new Worker(join(packageRoot, 'dist/workers/boot.js'), { workerData: { module } });
  return moduleWorker(typeof module === 'string' ? workerModule(module) : module);
}

/**
 * A worker on the module at `url` with `data` as its workerData: a JS module itself, a TS one
 * (running from source) through entry.mjs, which loads it with tsx (`module` added to the data).
 */
export function moduleWorker(url: URL, data?: object): Worker {
  return /\.m?ts$/.test(url.pathname)
    ? new Worker(new URL('./entry.mjs', import.meta.url), { workerData: { ...data, module: url.href } })
    : new Worker(url, { workerData: data });
}

/**
 * Messages in flight per worker: the next one waits in the worker's own queue, so it starts
 * as soon as the last ends instead of after a round trip through a busy main thread.
 */
const DEPTH = 2;

interface Slot<In, Out> {
  /** Null after a crash with nothing pending; started again for the next message. */
  worker: Worker | null;
  /** Posted and not yet answered, in order: the worker answers them in that order. */
  pending: { message: In; resolve: (reply: Out) => void }[];
}

/**
 * A pool of worker threads, each running `module` (see startWorker; it answers every message
 * with one reply, in order); p-queue hands the messages out in order, at most DEPTH per worker.
 * A worker that crashes (or exits) is replaced: the message it was running is answered by
 * `crashed(error)`, the ones queued behind it go to the replacement, so one bad job never stops
 * the rest. Results depend only on the messages, never on the pool's size.
 */
export class WorkerPool<In, Out> {
  private readonly slots: Slot<In, Out>[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: PQueue;
  private readonly module: BundledWorker | URL;
  /** terminate() or close() was called: a worker's exit then is the pool's doing. */
  private stopping = false;

  constructor(module: BundledWorker | URL, jobs: number, private readonly crashed: (message: In, error: Error) => Out) {
    this.module = module;
    this.queue = new PQueue({ concurrency: jobs * DEPTH });
    for (let i = 0; i < jobs; i++) {
      const slot: Slot<In, Out> = { worker: null, pending: [] };
      this.start(slot);
      this.slots.push(slot);
    }
  }

  private start(slot: Slot<In, Out>): Worker {
    const w = startWorker(this.module);
    this.all.push(w);
    slot.worker = w;
    this.listen(slot);
    return w;
  }

  private listen(slot: Slot<In, Out>): void {
    const w = slot.worker!;
    let error: Error | null = null;
    w.on('message', (reply: Out) => slot.pending.shift()!.resolve(reply));
    // An uncaught exception comes as 'error' on the worker's internal port, and may overtake the
    // replies it posted before it died (taken there, a crash on message 3 was once pinned on 2,
    // and 2's late reply answered 3). 'exit' comes after Node has delivered all of them, so the
    // message still first in line then is the one the worker died running.
    w.on('error', (e: Error) => (error = e));
    w.on('exit', (code: number) => {
      if (this.stopping) return;
      const failed = slot.pending.shift();
      // Replaced only for a message: a module that fails to load is not restarted in a loop.
      if (!failed) {
        slot.worker = null;
        return;
      }
      const next = this.start(slot);
      for (const p of slot.pending) next.postMessage(p.message);
      failed.resolve(this.crashed(failed.message, error ?? new Error(`the worker exited with code ${code}`)));
    });
  }

  /**
   * Before the first message: keeps the first `jobs` workers and stops the rest, for a caller
   * that started the pool before it knew how many it needs.
   */
  limit(jobs: number): void {
    for (const slot of this.slots.splice(jobs)) void slot.worker?.terminate();
    this.queue.concurrency = this.slots.length * DEPTH;
  }

  /** Queues one message; resolves with the worker's reply. */
  run(message: In): Promise<Out> {
    return this.queue.add(() => {
      // The queue's bound leaves some worker with fewer than DEPTH messages.
      const slot = this.slots.reduce((a, b) => (b.pending.length < a.pending.length ? b : a));
      const w = slot.worker ?? this.start(slot);
      return new Promise<Out>((resolve) => {
        slot.pending.push({ message, resolve });
        w.postMessage(message);
      });
    }) as Promise<Out>;
  }

  /** Stops at once: queued messages are dropped and the workers terminated mid-job. */
  async terminate(): Promise<void> {
    this.stopping = true;
    this.queue.clear();
    await Promise.all(this.all.map((w) => w.terminate()));
  }

  async close(): Promise<void> {
    await this.queue.onIdle();
    this.stopping = true;
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
