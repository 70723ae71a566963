import type { Kernel } from '../kernel/kernel.ts';
import type { Link } from '../link/link.ts';
import { PageState, type GuestMemory } from '../memory/guest-memory.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import { NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import {
  RECORD_HEADER_BYTES, RecordType, pageDataBytes, pfnListBytes, type BackRecord, type StreamRecord,
} from '../stream/records.ts';
import { makePolicy } from './make-policy.ts';
import type { PushPolicy } from './policy.ts';
import type { PreemptChannel } from '../link/preempt.ts';

/** Pages taken into a record: all of them, the non-zero ones from range requests, the zero ones. */
interface PageCounts {
  n: number;
  batched: number;
  zeros: number;
}

/** The preempt channel and where its records go. */
export interface PreemptPath {
  channel: PreemptChannel;
  deliver: (record: StreamRecord, arrival: number) => void;
}

const enum Phase {
  PFNS,
  PUSH,
  DONE,
}

/**
 * The migration source after the guest is paused: it announces the outstanding pfns, sends the
 * transition, then loops: read the back-channel (only between records), put requested pfns still
 * unsent into the record, fill the rest with background pages from the push policy, write.
 * A blocking write returns once the link holds no more than a send buffer, so the loop runs at
 * link speed and the back-channel is read a buffer's worth of data ahead of the wire.
 */
