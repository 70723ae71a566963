import { parentPort } from 'node:worker_threads';
import { soakBatch } from './soak.ts';

/** A soak worker: runs one batch of seeds per message and answers with its failures. */
parentPort?.on('message', (b: { from: number; count: number }) => {
  parentPort!.postMessage(soakBatch(b));
});
