// Source runs only (tests, bench): worker threads start without the parent's tsx loader, so
// register it, then load the TS module that this worker runs (workerData.module, a file URL).
// The built package starts sweep and soak workers from its bundle (workers/boot.ts), the live
// threads on their JS modules.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.module);
