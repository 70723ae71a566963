import { intArg, numArg, objArg } from '../io/args.ts';
import type { LinkParams } from '../scenario/schema.ts';

/** A rate the schema allows (1 kbit/s … 10 Tbit/s: a zero rate would send in infinite time) and a latency. */
function checkSpeed(where: string, rateMbps: unknown, latencyNs: unknown): void {
  numArg(`${where}.rateMbps`, rateMbps, 0.001, 1e7);
  intArg(`${where}.latencyNs`, latencyNs, 0, 1e12);
}

/**
 * One direction of a TCP stream as a FIFO wire: a record is serialised after everything queued
 * before it (head-of-line blocking) and arrives one latency after its last bit. The sender may
 * write when no more than a send buffer's worth of bytes is still waiting for the wire, as a
 * blocking write() on a socket with SO_SNDBUF = sendBufferBytes, and while the receiver has not
 * fallen more than both buffers behind (TCP flow control: a receiver that does not read closes
 * its window and the sender stalls).
 */
export class Link {
  /** When the wire has sent everything queued so far (a double from the start: see Kernel.now). */
  private wireFreeAt = NaN;
  /** The last arrival: TCP delivers in order even when a degrade lowers the latency. */
  private lastArrival = NaN;
  /** A double from the start: 8 ns a byte at 1 Gbit/s, 0.8 at 10 (see Kernel.now). */
  private nsPerByte = NaN;
  private readonly mss: number;
  private readonly perSegmentBytes: number;
  private bufferNs: number;
  /** One-way latency for records sent from now on. */
  latencyNs: number;
  /** Payload bytes sent but not yet read by the receiving application (byte counts pass 2^30: doubles). */
  unread = NaN;
  bytesPayload = NaN;
  bytesOnWire = NaN;
  records = 0;

  constructor(readonly params: LinkParams) {
    this.wireFreeAt = this.lastArrival = this.unread = this.bytesPayload = this.bytesOnWire = 0;
    objArg('Link.params', params, "a link section (parseScenario(input).link or .backChannel)");
    checkSpeed('Link', params.rateMbps, params.latencyNs);
    intArg('Link.params.mtuBytes', params.mtuBytes, 576, 65535);
    intArg('Link.params.ipTcpHeaderBytes', params.ipTcpHeaderBytes, 0, params.mtuBytes - 1);
    intArg('Link.params.frameOverheadBytes', params.frameOverheadBytes, 0, 4096);
    intArg('Link.params.sendBufferBytes', params.sendBufferBytes, 0, 2 ** 40);
    this.nsPerByte = 8000 / params.rateMbps;
    // Each TCP segment carries at most MSS payload bytes and costs its headers plus Ethernet
    // framing (preamble, header, FCS, inter-frame gap) on the wire.
    this.mss = params.mtuBytes - params.ipTcpHeaderBytes;
    this.perSegmentBytes = params.ipTcpHeaderBytes + params.frameOverheadBytes;
    this.bufferNs = params.sendBufferBytes * this.nsPerByte;
    this.latencyNs = params.latencyNs;
  }

  /** A degrade fault: records sent from now on use this rate and latency; queued ones keep their times. */
  setSpeed(rateMbps: number, latencyNs: number): void {
    checkSpeed('Link.setSpeed', rateMbps, latencyNs);
    this.nsPerByte = 8000 / rateMbps;
    this.bufferNs = this.params.sendBufferBytes * this.nsPerByte;
    this.latencyNs = latencyNs;
  }

  /** The connection failed at `now`: whatever was queued or unread is gone. */
  reset(now: number): void {
    this.wireFreeAt = now;
    this.lastArrival = now;
    this.unread = 0;
  }

  /** Arrival time of a record whose last bit leaves at `sentAt`, never before an earlier record. */
  private arrival(sentAt: number): number {
    this.lastArrival = Math.max(this.lastArrival, sentAt + this.latencyNs);
    return this.lastArrival;
  }

  /** When the wire will have sent everything queued so far. */
  get busyUntil(): number {
    return this.wireFreeAt;
  }

  /** Another flow on the same wire took `ns` of its time: what is queued here goes out later. */
  yieldWire(now: number, ns: number): void {
    if (this.wireFreeAt > now) this.wireFreeAt += ns;
  }

  /** Bytes on the wire for a payload of `bytes` (TCP segmentation + framing). */
  wireBytes(bytes: number): number {
    return bytes + Math.ceil(bytes / this.mss) * this.perSegmentBytes;
  }

  /** Time the wire needs to serialise a payload of `bytes`, in whole ns. */
  serialiseNs(bytes: number): number {
    return Math.ceil(this.wireBytes(bytes) * this.nsPerByte);
  }

  /** Earliest time at or after `now` when a blocking write may start (send buffer has room). */
  writableAt(now: number): number {
    return Math.max(now, Math.ceil(this.wireFreeAt - this.bufferNs));
  }

  /** Queues a record at `now`; returns its arrival time at the far end. */
  send(now: number, bytes: number): number {
    // Two compares a record; the messages only for a bad argument.
    if (!(now >= 0)) numArg('Link.send.now', now, 0, Number.MAX_SAFE_INTEGER);
    if (!(bytes >= 0)) numArg('Link.send.bytes', bytes, 0, Number.MAX_SAFE_INTEGER);
    // Not Math.max, which hands back a small integer while times are below 2^31 ns: V8 then
    // speculated integer sums here and deoptimised once a run's clock passed 2.1 s.
    const start = now > this.wireFreeAt ? now : this.wireFreeAt;
    const wire = this.wireBytes(bytes);
    this.wireFreeAt = start + Math.ceil(wire * this.nsPerByte);
    this.bytesPayload += bytes;
    this.unread += bytes;
    this.bytesOnWire += wire;
    this.records++;
    return this.arrival(this.wireFreeAt);
  }

  /** Queues a record the receiver reads as it arrives (precopy's loads): it never holds the window. */
  sendRead(now: number, bytes: number): number {
    const arrival = this.send(now, bytes);
    this.consume(bytes);
    return arrival;
  }

  /** The receiving application read a record of `bytes`. */
  consume(bytes: number): void {
    this.unread -= bytes;
  }

  /** False while the receiver's window is closed: the sender must wait for `consume`. */
  get windowOpen(): boolean {
    return this.unread <= this.params.sendBufferBytes + this.params.receiveBufferBytes;
  }

  /** Bytes queued but not yet on the wire at `now`. */
  backlogBytes(now: number): number {
    return Math.max(0, (this.wireFreeAt - now) / this.nsPerByte);
  }
}
