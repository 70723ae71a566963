import { readFileSync } from 'node:fs';
import { median } from '../../metrics/latency.ts';
import { QEMU_FILE_BUF_BYTES } from '../../stream/records.ts';

/** What the migration connection held, sampled while QEMU sent (bytes). */
export interface SocketQueues {
  /** Samples taken, and those with a QEMUFile buffer's worth (32 KiB) or more queued: the source streaming. */
  samples: number;
  'busy-samples': number;
  /** Of the busy samples: the source socket's Send-Q (unsent and unacknowledged), the destination's Recv-Q (unread), their sum. */
  'send-q-p50': number | null;
  'send-q-max': number | null;
  'recv-q-p50': number | null;
  'ahead-p50': number | null;
}

/** One /proc/net/tcp line's local port, remote port, tx_queue and rx_queue. */
const LINE = /^\s*\d+:\s+[0-9A-F]{8}:([0-9A-F]{4})\s+[0-9A-F]{8}:([0-9A-F]{4})\s+01\s+([0-9A-F]{8}):([0-9A-F]{8})/;

/**
 * The source's and the destination's ends of the connection to `port` on loopback, from
 * /proc/net/tcp's text. The preempt channel connects to the same port: of several connections
 * the fullest counts, the main stream's.
 */
export function connectionQueues(text: string, port: number): { send: number; recv: number } | null {
  let send = -1, recv = -1;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const local = parseInt(m[1]!, 16), remote = parseInt(m[2]!, 16);
    if (remote === port) send = Math.max(send, parseInt(m[3]!, 16)); // a source socket: its Send-Q
    else if (local === port) recv = Math.max(recv, parseInt(m[4]!, 16)); // an accepted destination socket: its Recv-Q
  }
  return send < 0 || recv < 0 ? null : { send, recv };
}

/** The lower middle of the samples, null without any. */
const middle = (xs: number[]) => (xs.length === 0 ? null : median(xs, true));

/**
 * Samples the migration connection's queues (/proc/net/tcp: Send-Q at the source, Recv-Q at
 * the destination) every `everyMs`: what a page sent now waits behind, the figure `live
 * --calibrate` measures on its own stream as link.sendBufferBytes. Only samples with a QEMUFile
 * buffer (32 KiB) or more queued count, so a rate-limited QEMU's sleeps between its bursts do not.
 */
export class SocketSampler {
  private timer: ReturnType<typeof setInterval> | null = null;
  private samples = 0;
  private readonly send: number[] = [];
  private readonly recv: number[] = [];

  constructor(private readonly port: number, private readonly everyMs = 5, private readonly read = () => readFileSync('/proc/net/tcp', 'utf8')) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): SocketQueues {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const ahead = this.send.map((s, i) => s + this.recv[i]!);
    return {
      samples: this.samples,
      'busy-samples': this.send.length,
      'send-q-p50': middle(this.send),
      'send-q-max': this.send.length > 0 ? Math.max(...this.send) : null,
      'recv-q-p50': middle(this.recv),
      'ahead-p50': middle(ahead),
    };
  }

  /** One look at the connection (public for tests). */
  sample(): void {
    let q: { send: number; recv: number } | null;
    try {
      q = connectionQueues(this.read(), this.port);
    } catch {
      return;
    }
    this.samples++;
    if (q === null || q.send + q.recv < QEMU_FILE_BUF_BYTES) return;
    this.send.push(q.send);
    this.recv.push(q.recv);
  }
}
