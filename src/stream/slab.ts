import { FRESH, NO_INT32S, type Alloc } from '../memory/arena.ts';

/**
 * Append-only pfn storage shared by the records one writer builds: a record keeps (data, at,
 * count) into it instead of an array of its own, so building a record allocates no array.
 * The pfns pushed since the last `take` are the record being built. When `data` is full a fresh
 * array takes over (the record being built is copied along); records already taken keep the
 * old one, which nothing writes again until their reader released every one of them.
 * A record that is one ascending run (`takenRun`, StreamRecord.run) has its first pfn stored, the
 * others only if single pushes put them there: pushRun leaves them out while the pending pfns stay
 * one run, and writes them when a push breaks it. A background scan's records are runs over the
 * guest's every page, whose stores were most of the source's work on a record (docs/benchmark.md).
 */
export class PfnSlab {
  /**
   * Allocated by the first push, 64 pfns, then doubled at each renewal up to `size`: every run's
   * first pushes take the renewal path, several times (V8 gives a function its type feedback only
   * after its first few calls). Taken first when a full array had to grow, after the optimiser
   * had compiled the callers, it deoptimised four of them in a storm's first run.
   */
  data: Int32Array = NO_INT32S;
  /** The next fresh array's length (at most `size`). */
  private grown: number;
  private start = 0;
  private end = 0;
  /** One past the last pfn pushed while the pending pfns are one ascending run; −1 once they are not. */
  private runEnd = -1;
  /** The pending pfns after the first may be missing (a run pushRun continued): `broken` stores them. */
  private partial = false;
  /** The record `take` ended was one ascending run of pfns (of which only the first is sure to be stored). */
  takenRun = false;
  /** Pfns of `data`'s records not released yet (their reader may still read them). */
  private unreleased = 0;
  /** The same for arrays `data` used to be; weak, as records lost in flight are never released. */
  private readonly retired = new WeakMap<Int32Array, number>();
  /** A retired array whose records were all released: the next renew takes it (no fresh memory to fault in). */
  private spare: Int32Array | null = null;

  /** `alloc`: where its arrays come from (an Arena reuses them run after run). */
  constructor(private readonly alloc: Alloc = FRESH, private readonly size = 1 << 14) {
    this.grown = Math.min(64, size);
  }

  /** Pfns pushed since the last `take`. */
  get pending(): number {
    return this.end - this.start;
  }

  push(gfn: number): void {
    if (this.end === this.data.length) this.renew(1);
    if (this.end === this.start || gfn === this.runEnd) this.runEnd = gfn + 1;
    else this.broken();
    this.data[this.end++] = gfn;
  }

  /** Pushes from, from+1, …, from+count−1. */
  pushRun(from: number, count: number): void {
    if (this.end + count > this.data.length) this.renew(count);
    const data = this.data, end = this.end;
    this.end = end + count;
    if (end === this.start || from === this.runEnd) {
      // Still one run: its first pfn says where the rest are.
      if (end === this.start) data[end] = from;
      this.runEnd = from + count;
      this.partial = true;
      return;
    }
    this.broken();
    for (let i = 0; i < count; i++) data[end + i] = from + i;
  }

  /** The pending pfns stop being one run: the ones a pushRun left out are stored now. */
  private broken(): void {
    this.runEnd = -1;
    if (!this.partial) return;
    this.partial = false;
    const data = this.data, start = this.start, first = data[start]!;
    for (let i = start + 1; i < this.end; i++) data[i] = first + (i - start);
  }

  /** Ends the record being built: where its pfns start in `data` (read `data` after this call). */
  take(): number {
    const at = this.start;
    this.partial = false;
    this.takenRun = this.end > at && this.runEnd >= 0;
    this.unreleased += this.end - at;
    this.start = this.end;
    return at;
  }

  /** A record's reader is done with its `count` pfns in `data` (optional: an unreleased array is left to the GC). */
  release(data: Int32Array, count: number): void {
    if (data === this.data) this.unreleased -= count;
    else {
      const left = this.retired.get(data)! - count;
      if (left > 0) this.retired.set(data, left);
      else if (data.length === this.size) {
        this.retired.delete(data);
        this.spare = data;
      }
    }
  }

  /** A new array for the pending pfns and `extra` more (twice that, at least `size`). */
  private renew(extra: number): void {
    const keep = this.end - this.start, need = keep + extra;
    // Sized for the pending pfns alone, a run longer than `size` (a range request in records of
    // up to 65,536 pages) never fitted, and pushRun renewed for ever.
    const spare = need * 2 <= this.size ? this.spare : null;
    const data = spare ?? this.alloc.int32(Math.max(this.grown, need * 2));
    this.grown = Math.min(this.size, this.grown * 2);
    if (spare !== null) this.spare = null;
    data.set(this.data.subarray(this.start, this.end));
    if (this.unreleased > 0) this.retired.set(this.data, this.unreleased);
    else if (this.data.length === this.size) this.spare = this.data;
    this.unreleased = 0;
    this.data = data;
    this.start = 0;
    this.end = keep;
  }
}
