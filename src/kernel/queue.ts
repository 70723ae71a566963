import { intArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import { FRESH, NO_FLOAT64S, NO_INT32S, type Alloc } from '../memory/arena.ts';

/**
 * The events of one in-order kind not in the heap yet, oldest first: (time, sequence, arg)
 * triples in a power-of-two ring from `head`.
 */
class Chain {
  buf: Float64Array = NO_FLOAT64S;
  head = 0;
  size = 0;
  /** Whether the kind's earliest event is in the heap: the ring waits behind it. */
  inHeap = false;
  /** The time of the kind's latest event, in the heap or the ring (a double: see Kernel.now). */
  last = NaN;

  constructor(readonly kind: number) {
    this.last = 0;
  }
}

/** Kinds are below this; a chain's event in the heap has its chain's index + 1 above it. */
export const KINDS = 1 << 16;

/** Out of line: push() stays small enough for V8 to inline where it is called. */
function badKind(kind: number): void {
  intArg('EventQueue.push.kind', kind, 0, KINDS - 1);
}

function notInOrder(kind: number): never {
  throw new PostcopyEmuError('EventQueue.pushInOrder.kind', `kind ${kind} was not marked inOrder`);
}

/**
 * Binary min-heap of events on parallel typed arrays, ordered by (time, sequence).
 * No per-event objects: an event is (time ns, kind 0..65535, argument); `pop()` leaves the
 * popped event in `time`, `kind` and `arg`. Events pushed with `pushInOrder` (a connection's
 * arrivals, sixteen of which may be on their way) keep only their kind's earliest in the heap
 * and the rest in a ring beside it, each with the sequence number it got when pushed: the pop
 * order is the same, the heap shallower.
 */
export class EventQueue {
  private t: Float64Array;
  private s: Float64Array;
  private k: Int32Array;
  private a: Float64Array;
  private n = 0;
  private nextSeq = 0;
  /** Per kind: its index in `chains`, or −1 (kinds past the end: −1 too). */
  private chainOf = NO_INT32S;
  private readonly chains: Chain[] = [];
  /** Events in the chains' rings. */
  private waiting = 0;
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
    return this.n + this.waiting;
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.n > 0 ? this.t[0]! : Infinity;
  }

  push(time: number, kind: number, arg: number): void {
    if (kind >>> 16 !== 0) badKind(kind);
    this.insert(time, this.nextSeq++, kind, arg);
  }

  /**
   * Events of `kind` mostly come in time order (a connection's arrivals): pushInOrder keeps
   * them in a ring beside the heap. Called before the run (Kernel.register), so that the hot
   * path never builds a ring: a path first taken in optimised code deoptimises it.
   */
  inOrder(kind: number): void {
    intArg('EventQueue.inOrder.kind', kind, 0, KINDS - 1);
    if (kind >= this.chainOf.length) {
      const c = new Int32Array(kind + 1).fill(-1);
      c.set(this.chainOf);
      this.chainOf = c;
    }
    if (this.chainOf[kind]! < 0) this.chainOf[kind] = this.chains.push(new Chain(kind)) - 1;
  }

  /**
   * push() for a kind marked `inOrder`: while its earliest is in the heap, a later one waits in
   * the kind's ring; one earlier than the kind's latest goes into the heap as push() puts it.
   */
  pushInOrder(time: number, kind: number, arg: number): void {
    const ci = kind < this.chainOf.length ? this.chainOf[kind]! : -1;
    if (ci < 0) notInOrder(kind);
    const seq = this.nextSeq++, c = this.chains[ci]!;
    if (!c.inHeap) {
      c.inHeap = true;
      c.last = time;
      this.insert(time, seq, kind + (ci + 1) * KINDS, arg);
    } else if (time >= c.last) this.append(c, time, seq, arg);
    else this.insert(time, seq, kind, arg);
  }

  private insert(time: number, seq: number, kind: number, arg: number): void {
    if (this.n === this.t.length) this.grow();
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
    const kind = this.k[0]!;
    this.time = this.t[0]!; this.arg = this.a[0]!;
    if (kind >= KINDS) return this.popChained(kind);
    this.kind = kind;
    const n = --this.n;
    if (n > 0) this.siftDown(n, this.t[n]!, this.s[n]!, this.k[n]!, this.a[n]!);
    return true;
  }

  /** pop() of a chain's event: the kind's next event, if any, takes the top's place (one sift down, no push). */
  private popChained(kind: number): boolean {
    const c = this.chains[(kind >>> 16) - 1]!;
    this.kind = c.kind;
    if (c.size > 0) {
      const b = c.buf, j = c.head * 3;
      c.head = (c.head + 1) & (b.length / 3 - 1);
      c.size--;
      this.waiting--;
      this.siftDown(this.n, b[j]!, b[j + 1]!, kind, b[j + 2]!);
    } else {
      c.inHeap = false;
      const n = --this.n;
      if (n > 0) this.siftDown(n, this.t[n]!, this.s[n]!, this.k[n]!, this.a[n]!);
    }
    return true;
  }

  /** Puts event (lt, ls, lk, la) in the top's place of a heap of n and sifts it down. */
  private siftDown(n: number, lt: number, ls: number, lk: number, la: number): void {
    const t = this.t, s = this.s, k = this.k, a = this.a;
    let i = 0;
    for (;;) {
      let ch = 2 * i + 1;
      if (ch >= n) break;
      const r = ch + 1;
      if (r < n && (t[r]! < t[ch]! || (t[r]! === t[ch]! && s[r]! < s[ch]!))) ch = r;
      const ct = t[ch]!;
      if (lt < ct || (lt === ct && ls < s[ch]!)) break;
      t[i] = ct; s[i] = s[ch]!; k[i] = k[ch]!; a[i] = a[ch]!;
      i = ch;
    }
    t[i] = lt; s[i] = ls; k[i] = lk; a[i] = la;
  }

  /** Puts an in-order kind's event in its ring, behind the ones already there. */
  private append(c: Chain, time: number, seq: number, arg: number): void {
    let b = c.buf;
    if (c.size * 3 === b.length) {
      const nb = this.alloc.float64(Math.max(48, b.length * 2));
      // Oldest first from 0: the part from head to the end, then the part that wrapped.
      nb.set(b.subarray(c.head * 3));
      nb.set(b.subarray(0, c.head * 3), b.length - c.head * 3);
      c.buf = b = nb;
      c.head = 0;
    }
    const j = ((c.head + c.size) & (b.length / 3 - 1)) * 3;
    b[j] = time; b[j + 1] = seq; b[j + 2] = arg;
    c.size++;
    this.waiting++;
    c.last = time;
  }

  private grow(): void {
    const cap = Math.max(this.initialCapacity, this.t.length * 2), al = this.alloc;
    const t = al.float64(cap); t.set(this.t); this.t = t;
    const s = al.float64(cap); s.set(this.s); this.s = s;
    const k = al.int32(cap); k.set(this.k); this.k = k;
    const a = al.float64(cap); a.set(this.a); this.a = a;
  }
}
