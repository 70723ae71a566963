import type { Link } from './link.ts';

/**
 * QEMU's postcopy-preempt channel: a second TCP connection for requested pages over the same
 * wire as the main stream, so a requested page no longer queues behind the main socket's
 * buffered background data. While the main stream is backlogged the two flows share the wire
 * (fair queuing: the preempt flow gets `share` of it); otherwise the preempt flow has it all.
 * The main stream's queued data goes out later by the wire time the preempt bytes took
 * (records already in flight keep their arrival time: an error of one page's wire time each).
 */
export class PreemptChannel {
  private freeAt = 0;
  private lastArrival = 0;
  records = 0;
  bytesPayload = 0;

  constructor(private readonly main: Link, private readonly share: number) {}

  /** Sends a record of `bytes` at `now`; returns its arrival time. */
  send(now: number, bytes: number): number {
    const start = Math.max(now, this.freeAt);
    const wire = this.main.serialiseNs(bytes);
    const contended = this.main.busyUntil > start;
    this.main.yieldWire(start, wire);
    this.freeAt = start + (contended ? Math.ceil(wire / this.share) : wire);
    this.records++;
    this.bytesPayload += bytes;
    this.lastArrival = Math.max(this.lastArrival, this.freeAt + this.main.latencyNs);
    return this.lastArrival;
  }

  /** The connection failed at `now`: queued preempt data is gone. */
  reset(now: number): void {
    this.freeAt = now;
    this.lastArrival = now;
  }
}
