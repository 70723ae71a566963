// A worker thread of the built package (workers/pool.ts starts it): its module comes from the
// bundle with V8's code cache, not as 64 ES modules and zod's that each worker parses and compiles.
import { workerData } from 'node:worker_threads';
import { loadBundle, workerChunk, type BundledWorker } from '../io/bundle.ts';

loadBundle().require(workerChunk((workerData as { module: BundledWorker }).module));
