// Worker threads start without the parent's tsx loader: register it, then load the TS module
// that this worker runs (workerData.module, a file URL).
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.module);
