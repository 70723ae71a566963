import type { Socket } from 'node:net';
import { median } from '../metrics/latency.ts';
import { socketFd } from './return-path.ts';
import { loadAddon } from './uffd.ts';

/** How often a streaming connection's queues are read (ms). */
const SAMPLE_MS = 2;

/**
 * Samples, while a stream runs, how many bytes its connection holds between the two ends: the
 * kernel's queues (the addon's socketQueues: SIOCINQ, SIOCOUTQ), combined by `pick` with what the
 * process itself still queues. The median is what a page asked for now waits behind, measured:
 * the model's link buffers. `stop()` gives it, or null without the addon or a file descriptor.
 */
export function sampleQueues(socket: Socket, pick: (inq: number, outq: number) => number): { stop(): number | null } {
  // The addon alone: reading socket queues needs no userfaultfd.
  const u = loadAddon();
  const fd = socketFd(socket);
  if ('reason' in u || fd < 0) return { stop: () => null };
  const samples: number[] = [];
  const timer = setInterval(() => {
    try {
      const [inq, outq] = u.uffd.socketQueues(fd);
      samples.push(pick(inq, outq));
    } catch {
      // The connection closed between two samples: the stream is over.
    }
  }, SAMPLE_MS);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      return samples.length === 0 ? null : median(samples);
    },
  };
}