export class Source {
  private readonly params: Scenario['source'];
  /** Rebuilt from the destination's received bitmap on recovery (NextMember only shrinks). */
  unsent: NextMember;
  private policy: PushPolicy;
  private readonly inbox: BackRecord[] = [];
  /** Requests in arrival order as (next, end, fromRange) triples; a single pfn g is (g, g + 1, 0). */
  private readonly queue: number[] = [];
  private queueHead = 0;
  private phase = Phase.PFNS;
  private pfnsAnnounced = 0;
  private idle = false;
  private stalled = false;
  private writeDoneAt = 0;
  private readonly stepKind: number;
  /** Bumped when the connection fails: steps the stopped loop had scheduled are then stale. */
  private loop = 0;
  private preemptCpuFreeAt = 0;
  /** Stats. */
  requestsReceived = 0;
  pagesPushed = 0;
  pagesDemanded = 0;
  zeroPagesSent = 0;
  completeAt = -1;

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly link: Link,
    scenario: Scenario,
    private readonly deliver: (record: StreamRecord, arrival: number) => void,
    private readonly preempt: PreemptPath | null = null,
    private readonly alloc: Alloc = FRESH,
  ) {
    this.params = scenario.source;
    this.unsent = new NextMember(memory.pages, alloc);
    for (let g = 0; g < memory.pages; g++) if (memory.state[g] === PageState.READY) this.unsent.remove(g);
    this.policy = makePolicy(this.params, this.unsent);
    this.stepKind = kernel.register((loop) => {
      if (loop === this.loop) this.step();
    });
  }

  /** Pauses the guest at the source and starts postcopy (time 0 of the run). */
  start(): void {
    this.write({ type: RecordType.POSTCOPY_BEGIN, bytes: RECORD_HEADER_BYTES, pfns: null, count: 0, batched: 0 }, 0);
  }

  /** A back-channel record arrived. */
  receive(record: BackRecord): void {
    this.inbox.push(record);
    if (this.preempt) {
      // QEMU's return-path thread takes the request at once and the preempt thread sends it.
      this.readBackChannel();
      this.servePreempt();
    }
    if (this.idle) {
      this.idle = false;
      this.step();
    }
  }

  /** The connection failed (postcopy-paused): the loop stops until `recover`. */
  pause(): void {
    this.loop++;
    this.idle = false;
    this.stalled = false;
  }

  /** The source process died: besides the loop, its request queue and unread requests are gone. */
  crash(): void {
    this.pause();
    this.inbox.length = 0;
    this.queue.length = 0;
    this.queueHead = 0;
  }

  /**
   * postcopy-recover: every page the destination has not received is unsent again (pages lost in
   * flight are sent again), the push policy starts afresh over that set, old requests are
   * forgotten (the destination asks again), RESUME_ACK goes out and the loop runs again.
   * Returns the pages that will be sent a second time.
   */
  recover(received: Uint8Array): number {
    const old = this.unsent, pages = this.memory.pages;
    this.unsent = new NextMember(pages, this.alloc);
    let resent = 0;
    for (let g = 0; g < pages; g++) {
      if (received[g]) this.unsent.remove(g);
      else if (!old.has(g)) resent++;
    }
    this.policy = makePolicy(this.params, this.unsent);
    this.inbox.length = 0;
    this.queue.length = 0;
    this.queueHead = 0;
    this.write({ type: RecordType.POSTCOPY_RESUME_ACK, bytes: RECORD_HEADER_BYTES, pfns: null, count: 0, batched: 0 }, 0);
    return resent;
  }

  get done(): boolean {
    return this.phase === Phase.DONE;
  }

  private step(): void {
    this.readBackChannel();
    if (this.phase === Phase.DONE) return;
    const total = this.memory.outstandingAtStart;
    if (this.phase === Phase.PFNS) {
      if (this.pfnsAnnounced < total) {
        const n = Math.min(this.params.pfnBatch, total - this.pfnsAnnounced);
        this.pfnsAnnounced += n;
        this.write({ type: RecordType.POSTCOPY_PFNS, bytes: pfnListBytes(n), pfns: null, count: n, batched: 0 }, 0);
      } else {
        this.phase = Phase.PUSH;
        // TRANSITION follows the CPU context records; the guest then resumes at the destination.
        const bytes = RECORD_HEADER_BYTES + this.params.transitionBytes;
        this.write({ type: RecordType.POSTCOPY_TRANSITION, bytes, pfns: null, count: 0, batched: 0 }, 0);
      }
      return;
    }
    this.pushRecord();
  }

  private readBackChannel(): void {
    for (const rec of this.inbox) {
      if (rec.type === RecordType.POSTCOPY_COMPLETE) {
        this.phase = Phase.DONE;
        this.completeAt = this.kernel.now;
        continue;
      }
      this.policy.faulted();
      for (const g of rec.pfns) this.queue.push(g, g + 1, 0);
      for (let i = 0; i < rec.ranges.length; i += 2) this.queue.push(rec.ranges[i]!, rec.ranges[i]! + rec.ranges[i + 1]!, 1);
      this.requestsReceived += rec.pfns.length + rec.ranges.length / 2;
    }
    this.inbox.length = 0;
  }

  /** Moves requested pfns still unsent, in arrival order, into `pfns` (up to its length). */
  private takeRequested(pfns: Int32Array): PageCounts {
    const max = pfns.length;
    let n = 0, batched = 0, zeros = 0;
    const q = this.queue;
    while (n < max && this.queueHead < q.length) {
      const start = q[this.queueHead]!, end = q[this.queueHead + 1]!, fromRange = q[this.queueHead + 2]!;
      let g = this.unsent.next(start);
      for (; g < end && n < max; g = this.unsent.next(g + 1)) {
        pfns[n++] = g;
        this.unsent.remove(g);
        this.policy.requested(g);
        this.pagesDemanded++;
        if (this.sendsAsZero(g)) zeros++;
        else batched += fromRange;
      }
      if (g >= end) this.queueHead += 3;
      else q[this.queueHead] = g;
    }
    if (this.queueHead === q.length) {
      q.length = 0;
      this.queueHead = 0;
    }
    return { n, batched, zeros };
  }

  /** Sends every queued request on the preempt channel now, in records of recordPages. */
  private servePreempt(): void {
    const p = this.preempt!, params = this.params;
    while (this.queueHead < this.queue.length) {
      const pfns = new Int32Array(params.recordPages);
      const counts = this.takeRequested(pfns);
      if (counts.n === 0) break;
      const { record, cpuNs } = this.pageRecord(pfns, counts);
      record.preempt = true;
      // The preempt thread has its own CPU; its records go out one after another.
      const t = Math.max(this.kernel.now, this.preemptCpuFreeAt) + cpuNs;
      this.preemptCpuFreeAt = t;
      p.deliver(record, p.channel.send(t, record.bytes));
    }
  }

  private pushRecord(): void {
    const max = this.params.recordPages;
    const demanded = new Int32Array(max);
    let pfns = demanded;
    // Requested pfns still unsent join the record first, in arrival order.
    const taken = this.takeRequested(demanded);
    let n = taken.n, zeros = taken.zeros;
    // Then background pages, as many as the policy allows (the rest of the record for most).
    const budget = this.policy.backgroundBudget(max - n);
    if (n + budget > max) {
      pfns = new Int32Array(n + budget);
      pfns.set(demanded.subarray(0, n));
    }
    const end = n + budget;
    while (n < end) {
      const g = this.policy.nextBackground();
      if (g < 0) break;
      pfns[n++] = g;
      this.unsent.remove(g);
      this.pagesPushed++;
      if (this.sendsAsZero(g)) zeros++;
    }
    this.policy.backgroundSent(n - (end - budget));
    if (n === 0) {
      this.idle = true;
      return;
    }
    const { record, cpuNs } = this.pageRecord(pfns, { n, batched: taken.batched, zeros });
    this.write(record, cpuNs);
  }

  /**
   * A zero page found by the sender's check travels as its pfn entry only. Postcopy pages go
   * through the migration thread, which checks them whenever detection is on (QEMU).
   */
  private sendsAsZero(gfn: number): boolean {
    return this.params.zeroPageDetection !== 'none' && this.memory.isZero(gfn);
  }

  /**
   * A PAGE_DATA record for the first `n` pfns and the CPU it costs to build: each data page is
   * copied, each zero page scanned (the check reads all of it) and sent without its data.
   */
  private pageRecord(pfns: Int32Array, c: PageCounts): { record: StreamRecord; cpuNs: number } {
    const p = this.params;
    const bytes = pageDataBytes(c.n, this.memory.pageSize, c.zeros);
    this.zeroPagesSent += c.zeros;
    const cpuNs = p.perRecordNs + (c.n - c.zeros) * p.perPageNs + c.zeros * p.zeroCheckNs;
    return { record: { type: RecordType.POSTCOPY_PAGE_DATA, bytes, pfns, count: c.n, batched: c.batched, zeros: c.zeros }, cpuNs };
  }

  /** Builds for `cpuNs`, writes, and loops again when the blocking write returns. */
  private write(record: StreamRecord, cpuNs: number): void {
    const t = this.kernel.now + cpuNs;
    this.deliver(record, this.link.send(t, record.bytes));
    this.writeDoneAt = t;
    if (this.link.windowOpen) this.kernel.at(this.link.writableAt(t), this.stepKind, this.loop);
    else this.stalled = true;
  }

  /** The destination read from the stream: a stalled write may return now. */
  windowUpdate(): void {
    if (!this.stalled || !this.link.windowOpen) return;
    this.stalled = false;
    this.kernel.at(this.link.writableAt(Math.max(this.kernel.now, this.writeDoneAt)), this.stepKind, this.loop);
  }
}
