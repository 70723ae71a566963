import type { Kernel } from '../kernel/kernel.ts';
import { pfnOf, type StreamRecord } from '../stream/records.ts';
import type { PagerHost } from './pager.ts';
import { PlacementFront, cutAt } from './placement.ts';
import type { Requests } from './requests.ts';

/**
 * The record a loading thread places page by page: QEMU's listen thread (`ram_load_postcopy`,
 * one UFFDIO_COPY a page) or the RFC's pager (a load call a page). Each page is present when the
 * thread reaches it (PlacementFront), applied when someone looks (placeDue): a vCPU's slice, a
 * fault being read, a map call, the received map; a page someone waits for gets an event at its
 * time.
 */
export class PageWiseLoad {
  readonly front = new PlacementFront();
  private record: StreamRecord | null = null;
  private readonly dueKind: number;

  constructor(
    private readonly kernel: Kernel,
    /** pager.wakeAt page: a placed page answers its waits at once. */
    private readonly wakesPerPage: boolean,
    private readonly requests: Requests,
    private readonly host: PagerHost,
    /** Makes a page accessible and answers whoever waits for it. */
    private readonly place: (g: number) => void,
  ) {
    this.dueKind = kernel.register(() => this.placeDue());
  }

  /** The thread starts placing `rec`, at `cost` for the whole record. */
  begin(rec: StreamRecord, cost: number): void {
    const front = this.front;
    this.record = rec;
    front.begin(this.kernel.now, cost, rec);
    const last = front.last;
    if (this.wakesPerPage && this.requests.live > 0) {
      for (let i = 0; i < last; i++) if (this.requests.waitedOn(pfnOf(rec, i))) this.dueAt(i);
    } else if (this.host.spinning()) for (let i = 0; i < last; i++) if (this.host.spinsOn(pfnOf(rec, i))) this.dueAt(i);
  }

  /** The record is done (or none was in progress): how many of its pages were placed before. */
  end(): number {
    this.record = null;
    return this.front.end();
  }

  /** Places the pages of the record in progress that the thread has reached by now. */
  placeDue(): void {
    const front = this.front;
    if (this.kernel.now < front.nextAt) return;
    const rec = this.record!, to = front.dueBy(this.kernel.now);
    for (let i = front.placed; i < to; i++) this.place(pfnOf(rec, i));
    front.advance(to);
    if (this.wakesPerPage) this.requests.flush();
  }

  /**
   * A vCPU faulted on gfn: if the record in progress holds it, its UFFDIO_COPY will wake the vCPU
   * even before the fault thread reads the fault (answerQueued), and under Xen a vCPU spinning on
   * it runs once it is present, so an event at its time.
   */
  faulted(gfn: number): void {
    if (this.front.nextAt !== Infinity && (this.wakesPerPage || this.host.spinsOn(gfn))) this.wakeWhenPlaced(gfn);
  }

  /** A one-page wait was booked on gfn (−1: none): a page of the record in progress gets an event at its time. */
  booked(gfn: number): void {
    if (gfn >= 0 && this.wakesPerPage && this.front.nextAt !== Infinity) this.wakeWhenPlaced(gfn);
  }

  /** The connection failed at `now`: a record read as it comes loses its pages still on the wire. */
  lose(now: number): void {
    this.placeDue();
    const rec = this.record;
    if (rec !== null && rec.gapNs > 0) this.front.lose(cutAt(rec, now));
  }

  private wakeWhenPlaced(gfn: number): void {
    const rec = this.record!, front = this.front;
    for (let i = front.placed, last = front.last; i < last; i++) {
      if (pfnOf(rec, i) === gfn) return this.dueAt(i);
    }
  }

  /** An event when page i of the record in progress lands. */
  private dueAt(i: number): void {
    this.kernel.at(this.front.timeOf(i), this.dueKind);
  }
}
