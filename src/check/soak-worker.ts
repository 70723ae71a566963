import { parentPort } from 'node:worker_threads';
import { Arena } from '../memory/arena.ts';
import { soakBatch } from './soak.ts';

// Seeds in a worker never overlap: their per-page arrays reuse one arena.
const arena = new Arena();

/** A soak worker: runs one batch of seeds per message and answers with its failures. */
parentPort?.on('message', (b: { from: number; count: number }) => {
  parentPort!.postMessage(soakBatch(b, {}, arena));
});
