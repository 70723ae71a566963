import { placementOf, type Scenario } from '../scenario/schema.ts';
import { QEMU_FILE_BUF_BYTES, RecordType, type StreamRecord } from '../stream/records.ts';
import type { HostPages } from './host-pages.ts';


/**
 * What loading a record costs the pager's thread: eviction or discards at the switchover, then
 * PAGE_DATA. `hypercall`: the RFC's load call per page. `uffd`: QEMU's listen thread
 * (`ram_load_postcopy`) reads the record from the socket, does its own work per page (pageWorkNs) and
 * places each page with UFFDIO_COPY, a zero page with UFFDIO_ZEROPAGE, a huge host page with one
 * UFFDIO_COPY when its last piece arrives. While it works, unread records fill the socket
 * buffers and TCP flow control holds the source back (the link's buffers).
 */
export class Placement {
  private readonly params: Scenario['pager'];
  private readonly uffd: boolean;

  /** POSTCOPY_TRANSITION's cost at the destination: listen (with pages outstanding) and the device load. */
  private readonly transitionNs: number;

  constructor(scenario: Scenario, private readonly hostPages: HostPages | null, outstanding: boolean) {
    this.params = scenario.pager;
    this.uffd = placementOf(scenario) === 'uffd';
    // QEMU ending a precopy with its return path open: the load waits for VMDESC, held back by
    // Nagle until the destination's delayed ACK of the device state (link.delayedAckNs).
    const vmdescWait = !outstanding && scenario.source.policy === 'qemu' && scenario.migration.mode === 'hybrid';
    this.transitionNs = (outstanding ? scenario.pager.listenNs : 0) + scenario.pager.deviceLoadNs + (vmdescWait ? scenario.link.delayedAckNs : 0);
  }

  /** What the device state and the switch cost the destination before the guest runs (QEMU: pager.listenNs, pager.deviceLoadNs, the VMDESC wait). */
  transitionCost(): number {
    return this.transitionNs;
  }

  /** What making room for the outstanding pages costs: a POSTCOPY_PFNS or RAM_DISCARD record (0 for others). */
  evictionCost(rec: StreamRecord): number {
    const p = this.params;
    // Eviction at the transition: v1 nominates + evicts per pfn; v2 batches populate_evicted.
    if (rec.type === RecordType.POSTCOPY_PFNS) {
      return p.eviction === 'per-pfn'
        ? rec.count * p.evictPerPfnNs
        : Math.ceil(rec.count / p.evictBatchPages) * p.evictBatchCallNs + rec.count * p.evictBatchPerPageNs;
    }
    // THP off over RAM first, then madvise(DONTNEED) per range (`ram_discard_range`): a walk of
    // every page it spans (batched), the pages held (count) freed.
    if (rec.type === RecordType.POSTCOPY_RAM_DISCARD) return p.discardPrepareNs + rec.pushed * p.discardRangeNs + Math.round(rec.batched * p.discardSpanPageNs) + rec.count * p.discardPageNs;
    return 0;
  }

  /** What placing a PAGE_DATA record costs. */
  cost(rec: StreamRecord): number {
    const p = this.params;
    const zeros = rec.zeros, data = rec.count - zeros;
    if (!this.uffd) {
      // A range's pages are loaded with one batched call; a zero page has no data to read or
      // copy, only a zeroed frame to place.
      const singles = data - rec.batched;
      return data * p.recvPerPageNs + singles * p.loadPageNs + zeros * p.zeroLoadNs
        + (rec.batched > 0 ? p.batchLoadCallNs + rec.batched * p.batchLoadPerPageNs : 0);
    }
    // The socket's reads, then the thread's own work on every page.
    const read = Math.ceil(rec.bytes / QEMU_FILE_BUF_BYTES) * p.readCallNs + data * p.recvPerPageNs + rec.count * p.pageWorkNs;
    const huge = this.hostPages;
    if (huge === null) return read + data * p.uffdCopyNs + zeros * p.uffdZeroPageNs;
    // A whole host page, zero or not, is one UFFDIO_COPY from QEMU's staging buffer.
    const perHostPage = p.uffdCopyNs + (huge.pagesPerHostPage - 1) * p.uffdCopyPerPageNs;
    return read + huge.completedBy(rec) * perHostPage;
  }
}

