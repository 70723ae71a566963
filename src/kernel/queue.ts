import { intArg } from '../io/args.ts';
import { FRESH, NO_FLOAT64S, NO_INT32S, type Alloc } from '../memory/arena.ts';

/**
 * Binary min-heap of events on parallel typed arrays, ordered by (time, sequence).
 * No per-event objects: an event is (time ns, kind, argument); `pop()` leaves the
 * popped event in `time`, `kind` and `arg`.
 */
export class EventQueue {
  private t: Float64Array;
  private s: Float64Array;
  private k: Int32Array;
  private a: Float64Array;
  private n = 0;
  private nextSeq = 0;
  /** The last popped event (time and arg start as doubles: see Kernel.now). */
  time = NaN;
  kind = 0;
  arg = NaN;

  /** `alloc`: where the heap's arrays come from (an Arena in sweep and soak workers: no fresh pages a run). */
  constructor(private readonly initialCapacity = 1024, private readonly alloc: Alloc = FRESH) {
    this.time = this.arg = 0;
    intArg('EventQueue.initialCapacity', initialCapacity, 1, 2 ** 24);
    // Empty until the first push grows them to initialCapacity: the growth then has V8 type
    // feedback from every run's first event, not only from a run that outgrew the heap.
    this.t = this.s = this.a = NO_FLOAT64S;
    this.k = NO_INT32S;
  }

  get size(): number {
    return this.n;
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.n > 0 ? this.t[0]! : Infinity;
  }

  push(time: number, kind: number, arg: number): void {
    if (this.n === this.t.length) this.grow();
    const seq = this.nextSeq++;
    let i = this.n++;
    const t = this.t, s = this.s, k = this.k, a = this.a;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = t[p]!;
      // Every queued event has a smaller sequence than this one: a tie in time keeps it below.
      if (pt <= time) break;
      t[i] = pt; s[i] = s[p]!; k[i] = k[p]!; a[i] = a[p]!;
      i = p;
    }
    t[i] = time; s[i] = seq; k[i] = kind; a[i] = arg;
  }

  /** Removes the earliest event into (time, kind, arg); returns false when empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    const t = this.t, s = this.s, k = this.k, a = this.a;
    this.time = t[0]!; this.kind = k[0]!; this.arg = a[0]!;
    const n = --this.n;
    if (n === 0) return true;
    const lt = t[n]!, ls = s[n]!, lk = k[n]!, la = a[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (t[r]! < t[c]! || (t[r]! === t[c]! && s[r]! < s[c]!))) c = r;
      const ct = t[c]!;
      if (lt < ct || (lt === ct && ls < s[c]!)) break;
      t[i] = ct; s[i] = s[c]!; k[i] = k[c]!; a[i] = a[c]!;
      i = c;
    }
    t[i] = lt; s[i] = ls; k[i] = lk; a[i] = la;
    return true;
  }

  private grow(): void {
    const cap = Math.max(this.initialCapacity, this.t.length * 2), al = this.alloc;
    const t = al.float64(cap); t.set(this.t); this.t = t;
    const s = al.float64(cap); s.set(this.s); this.s = s;
    const k = al.int32(cap); k.set(this.k); this.k = k;
    const a = al.float64(cap); a.set(this.a); this.a = a;
  }
}
