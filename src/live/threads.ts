/**
 * The live destination's threads (docs/live.md), each a Node worker: the vCPUs (vcpu-worker.ts),
 * the fault thread (fault-thread.ts) and the preempt thread (preempt-thread.ts), on their built
 * modules in dist/ (or their sources through tsx: workers/pool.ts's moduleWorker).
 */
import type { Worker } from 'node:worker_threads';
import { PostcopyEmuError } from '../io/errors.ts';
import { moduleWorker, workerModule } from '../workers/pool.ts';
import type { PreemptInit } from './preempt-thread.ts';
import type { Setup } from './setup.ts';
import type { VcpuInit, VcpuMessage, VcpuResult } from './vcpu-worker.ts';

export function startThread(data: { vcpu: VcpuInit } | { fault: true } | { preempt: PreemptInit }): Worker {
  return moduleWorker(workerModule('preempt' in data ? 'live/preempt-thread' : 'fault' in data ? 'live/fault-thread' : 'live/vcpu-worker'), data);
}

/** What the vCPU threads tell the destination. */
export interface VcpuEvents {
  /** A vCPU is parked, waiting for the switchover. */
  parked(): void;
  /** A vCPU's touch loop began (the guest runs here). */
  started(): void;
  /** A vCPU finished its touches: its result, once. */
  done(result: VcpuResult): void;
  failed(error: PostcopyEmuError): void;
}

/**
 * One vCPU thread per vCPU, parked until the switchover, each touching `4 × region / vcpus` pages
 * in the workload's pattern. `shared` is every thread's view of the destination: memory, page
 * states, ring and the `go` word.
 */
export function startVcpus(s: Setup, pattern: VcpuInit['pattern'], shared: Pick<VcpuInit, 'memory' | 'state' | 'ring' | 'go' | 'placedAt'>, on: VcpuEvents): Worker[] {
  const touches = Math.max(1, Math.floor((4 * s.regionCount) / s.vcpus));
  const workers: Worker[] = [];
  for (let v = 0; v < s.vcpus; v++) {
    let done = false;
    const w = startThread({ vcpu: {
      ...shared, vcpu: v, vcpus: s.vcpus, pageSize: s.pageSize, pattern, regionStart: s.regionStart, regionCount: s.regionCount, touches, writeFraction: s.writeFraction, thinkNs: s.thinkNs, constantThink: s.constantThink, seed: s.seed,
    } });
    workers.push(w);
    w.on('message', (r: VcpuMessage) => {
      if (r.kind === 'parked') on.parked();
      else if (r.kind === 'started') on.started();
      else if (!done) {
        done = true;
        on.done(r);
      }
    });
    w.on('error', (e) => on.failed(new PostcopyEmuError('live', `vCPU ${v} failed: ${e.message}`)));
    w.on('exit', (code) => {
      if (!done) on.failed(new PostcopyEmuError('live', `vCPU ${v} exited with code ${code} before it finished`));
    });
  }
  return workers;
}