/**
 * Where the loading thread is in a record it places page by page: QEMU's listen thread
 * (`ram_load_postcopy`, one UFFDIO_COPY a page) or the RFC's pager (a load call a page, each
 * page present once `p2m_mem_paging_prep` is done). Page i of n lands at its share of the
 * record's cost, pages in order; the last one with the record. A record read as its bytes come
 * (StreamRecord.gapNs) also waits for each page to arrive: page i lands no earlier than one
 * page's share after its arrival.
 */
export class PlacementFront {
  // Doubles from the start (see Kernel.now): times, and a cost whose share of a page V8 took for
  // an integer division after a run's first records divided evenly.
  private start = NaN;
  private cost = NaN;
  private count = 0;
  private firstAt = NaN;
  private gapNs = NaN;
  /** Pages the record can place: count, unless a cut lost the rest on the wire. */
  private limit = 0;
  /** The record's pages placed so far. */
  placed = 0;
  /** When its next page lands (Infinity: no record in progress). */
  nextAt = Infinity;

  constructor() {
    this.start = this.cost = this.firstAt = this.gapNs = 0;
  }

  begin(now: number, cost: number, rec: StreamRecord): void {
    this.start = now;
    this.cost = cost;
    this.count = rec.count;
    this.firstAt = rec.firstAt;
    this.gapNs = rec.gapNs;
    this.limit = rec.received;
    this.advance(0);
  }

  /** When page i of the record lands. */
  timeOf(i: number): number {
    const t = this.start + Math.ceil((this.cost * (i + 1)) / this.count);
    if (this.gapNs === 0) return t;
    return Math.max(t, arrivalOf(this.firstAt, this.gapNs, i) + Math.ceil(this.cost / this.count));
  }

  /** When the last page lands: the record is done. */
  get endAt(): number {
    return this.timeOf(this.count - 1);
  }

  /** How many of the record's pages (all but the last) have landed by `now`. */
  dueBy(now: number): number {
    let i = this.placed;
    while (i < this.last && this.timeOf(i) <= now) i++;
    return i;
  }

  /** The pages placed one by one: all but the last (placed with the record), and none lost. */
  get last(): number {
    return Math.min(this.count - 1, this.limit);
  }

  /** A cut lost the record's pages from `received` on. */
  lose(received: number): void {
    this.limit = received;
    this.advance(this.placed);
  }

  advance(placed: number): void {
    this.placed = placed;
    this.nextAt = placed < this.last ? this.timeOf(placed) : Infinity;
  }

  /** The record is done: returns how many of its pages were placed before. */
  end(): number {
    const placed = this.placed;
    this.placed = 0;
    this.nextAt = Infinity;
    return placed;
  }
}

/** When page i of a record read as its bytes come arrives (whole ns). */
function arrivalOf(firstAt: number, gapNs: number, i: number): number {
  return Math.ceil(firstAt + i * gapNs);
}

/**
 * A cut at `now`: the record keeps the pages that had arrived by then (all of a record that
 * arrives whole), and never more than an earlier cut left it, for a page lost on the wire never
 * comes (a second cut while the pager still waits on the record counted them again). Returns
 * how many it keeps.
 */
export function cutAt(rec: StreamRecord, now: number): number {
  let n = 0;
  if (rec.gapNs === 0) n = rec.count;
  else while (n < rec.count && arrivalOf(rec.firstAt, rec.gapNs, n) <= now) n++;
  return (rec.received = Math.min(rec.received, n));
}
