import type { Kernel } from '../kernel/kernel.ts';
import type { FaultRing } from '../ring/ring.ts';
import { RecordType } from '../stream/records.ts';
import type { Requests } from './requests.ts';

/**
 * QEMU's `postcopy_ram_fault_thread` (`pager.faultThread`), beside the loading loop: it sleeps in
 * poll() on the uffd, then reads one fault at a time, and unless its page is received sends a
 * REQ_PAGES for it at once (`migrate_send_rp_req_pages`). Each costs a read of the uffd_msg and,
 * when sent, a write on the return path.
 */
export class FaultThread {
  private busy = false;
  /** Writing a request: the request slabs hold it until the write is done. */
  private writing = false;
  private readonly stepKind: number;

  constructor(
    private readonly kernel: Kernel,
    private readonly ring: FaultRing,
    private readonly requests: Requests,
    private readonly wakeNs: number,
    /** A read of one uffd_msg (pager.drainPerRequestNs) and a request's write (pager.faultRecordNs). */
    private readonly readNs: number,
    private readonly writeNs: number,
    /** Books ring request `id` for its missing pages. */
    private readonly book: (id: number) => void,
  ) {
    this.stepKind = kernel.register(() => this.step());
  }

  /** The uffd became readable. */
  kick(): void {
    if (this.busy) return;
    this.busy = true;
    this.kernel.after(this.wakeNs, this.stepKind);
  }

  private step(): void {
    if (this.writing) this.requests.send(RecordType.REQ_PAGES);
    this.writing = false;
    const id = this.ring.take();
    if (id < 0) {
      this.busy = false;
      return;
    }
    this.book(id);
    this.requests.flush(); // a page placed since the fault: UFFDIO_COPY already woke the vCPU
    this.writing = this.requests.faultPending;
    this.kernel.after(this.readNs + (this.writing ? this.writeNs : 0), this.stepKind);
  }
}
