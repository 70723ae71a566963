/**
 * The fault thread of the userfaultfd backend (docs/live.md), a worker of its own as QEMU's
 * postcopy_ram_fault_thread is: reads the kernel's page-fault events and, for each page not yet
 * asked for, either writes its REQUEST on the return path itself (return-path.ts: QEMU's fault
 * thread, the model's `pager.faultThread`) or puts it on the bounded fault ring, waiting while it is
 * full (the ring's rule), for the pager to drain — the main thread's, or the preempt thread's.
 * It runs until the run aborts the ring.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { requestFrame } from './placer.ts';
import { sendWhole, withReturnPath } from './return-path.ts';
import { ringAborted, ringPut } from './ring.ts';
import { PAGE, addon, type VcpuMessage } from './vcpu-worker.ts';

/** The fault thread's setup: the region, the page states, the ring, and the return path when it requests pages itself. */
export interface FaultThreadInit {
  uffd: number;
  state: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  pageSize: number;
  /** The return path's words, the destination's counters and request times: REQUESTs go out from this thread. */
  direct: { returnPath: SharedArrayBuffer; counters: SharedArrayBuffer; requestedAt: SharedArrayBuffer } | null;
}

export function runFaultThread(o: FaultThreadInit, ready: () => void = () => {}): void {
  const u = addon(), state = new Int32Array(o.state), ring = new Int32Array(o.ring), out = new Float64Array(256);
  const rp = o.direct ? new Int32Array(o.direct.returnPath) : null;
  const asks = o.direct ? { counters: new Int32Array(o.direct.counters), requestedAt: new Float64Array(o.direct.requestedAt) } : null;
  // With no connection now (paused by a cut) the page stays requested: the resume asks again.
  const request = (g: number) => withReturnPath(rp!, (fd) => fd < 0 || sendWhole(rp!, u, fd, requestFrame(asks!, g)));
  ready();
  while (!ringAborted(ring)) {
    const n = u.waitFaults(o.uffd, 50, out);
    for (let i = 0; i < n; i++) {
      const g = Math.floor(out[i]! / o.pageSize);
      if (Atomics.compareExchange(state, g, PAGE.MISSING, PAGE.REQUESTED) !== PAGE.MISSING) continue;
      if (rp) request(g);
      else if (!ringPut(ring, g)) return;
    }
  }
}

// The fault thread starts before its region exists: its setup is its first message.
if (parentPort && (workerData as { fault?: true } | null)?.fault) {
  const port = parentPort;
  port.once('message', (init: FaultThreadInit) => runFaultThread(init, () => port.postMessage({ kind: 'parked', vcpu: -1 } satisfies VcpuMessage)));
}
