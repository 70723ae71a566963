import type { Kernel } from '../kernel/kernel.ts';
import type { Rng } from '../kernel/rng.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { normalizeRanges, type DmaSpec } from './dma.ts';

/** How often a running device's DMA is applied in bulk (pages written between looks). */
const TICK_NS = 1_000_000;

/** What the DMA engine asks of the core: a page request through the pager's ring. */
export interface IopfHost {
  /** Asks for page g: a ring id, −1 when the ring is full (EBUSY), −2 when g is already on its way. */
  request(g: number): number;
  /** Pages the pager has placed by now become present (a record placed page by page). */
  placeDue(): void;
}

/**
 * A device whose DMA can fault through the IOMMU (PCIe ATS/PRI; Linux's IOMMUFD fault queue),
 * running at the destination during postcopy — what no hypervisor does today (docs/devices.md).
 * Its writes land in its buffers at `bytesPerSec`; a write to a page that has not arrived parks
 * the device's queue until the page does, while page requests for the next missing pages go out
 * ahead, as many as the PRI credits allow (one more bounded queue, drained by the same pager).
 * The stall is reported like vCPU blocktime.
 */
export class IopfDma {
  /** Time the device's queue stood parked on a missing page, ns. */
  stallNs = 0;
  /** PRI page requests put on the ring. */
  requests = 0;
  /** Pages written at the destination. */
  writes = 0;
  private readonly lo: Int32Array;
  private readonly n: Int32Array;
  private readonly pages: number;
  private readonly kind: number;
  /** Requests out (≤ credits). */
  private readonly asked = new Set<number>();
  private cursor = 0;
  private carry = 0;
  private last = -1;
  private parkedOn = -1;
  private parkedSince = 0;
  private scheduled = false;
  /** Buffer pages not settled yet: at 0 the DMA can no longer fault, and is not modelled further. */
  private unsettled = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly host: IopfHost,
    private readonly spec: DmaSpec,
    private readonly credits: number,
    private readonly rng: Rng,
  ) {
    const b = normalizeRanges(spec.buffers ?? spec.region);
    this.lo = Int32Array.from(b, (r) => r.start);
    this.n = Int32Array.from(b, (r) => r.count);
    this.pages = b.reduce((s, r) => s + r.count, 0);
    this.kind = kernel.register(() => {
      this.scheduled = false;
      this.run();
    });
  }

  /** The device runs at the destination from now (the guest resumed). */
  start(): void {
    for (let i = 0; i < this.pages; i++) if (!this.memory.isSettled(this.pageAt(i))) this.unsettled++;
    this.last = this.kernel.now;
    if (this.unsettled > 0) this.wake(this.kernel.now);
  }

  private inBuffers(g: number): boolean {
    for (let r = 0; r < this.lo.length; r++) if (g >= this.lo[r]! && g < this.lo[r]! + this.n[r]!) return true;
    return false;
  }

  /** The n-th page of the buffers in write order. */
  private pageAt(i: number): number {
    for (let r = 0; r < this.lo.length; r++) {
      if (i < this.n[r]!) return this.lo[r]! + i;
      i -= this.n[r]!;
    }
    return -1;
  }

  private next(): number {
    return this.spec.pattern === 'sequential' ? this.pageAt(this.cursor) : this.pageAt(this.rng.int(0, this.pages - 1));
  }

  private wake(t: number): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.kernel.at(t, this.kind);
  }

  /** Applies the writes due since the last look, up to a missing page. */
  private run(): void {
    this.host.placeDue();
    const now = this.kernel.now, mem = this.memory;
    if (this.parkedOn >= 0) return this.ask(this.parkedOn);
    const bytes = this.carry + ((now - this.last) * this.spec.bytesPerSec) / 1e9;
    let due = Math.floor(bytes / mem.pageSize);
    this.carry = bytes - due * mem.pageSize;
    this.last = now;
    for (; due > 0; due--) {
      const g = this.next();
      if (!mem.isSettled(g)) return this.park(g);
      // A dropped page holds nothing to write over.
      if (mem.isReady(g)) {
        mem.write(g);
        this.writes++;
      }
      if (this.spec.pattern === 'sequential') this.cursor = (this.cursor + 1) % this.pages;
    }
    // Once every buffer page is here the DMA can no longer fault: nothing left to model.
    if (this.unsettled > 0) this.wake(now + TICK_NS);
  }

  /** The queue parks on g; requests go out for g and the next missing pages, as credits allow. */
  private park(g: number): void {
    this.parkedOn = g;
    this.parkedSince = this.kernel.now;
    this.carry = 0;
    this.ask(g);
    if (this.spec.pattern !== 'sequential') return;
    for (let i = 1, c = this.cursor; i < this.pages && this.asked.size < this.credits; i++) {
      const h = this.pageAt((c + i) % this.pages);
      if (!this.memory.isSettled(h)) this.ask(h);
    }
  }

  private ask(g: number): void {
    if (this.asked.has(g) || this.asked.size >= this.credits) return;
    const id = this.host.request(g);
    // EBUSY: the ring is full; the parked page is asked for again a tick later.
    if (id === -1) {
      if (g === this.parkedOn) this.wake(this.kernel.now + TICK_NS);
      return;
    }
    this.asked.add(g);
    if (id >= 0) this.requests++;
  }

  /** Page g arrived (or was dropped): its credit returns; the parked queue goes on. */
  settled(g: number): void {
    if (this.last >= 0 && this.inBuffers(g)) this.unsettled--;
    this.asked.delete(g);
    if (g !== this.parkedOn) return;
    const now = this.kernel.now;
    this.stallNs += now - this.parkedSince;
    this.parkedOn = -1;
    this.last = now;
    this.wake(now);
  }

  /** The page the queue waits for, or −1. */
  get parked(): number {
    return this.parkedOn;
  }
}
