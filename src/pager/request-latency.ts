import type { Alloc } from '../memory/arena.ts';
import { NextMember } from '../memory/skip-list.ts';
import { LatencyLog } from '../metrics/latency.ts';

/** An empty slot of the table. */
const EMPTY = -1;

/**
 * Request latency: from a page's first request to its placement, as QEMU's trace of the pages
 * it asked for measures it (`postcopy_page_req_add` when the fault thread first asks for a page
 * not received, `postcopy_page_req_del` at its `UFFDIO_COPY`); the real runs' fault latency
 * (docs/real-qemu.md). The first request of each page asked for singly: a range request waits
 * as one (the fault latency has it). Pages asked for and not placed yet are few, so their times
 * live in a small open-addressing table; a bit per page (allocated at the first request) lets a
 * placed run of pages skip the table a word at a time.
 */
export class RequestLatency {
  readonly log: LatencyLog;
  private bits: NextMember | null = null;
  /** Linear probing, a power-of-two capacity, at most half full. */
  private keys = new Int32Array(16).fill(EMPTY);
  private times = new Float64Array(16);
  private size = 0;
  /** 32 − log2(capacity): Fibonacci hashing keeps the product's top bits. */
  private shift = 28;

  constructor(private readonly pages: number, private readonly alloc: Alloc) {
    this.log = new LatencyLog(alloc);
  }

  /** Page g was asked for at `now`; a page already asked for keeps its first time. */
  asked(g: number, now: number): void {
    const bits = this.bits ?? (this.bits = new NextMember(this.pages, this.alloc, false));
    if (bits.has(g)) return;
    bits.add(g);
    if (2 * (this.size + 1) > this.keys.length) this.grow();
    this.put(g, now);
  }

  /** Page g was placed at `now`: its latency, if it was asked for. */
  placed(g: number, now: number): void {
    if (this.size > 0 && this.bits!.has(g)) this.log.add(now - this.take(g));
  }

  /** placed() for each page of from..to−1. */
  placedRange(from: number, to: number, now: number): void {
    if (this.size === 0) return;
    const bits = this.bits!;
    for (let g = bits.firstIn(from, to); g < to; g = bits.firstIn(g + 1, to)) this.log.add(now - this.take(g));
  }

  /** Page g settled without a placement (dropped): no latency. */
  forget(g: number): void {
    if (this.size > 0 && this.bits!.has(g)) this.take(g);
  }

  /** The home slot of g: consecutive pages spread over the table. */
  private slot(g: number): number {
    return Math.imul(g, 0x9e3779b1) >>> this.shift;
  }

  private put(g: number, t: number): void {
    const keys = this.keys, mask = keys.length - 1;
    let i = this.slot(g);
    while (keys[i] !== EMPTY) i = (i + 1) & mask;
    keys[i] = g;
    this.times[i] = t;
    this.size++;
  }

  /** Removes g (present) from the table and the bits; returns its time. */
  private take(g: number): number {
    const keys = this.keys, times = this.times, mask = keys.length - 1;
    let i = this.slot(g);
    while (keys[i] !== g) i = (i + 1) & mask;
    const t = times[i]!;
    // Backward-shift deletion: later entries of the probe run move into the hole.
    for (let j = (i + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.slot(keys[j]!);
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = keys[j]!;
        times[i] = times[j]!;
        i = j;
      }
    }
    keys[i] = EMPTY;
    this.size--;
    this.bits!.remove(g);
    return t;
  }

  private grow(): void {
    const keys = this.keys, times = this.times;
    this.keys = new Int32Array(keys.length * 2).fill(EMPTY);
    this.times = new Float64Array(keys.length * 2);
    this.shift--;
    this.size = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) this.put(keys[i]!, times[i]!);
  }
}
