import { argCheck, objArg } from '../io/args.ts';
import { Link } from '../link/link.ts';
import type { Scenario } from '../scenario/schema.ts';

/** Compression CPU per input byte when not given: zlib level 1 ~100 MB/s, zstd level 1 ~500 MB/s. */
const COMPRESS_NS_PER_BYTE = { none: 0, zlib: 10, zstd: 2 } as const;

/**
 * QEMU's multifd channels (shared/reference/migration.md §2): threads beside the main channel,
 * each taking 128-page packets from the migration thread, checking zero pages (zero-page-detection
 * multifd), compressing, and writing to its own connection. The migration thread fills a packet
 * while the channels send, then hands it to an idle channel, waiting only when none is idle
 * (`multifd_send_pages` on the `channels_ready` semaphore); at a round's end it syncs them all.
 */
export class Multifd {
  readonly channels: number;
  /** When each channel thread has written its last packet (a blocking write) and is idle again. */
  private readonly freeAt: Float64Array;
  private readonly links: Link[];
  private next = 0;
  private readonly p: Scenario['multifd'];
  private readonly compressNs: number;
  private readonly pageSize: number;
  private readonly perPageNs: number;
  private readonly zeroCheckNs: number;
  bytes = 0;
  packets = 0;
  /** Channel CPU time spent (checks, copies, compression), summed over channels. */
  busyNs = 0;

  constructor(s: Scenario, stream: Link) {
    objArg('Multifd.scenario', s, "a parsed scenario (parseScenario(input))");
    argCheck(stream instanceof Link, 'Multifd.stream', 'must be the Link of the main stream');
    this.p = s.multifd;
    this.channels = s.multifd.channels;
    this.freeAt = new Float64Array(this.channels);
    // One NIC: every channel queues on the stream's wire. Loopback: each connection is its own wire.
    this.links = s.multifd.wire === 'shared' ? [stream] : Array.from({ length: this.channels }, () => new Link(s.link));
    this.compressNs = s.multifd.compressNsPerByte ?? COMPRESS_NS_PER_BYTE[s.multifd.compression];
    this.pageSize = s.memory.pageSize;
    this.perPageNs = s.source.perPageNs;
    this.zeroCheckNs = s.source.zeroCheckNs;
  }

  private link(c: number): Link {
    return this.links.length === 1 ? this.links[0]! : this.links[c]!;
  }

  /** Earliest time a channel is idle. */
  idleAt(): number {
    let t = Infinity;
    for (let c = 0; c < this.channels; c++) t = Math.min(t, this.freeAt[c]!);
    return t;
  }

  /** When every channel is idle and every wire has sent what it was given. */
  drainedAt(): number {
    let t = 0;
    for (let c = 0; c < this.channels; c++) t = Math.max(t, this.freeAt[c]!, this.link(c).busyUntil);
    return t;
  }

  /** Device state on the next idle channel (newer QEMU): no page work, the wire only. Returns its arrival. */
  sendBytes(now: number, bytes: number): number {
    let c = 0;
    for (let i = 1; i < this.channels; i++) if (this.freeAt[i]! < this.freeAt[c]!) c = i;
    const link = this.link(c);
    const arrival = link.sendRead(Math.max(now, this.freeAt[c]!), bytes);
    this.freeAt[c] = link.writableAt(Math.max(now, this.freeAt[c]!));
    this.bytes += bytes;
    this.packets++;
    return arrival;
  }

  /**
   * Hands a packet of `normal` data pages and `zeros` zero pages at `now` (a channel must be
   * idle: `idleAt() <= now`); the channel scans the zero pages whole (a data page's check stops at its first
   * bytes). Returns the packet's bytes.
   */
  send(now: number, normal: number, zeros: number): number {
    let c = this.next;
    while (this.freeAt[c]! > now) c = (c + 1) % this.channels;
    this.next = (c + 1) % this.channels;
    const dataBytes = normal * this.pageSize;
    const compressed = this.p.compression === 'none' ? dataBytes : Math.ceil(dataBytes * this.p.compressionRatio);
    // The header carries an offset slot for every page the packet can hold.
    const bytes = this.p.packetHeaderBytes + 8 * this.p.packetPages + compressed;
    const cpu = zeros * this.zeroCheckNs + normal * this.perPageNs + Math.round(dataBytes * this.compressNs);
    const link = this.link(c);
    link.sendRead(now + cpu, bytes); // the destination's channel thread reads at once
    this.freeAt[c] = link.writableAt(now + cpu);
    this.busyNs += cpu;
    this.bytes += bytes;
    this.packets++;
    return bytes;
  }

  /** A round's sync from `now`: each channel, once idle, writes a SYNC packet; returns when all are done. */
  sync(now: number): number {
    let done = now;
    for (let c = 0; c < this.channels; c++) {
      const link = this.link(c), start = Math.max(now, this.freeAt[c]!);
      link.sendRead(start, this.p.packetHeaderBytes);
      this.bytes += this.p.packetHeaderBytes;
      this.freeAt[c] = start;
      done = Math.max(done, start);
    }
    return done + this.p.syncNs;
  }
}
