/**
 * The live destination's preempt thread (docs/live.md), a worker of its own as QEMU's fault and
 * preempt threads are: it opens the preempt connection, takes faulting gfns off the fault ring
 * and sends their REQUESTs on it, and places the pages that come back on it, so neither waits
 * for the main thread, busy with the stream. It tells the main thread when it placed pages, when
 * COMPLETE came, and when the connection was refused or lost (then it stops taking from the ring,
 * which the main thread's pager drains again).
 */
import { createConnection, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { FrameDecoder, FrameType, encodeFrame } from './frame.ts';
import { placePages, placeZero, requestFrame, type Placement } from './placer.ts';
import { putAfter, ringDrain } from './ring.ts';
import { loadUffd } from './uffd.ts';
import { PAGE } from './vcpu-worker.ts';

export interface PreemptInit {
  host: string;
  port: number;
  seed: number;
  pages: number;
  pageSize: number;
  state: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  copyTimes: SharedArrayBuffer;
  placedAt: SharedArrayBuffer;
  requestedAt: SharedArrayBuffer;
  /** The guest's memory: a SharedArrayBuffer, or the handle of a userfaultfd region. */
  memory: SharedArrayBuffer | { uffd: number };
}

/** What the preempt thread posts to the main thread. */
export type PreemptMessage =
  | { kind: 'open' } | { kind: 'placed' } | { kind: 'complete' }
  | { kind: 'refused'; message: string } | { kind: 'lost'; message: string } | { kind: 'error'; message: string };


export function runPreemptThread(o: PreemptInit, post: (m: PreemptMessage) => void): void {
  const state = new Int32Array(o.state), ring = new Int32Array(o.ring), counters = new Int32Array(o.counters);
  const u = loadUffd();
  const uffd = o.memory instanceof SharedArrayBuffer ? null : 'uffd' in u ? u.uffd : null;
  const place: Placement = {
    seed: o.seed, pages: o.pages, pageSize: o.pageSize, state, counters, uffd, copyTimes: new BigInt64Array(o.copyTimes), placedAt: new Float64Array(o.placedAt), requestedAt: new Float64Array(o.requestedAt),
    region: o.memory instanceof SharedArrayBuffer ? -1 : o.memory.uffd,
    memory: o.memory instanceof SharedArrayBuffer ? new Uint8Array(o.memory) : null,
  };
  let stopped = false, open = false;
  const decoder = new FrameDecoder();
  const stop = (m: PreemptMessage) => {
    if (stopped) return;
    stopped = true;
    socket.destroy();
    post(m);
  };
  const socket: Socket = createConnection({ host: o.host, port: o.port, onread: { buffer: Buffer.allocUnsafe(1 << 16), callback: (n, buf) => {
    try {
      for (const f of decoder.push(Buffer.from(buf.buffer, buf.byteOffset, n))) {
        if (f.type === FrameType.PAGE || f.type === FrameType.ZERO) {
          (f.type === FrameType.PAGE ? placePages : placeZero)(place, f);
          post({ kind: 'placed' });
        } else if (f.type === FrameType.COMPLETE) post({ kind: 'complete' });
        else throw new Error(`unexpected ${FrameType[f.type]} on the preempt connection`);
      }
    } catch (e) {
      stop({ kind: 'error', message: (e as Error).message });
    }
    return true;
  } } });
  socket.setNoDelay(true);
  socket.on('connect', () => {
    open = true;
    socket.write(encodeFrame(FrameType.PREEMPT, new Uint8Array(0)));
    post({ kind: 'open' });
    void pager();
  });
  socket.on('error', (e) => stop({ kind: open ? 'lost' : 'refused', message: e.message }));
  socket.on('close', () => stop({ kind: open ? 'lost' : 'refused', message: 'closed' }));

  // The ring's consumer while the connection lasts: a REQUEST for every gfn still missing.
  const pager = async () => {
    while (!stopped) {
      const seen = ringDrain(ring, (g) => {
        if (Atomics.load(state, g) !== PAGE.PRESENT) socket.write(requestFrame(place, g));
      });
      await putAfter(ring, seen);
    }
  };
}

const data = workerData as { preempt?: PreemptInit } | null;
if (parentPort && data?.preempt) {
  const port = parentPort;
  runPreemptThread(data.preempt, (m) => port.postMessage(m));
}
