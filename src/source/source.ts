import { checkWiring } from '../io/wiring.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Link } from '../link/link.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import { NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import { IntQueue } from '../kernel/int-queue.ts';
import {
  QEMU_FILE_BUF_BYTES, RECORD_HEADER_BYTES, RecordType, discardBytes, pageDataBytes, pfnListBytes, streamRecord, type BackRecord, type StreamRecord,
} from '../stream/records.ts';
import { PfnSlab } from '../stream/slab.ts';
import { makePolicy } from './make-policy.ts';
import { RateLimit } from './rate-limit.ts';
import type { PushPolicy } from './policy.ts';
import type { PreemptChannel } from '../link/preempt.ts';
import type { Precopy } from '../precopy/precopy.ts';
import type { DirtyClear } from '../precopy/dirty-clear.ts';

/**
 * QEMU's switchover (`ram_postcopy_send_discard_bitmap`): instead of a list of every outstanding
 * page, discard commands for the runs of the dirty bitmap; the destination holds `populated` of
 * their pages (sent before and dirtied since). `bytes` 0: precopy already wrote the commands.
 */
export interface DiscardPlan {
  ranges: number;
  /** The pages the ranges span, and those of them the destination holds. */
  span: number;
  populated: number;
  bytes: number;
}

/**
 * QEMU's discard ranges are the runs of the dirty bitmap at the switchover (the outstanding set).
 * In postcopy mode every outstanding page was sent by the precopy `memory.outstanding` stands
 * for, unless it is `all` (postcopy from the start: none was); after a modelled precopy, the
 * precopy knows, and it already wrote the commands unless its policy is Xen's.
 */
export function discardPlan(s: Scenario, memory: GuestMemory, pre: Precopy | null): DiscardPlan {
  if (pre !== null) {
    const bytes = s.precopy.policy === 'xen' ? discardBytes(pre.discardRanges) : 0;
    return { ranges: pre.discardRanges, span: pre.discardSpan, populated: pre.discardedPages, bytes };
  }
  const set = memory.unasked;
  let ranges = 0;
  for (let g = set.next(0); g < set.size; g = set.next(set.nextGap(g))) ranges++;
  return { ranges, span: memory.outstandingAtStart, populated: s.memory.outstanding.kind === 'all' ? 0 : memory.outstandingAtStart, bytes: discardBytes(ranges) };
}

/** Where the source's main-stream records go. */
export interface SourceHost {
  /** `record` goes on the wire and arrives at `arrival`. */
  deliver(record: StreamRecord, arrival: number): void;
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
  /** QEMU ≥ 8.1's preempt: the return-path thread sends requested pages itself (preempt.sender). */
  private readonly urgentByReturnPath: boolean;
  /** The delayed ACK that releases held switchover commands; −1: nothing is held (not QEMU, or nothing outstanding). */
  private readonly holdAckNs: number;
  /** Rebuilt from the destination's received bitmap on recovery (NextMember only shrinks). */
  unsent: NextMember;
  private policy: PushPolicy;
  /** Back-channel records not read yet: inbox[0..inboxLength) (filled: one elements kind in every run). */
  private readonly inbox: (BackRecord | null)[] = new Array<BackRecord | null>(16).fill(null);
  private inboxLength = 0;
  /** Requests in arrival order as (next, end, fromRange) triples; a single pfn g is (g, g + 1, 0). */
  private readonly queue = new IntQueue();
  /** Where the pfns of the records being built go. */
  private readonly slab: PfnSlab;
  /** Of the pages the last takeRequested took: non-zero ones from range requests, zero ones. */
  private takenBatched = 0;
  private takenZeros = 0;
  private phase = Phase.PFNS;
  private pfnsAnnounced = 0;
  private discardSent = false;
  private idle = false;
  private readonly limit: RateLimit | null;
  private stalled = false;
  /** Recovering: MIG_CMD_POSTCOPY_RESUME sent, RESUME_ACK not read yet (no page goes out). */
  private awaitingAck = false;
  /** A double from the start, as preemptCpuFreeAt and completeAt: see Kernel.now. */
  private writeDoneAt = NaN;
  private readonly stepKind: number;
  /**
   * QEMU's switchover commands under Nagle (its main channel keeps it on): the last write before
   * the stop left a small segment the destination has not acknowledged (it delays its ACKs,
   * answering on the return path), so the commands wait in the socket until QEMU's next buffer
   * fills a segment (32 KiB more) or the delayed ACK comes (link.delayedAckNs); what is written
   * meanwhile waits with them. null: nothing held.
   */
  private held: StreamRecord[] | null = null;
  private heldBytes = 0;
  private readonly holdKind: number;
  /** Bumped when the connection fails: steps the stopped loop had scheduled are then stale. */
  private loop = 0;
  private preemptCpuFreeAt = NaN;
  /** Stats. */
  requestsReceived = 0;
  pagesPushed = 0;
  pagesDemanded = 0;
  zeroPagesSent = 0;
  completeAt = NaN;
  /** Heard when COMPLETE has been read: at once when idle, else when the loop next reads (after a rate-limit sleep). */
  onDone: () => void = () => {};

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly link: Link,
    scenario: Scenario,
    private readonly host: SourceHost,
    private readonly preempt: PreemptPath | null = null,
    private readonly alloc: Alloc = FRESH,
    /** null: the RFC's POSTCOPY_PFNS list. */
    private readonly discard: DiscardPlan | null = null,
    /** QEMU's lazy clear of the dirty log, left by precopy (null: not modelled). */
    private readonly clear: DirtyClear | null = null,
  ) {
    checkWiring('Source', kernel, memory, scenario, host, ['link', link, Link, 'the stream\'s Link']);
    this.writeDoneAt = this.preemptCpuFreeAt = 0;
    this.completeAt = -1;
    this.params = scenario.source;
    this.urgentByReturnPath = preempt !== null && scenario.preempt.sender === 'return-path';
    // Built before the run: the pages not READY are exactly the outstanding ones.
    this.unsent = NextMember.copyOf(memory.unasked, alloc);
    this.slab = new PfnSlab(alloc);
    this.policy = makePolicy(this.params, this.unsent);
    this.stepKind = kernel.register((loop) => {
      if (loop === this.loop) this.step();
    });
    this.holdKind = kernel.register((loop) => {
      if (loop === this.loop) this.releaseHeld(this.kernel.now);
    });
    // Only a switch to postcopy sends them: a precopy that completes ends on its own stream.
    this.holdAckNs = this.params.policy === 'qemu' && memory.outstandingAtStart > 0 ? scenario.link.delayedAckNs : -1;
    this.limit = this.params.maxPostcopyBandwidth > 0 ? new RateLimit(this.params.maxPostcopyBandwidth) : null;
  }

  /** Pauses the guest at the source and starts postcopy (time 0 of the run). */
  start(): void {
    if (this.holdAckNs >= 0) {
      this.held = [];
      this.heldBytes = 0;
      this.kernel.at(this.kernel.now + this.holdAckNs, this.holdKind, this.loop);
    }
    this.write(streamRecord(RecordType.POSTCOPY_BEGIN, RECORD_HEADER_BYTES, 0), 0);
  }

  /** A back-channel record arrived. */
  receive(record: BackRecord): void {
    this.inbox[this.inboxLength++] = record;
    if (this.urgentByReturnPath) {
      // QEMU 8.1+'s return-path thread takes the request and sends its pages itself (`ram_save_host_page_urgent`).
      this.readBackChannel();
      this.servePreempt();
    }
    if (this.idle) {
      this.idle = false;
      this.step();
    }
  }

  /** The connection failed (postcopy-paused): the loop stops until `recover`; what the socket held is gone. */
  pause(): void {
    this.loop++;
    this.held = null;
    this.idle = false;
    this.stalled = false;
  }

  /** The source process died: besides the loop, its request queue and unread requests are gone. */
  crash(): void {
    this.pause();
    this.inboxLength = 0;
    this.queue.clear();
  }

  /**
   * postcopy-recover: every page the destination has not received is unsent again (pages lost in
   * flight are sent again), the push policy starts afresh over that set, old requests are
   * forgotten (the destination asks again), and MIG_CMD_POSTCOPY_RESUME goes out; the loop runs
   * again at RESUME_ACK (`postcopy_resume_handshake`). Returns the pages that will be sent a
   * second time.
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
    this.inboxLength = 0;
    this.queue.clear();
    this.write(streamRecord(RecordType.POSTCOPY_RESUME, RECORD_HEADER_BYTES, 0), 0);
    this.loop++; // the step write() scheduled waits for RESUME_ACK
    this.awaitingAck = true;
    return resent;
  }

  /** RESUME_ACK read: the migration thread sends again (a write still blocked resumes with the window). */
  resumeAcked(): void {
    this.awaitingAck = false;
    if (!this.stalled) this.kernel.at(this.link.writableAt(Math.max(this.kernel.now, this.writeDoneAt)), this.stepKind, this.loop);
  }

  get done(): boolean {
    return this.phase === Phase.DONE;
  }

  private step(): void {
    this.readBackChannel();
    if (this.phase === Phase.DONE) return;
    const total = this.memory.outstandingAtStart;
    if (this.phase === Phase.PFNS) {
      const d = this.discard;
      if (d !== null && d.ranges > 0 && !this.discardSent) {
        // One record for every discard command: they go out back to back before the package.
        this.discardSent = true;
        this.write(streamRecord(RecordType.POSTCOPY_RAM_DISCARD, d.bytes, d.populated, null, 0, d.span, 0, d.ranges), 0);
      } else if (d === null && this.pfnsAnnounced < total) {
        const n = Math.min(this.params.pfnBatch, total - this.pfnsAnnounced);
        this.pfnsAnnounced += n;
        this.write(streamRecord(RecordType.POSTCOPY_PFNS, pfnListBytes(n), n), 0);
      } else {
        this.phase = Phase.PUSH;
        // TRANSITION follows the CPU context records, saved first (source.deviceSaveNs); the
        // guest then resumes at the destination.
        const bytes = RECORD_HEADER_BYTES + this.params.transitionBytes;
        this.write(streamRecord(RecordType.POSTCOPY_TRANSITION, bytes, 0), this.params.deviceSaveNs);
      }
      return;
    }
    this.pushRecord();
  }

  private readBackChannel(): void {
    const inbox = this.inbox, q = this.queue;
    for (let i = 0; i < this.inboxLength; i++) {
      const rec = inbox[i]!;
      if (rec.type === RecordType.POSTCOPY_COMPLETE) {
        this.phase = Phase.DONE;
        this.completeAt = this.kernel.now;
        this.onDone();
        continue;
      }
      if (rec.type === RecordType.LAZY_XFER_NEXT) {
        this.policy.pulled?.();
        continue;
      }
      this.requestsReceived += rec.pfnCount + rec.rangeCount;
      if (this.policy.ignoresRequests) continue;
      const pfns = rec.pfns, ranges = rec.ranges;
      // The last page the record asks for: its last pfn, else the end of its last range.
      const r = rec.rangeAt + 2 * (rec.rangeCount - 1);
      this.policy.faulted(rec.pfnCount > 0 ? pfns[rec.pfnAt + rec.pfnCount - 1]! : rec.rangeCount > 0 ? ranges[r]! + ranges[r + 1]! - 1 : -1);
      for (let j = rec.pfnAt, end = j + rec.pfnCount; j < end; j++) {
        const g = pfns[j]!;
        q.push3(g, g + 1, 0);
      }
      for (let j = rec.rangeAt, end = j + 2 * rec.rangeCount; j < end; j += 2) {
        q.push3(ranges[j]!, ranges[j]! + ranges[j + 1]!, 1);
      }
    }
    this.inboxLength = 0;
  }

  /**
   * Moves requested pfns still unsent, in arrival order, into the slab's record (up to `max`);
   * returns how many, with their counts in takenBatched and takenZeros. The policy hears of each
   * (the scan moves to it) unless `preempt`: QEMU 8.0+'s return-path thread sends a requested
   * host page with a PSS of its own (`ram_save_host_page_urgent`), the migration thread's scan
   * never sees it.
   */
  private takeRequested(max: number, preempt = false): number {
    const q = this.queue, unsent = this.unsent, slab = this.slab, policy = this.policy;
    // A zero page found by the sender's check travels as its pfn entry only. Postcopy pages go
    // through the migration thread, which checks them whenever detection is on (QEMU).
    const zero = this.params.zeroPageDetection !== 'none' ? this.memory.zero : null;
    let n = 0, batched = 0, zeros = 0;
    while (n < max && q.size > 0) {
      const start = q.get(0), end = q.get(1), fromRange = q.get(2);
      if (end === start + 1) {
        // A page request (a storm's every one): its page alone, without a run's searches.
        if (unsent.has(start)) {
          slab.pushRun(start, 1);
          unsent.remove(start);
          if (!preempt) policy.requested(start);
          const z = zero !== null && zero.has(start) ? 1 : 0;
          zeros += z;
          batched += (1 - z) * fromRange;
          n++;
        }
        q.drop(3);
        continue;
      }
      let g = unsent.next(start);
      // A run of unsent pfns at a time: a range request's pages mostly are one.
      while (g < end && n < max) {
        const stop = unsent.nextGap(g, Math.min(end, g + max - n));
        slab.pushRun(g, stop - g);
        unsent.removeRange(g, stop);
        if (!preempt) for (let p = g; p < stop; p++) policy.requested(p);
        const z = zero === null ? 0 : zero.countIn(g, stop);
        zeros += z;
        batched += (stop - g - z) * fromRange;
        n += stop - g;
        g = unsent.next(stop);
      }
      if (g >= end) q.drop(3);
      else q.set(0, g);
    }
    this.pagesDemanded += n;
    this.takenBatched = batched;
    this.takenZeros = zeros;
    return n;
  }

  /**
   * Sends every queued request on the preempt channel now, in records of recordPages: by the
   * return-path thread (QEMU 8.1+), or by the migration thread (`byMigrationThread`, QEMU 7.1–8.0),
   * whose scan moves to each requested page and whose own CPU builds the records.
   */
  private servePreempt(byMigrationThread = false): void {
    const p = this.preempt!, params = this.params;
    while (this.queue.size > 0) {
      const n = this.takeRequested(params.recordPages, !byMigrationThread);
      if (n === 0) break;
      const zeros = this.takenZeros;
      const record = this.pageRecord(n, this.takenBatched, zeros);
      record.preempt = true;
      // Not held back by the limit, but counted in its budget: QEMU 8.1+ compares the bytes of
      // every channel (`migration_transferred_bytes`) against it; 7.2 only the main channel's.
      if (!byMigrationThread) this.limit?.add(record.bytes);
      // The preempt thread has its own CPU; its records go out one after another.
      const t = Math.max(this.kernel.now, byMigrationThread ? this.writeDoneAt : this.preemptCpuFreeAt) + this.buildNs(n, zeros) + this.clearNs(record);
      if (byMigrationThread) this.writeDoneAt = t;
      else this.preemptCpuFreeAt = t;
      p.deliver(record, p.channel.send(t, record.bytes));
    }
  }

  private pushRecord(): void {
    const max = this.params.recordPages;
    // Over budget the running ram_save_iterate goes on only while `postcopy_has_request`
    // (get_queued_page first); then migration_rate_limit sleeps to the window's end. A request
    // posts the urgent semaphore and wakes it, but qemu_savevm_state_iterate returns at once
    // while over budget, so requests arriving in the sleep wait for the window (QEMU 7.2).
    const limited = this.limit !== null && this.limit.exceeded(this.kernel.now);
    // QEMU 7.1–8.0's preempt: the migration thread sends requested pages first, on the preempt
    // channel; its main-stream record is built after them.
    let lead = 0;
    if (this.preempt !== null && !this.urgentByReturnPath) {
      this.servePreempt(true);
      lead = Math.max(0, this.writeDoneAt - this.kernel.now);
      if (limited) {
        this.kernel.at(Math.max(this.limit!.windowEnd, this.writeDoneAt), this.stepKind, this.loop);
        return;
      }
    }
    // Requested pfns still unsent join the record first, in arrival order.
    let n = this.takeRequested(max);
    const batched = this.takenBatched;
    let zeros = this.takenZeros;
    if (limited) {
      if (n > 0) this.writePages(this.pageRecord(n, batched, zeros), n, zeros);
      else this.kernel.at(this.limit!.windowEnd, this.stepKind, this.loop);
      return;
    }
    // Then background pages, as many as the policy allows (the rest of the record for most).
    const budget = this.policy.backgroundBudget(max - n);
    const end = n + budget, policy = this.policy, slab = this.slab, unsent = this.unsent;
    // Looked up once per record: this loop runs once per page of the guest.
    const zero = this.params.zeroPageDetection !== 'none' ? this.memory.zero : null;
    if (zero === null && policy.takeBackground !== undefined) n += policy.takeBackground(slab, budget);
    else while (n < end) {
      const g = policy.nextBackground();
      if (g < 0) break;
      slab.push(g);
      n++;
      unsent.remove(g);
      if (zero !== null && zero.has(g)) zeros++;
    }
    const pushed = n - (end - budget);
    this.pagesPushed += pushed;
    this.policy.backgroundSent(pushed);
    if (n === 0) {
      this.idle = true;
      return;
    }
    const record = this.pageRecord(n, batched, zeros);
    record.pushed = pushed;
    this.writePages(record, n, zeros, lead);
  }

  /** Writes a page record, counting it against the rate limit, built after `leadNs` of other work. */
  private writePages(record: StreamRecord, n: number, zeros: number, leadNs = 0): void {
    this.limit?.add(record.bytes);
    this.write(record, leadNs + this.buildNs(n, zeros) + this.clearNs(record));
  }

  /** The dirty-log clears due before the record's pages go (QEMU's migration thread, per 1 GiB chunk). */
  private clearNs(record: StreamRecord): number {
    const clear = this.clear, pfns = record.pfns!, at = record.at;
    if (clear === null) return 0;
    return record.run ? clear.sendRange(pfns[at]!, pfns[at]! + record.count) : clear.sendPages(pfns, at, record.count);
  }

  /** A PAGE_DATA record for the `n` pfns just put in the slab, of which `zeros` are zero pages. */
  private pageRecord(n: number, batched: number, zeros: number): StreamRecord {
    const slab = this.slab, at = slab.take();
    this.zeroPagesSent += zeros;
    return streamRecord(RecordType.POSTCOPY_PAGE_DATA, pageDataBytes(n, this.memory.pageSize, zeros), n, slab.data, at, batched, zeros, 0, slab.takenRun);
  }

  /** The destination is done with a record's pfns: the slab may write over them. */
  release(record: StreamRecord): void {
    this.slab.release(record.pfns!, record.count);
  }

  /** The CPU a record of n pages costs to build: each data page is copied, each zero page scanned (the check reads all of it). */
  private buildNs(n: number, zeros: number): number {
    const p = this.params;
    return p.perRecordNs + (n - zeros) * p.perPageNs + zeros * p.zeroCheckNs;
  }

  /** Builds for `cpuNs`, writes, and loops again when the blocking write returns. */
  private write(record: StreamRecord, cpuNs: number): void {
    const t = this.kernel.now + cpuNs;
    const held = this.held;
    if (held === null) this.host.deliver(record, this.link.send(t, record.bytes));
    else {
      held.push(record);
      this.heldBytes += record.bytes;
      if (this.heldBytes >= QEMU_FILE_BUF_BYTES) this.releaseHeld(t);
    }
    this.writeDoneAt = t;
    if (this.link.windowOpen) this.kernel.at(this.link.writableAt(t), this.stepKind, this.loop);
    else this.stalled = true;
  }

  /** The held records go on the wire at `t`, in order. */
  private releaseHeld(t: number): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    for (const r of held) this.host.deliver(r, this.link.send(t, r.bytes));
  }

  /** The destination read from the stream: a stalled write may return now. */
  windowUpdate(): void {
    if (!this.stalled || !this.link.windowOpen) return;
    this.stalled = false;
    if (this.awaitingAck) return; // resumeAcked runs the loop
    this.kernel.at(this.link.writableAt(Math.max(this.kernel.now, this.writeDoneAt)), this.stepKind, this.loop);
  }
}
