import { numArg } from '../io/args.ts';
import { RATE_MBPS } from '../scenario/schema.ts';
import { READ_BYTES } from './live.ts';

/** The smallest read a paced connection makes: below it the reads cost more than the wire's pace saves. */
const MIN_READ_BYTES = 16 * 1024;
/** Shorter waits are not worth a timer (Node's fire in whole milliseconds): the wire's debt carries to the next read. */
const MIN_PAUSE_MS = 1;

/**
 * A wire of `mbps` on loopback (`live --wire`): the destination reads its main connection no
 * faster than such a wire delivers, so the stream's bytes queue behind it in the kernels' buffers
 * (the source's send buffer, the destination's receive queue) as they queue behind a real link,
 * and a requested page waits behind them. Reads are about a millisecond of the wire each: a
 * read is handled at once and the next waits until the wire would have delivered this one, so a
 * page is placed up to one read's time early. A timer that fires late does not slow the wire:
 * the reads after it catch up.
 */
export class Wire {
  /** When the wire has delivered everything read so far, ms. */
  private freeAt = -Infinity;
  /** The last read asked for a pause: the time since was the wire's, not an idle one. */
  private paused = false;
  private lastReadAt = -Infinity;
  /** The bytes of one read: a millisecond of the wire, within 16 KiB … READ_BYTES. */
  readonly readBytes: number;

  constructor(readonly mbps: number) {
    numArg('Wire.mbps', mbps, RATE_MBPS.min, RATE_MBPS.max);
    this.readBytes = Math.min(READ_BYTES, Math.max(MIN_READ_BYTES, Math.floor((mbps * 1e6) / 8 / 1000)));
  }

  /** `bytes` were read at `nowMs`: how long (ms) the connection pauses before its next read (0: none). */
  read(bytes: number, nowMs: number): number {
    // A read that follows no pause of ours and not at once either found nothing there before:
    // the wire idled, and starts afresh now. After a pause (a late timer) or back to back (the
    // reads catching up), it goes on from where it is.
    const idle = !this.paused && nowMs - this.lastReadAt > MIN_PAUSE_MS;
    const from = idle ? Math.max(this.freeAt, nowMs) : this.freeAt;
    this.lastReadAt = nowMs;
    this.freeAt = from + (bytes * 8) / (this.mbps * 1000);
    const wait = this.freeAt - nowMs;
    this.paused = wait >= MIN_PAUSE_MS;
    return this.paused ? wait : 0;
  }
}
