import { argCheck, intArg, objArg } from '../io/args.ts';
import { doubled } from '../memory/arena.ts';

/** Ring request kinds: Xen's single-gfn page-in, the range-population fix, and a drop. */
export const enum RequestKind {
  PAGE = 0,
  RANGE = 1,
  DROP = 2,
}

/** gfn + count stays below this: the ring stores both as Int32. */
const INT32_END = 2 ** 31;

/** Producer id of a foreign accessor (the device model or toolstack); vCPUs are 0..n-1. */
export const FOREIGN = -1;
/** `putForeign` result when the ring has no free slot (Xen's -EBUSY). */
export const EBUSY = -1;

export interface Clock {
  readonly now: number;
}

export interface RingOptions {
  /** Slots (Xen: (4096 − 64) / 312 rounded down to a power of two = 8). */
  capacity: number;
  /** vCPUs in the domain, for the black-eye rule. */
  vcpus: number;
  /** Pause a vCPU that leaves fewer free slots than the domain has vCPUs. */
  blackEye: boolean;
  /**
   * No bound at all (userfaultfd's fault queue): slots are added whenever the ring is full, so
   * nobody ever waits for a slot or gets EBUSY; `capacity` is then only the starting size.
   */
  unbounded?: boolean;
}

/** A request as seen from outside (tests, observers); the ring itself stores typed arrays. */
export interface RingRequest {
  id: number;
  kind: RequestKind;
  gfn: number;
  count: number;
  producer: number;
}

/**
 * The bounded paging ring with Xen's vm_event rules. A slot stays claimed from `put` until its
 * response is consumed (`respond`), because Xen counts free requests as
 * RING_SIZE − (req_prod − rsp_cons): the ring holds every request that is not yet answered.
 * - Full ring, guest vCPU: sleeps on the wait queue until a slot frees (`claimGuest` → false).
 * - Full ring, foreign accessor: -EBUSY, nothing is queued; it must retry (`putForeign` → EBUSY).
 * - Wake order after responses: wait-queue sleepers first (FIFO), then black-eye-blocked vCPUs
 *   round-robin from the one after the last woken (vm_event_wake_queued / _wake_blocked).
 */
export class FaultRing {
  /** Slots; grows on demand when the ring is unbounded. */
  capacity: number;
  private kinds: Uint8Array;
  private gfns: Int32Array;
  private counts: Int32Array;
  private producers: Int32Array;
  private putTimes: Float64Array;
  private freeIds: Int32Array;
  private freeTop: number;
  private fifo: Int32Array;
  private head = 0;
  private queuedCount = 0;
  private readonly sleepers: number[] = [];
  private readonly blocked: Uint8Array;
  private blockedCount = 0;
  private lastWoken: number;
  /** Doubles from the start: see Kernel.now. */
  private fullSince = NaN;

  maxOccupancy = 0;
  timeFullNs = NaN;
  ebusy = 0;
  puts = 0;

  constructor(readonly options: RingOptions, private readonly clock: Clock = { now: 0 }) {
    this.fullSince = -1;
    this.timeFullNs = 0;
    objArg('FaultRing.options', options, 'an object { capacity, vcpus, blackEye }');
    const cap = intArg('FaultRing.capacity', options.capacity, 1, 2 ** 24);
    intArg('FaultRing.vcpus', options.vcpus, 0, 2 ** 16);
    argCheck(typeof clock?.now === 'number', 'FaultRing.clock', 'must be an object with a numeric `now` (ns)');
    this.capacity = cap;
    this.kinds = new Uint8Array(cap);
    this.gfns = new Int32Array(cap);
    this.counts = new Int32Array(cap);
    this.producers = new Int32Array(cap);
    this.putTimes = new Float64Array(cap);
    this.freeIds = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.freeIds[i] = cap - 1 - i;
    this.freeTop = cap;
    this.fifo = new Int32Array(cap);
    this.blocked = new Uint8Array(options.vcpus);
    this.lastWoken = options.vcpus - 1;
  }

  /** Unanswered requests: queued plus taken by the pager but not yet responded to. */
  get occupancy(): number {
    return this.capacity - this.freeTop;
  }

  get free(): number {
    return this.freeTop;
  }

  /** Requests put but not yet taken by the pager. */
  get queued(): number {
    return this.queuedCount;
  }

  /** vCPUs asleep on the wait queue, in wake order. */
  get waitQueue(): readonly number[] {
    return this.sleepers;
  }

  isBlocked(vcpu: number): boolean {
    this.vcpu('FaultRing.isBlocked', vcpu);
    return this.blocked[vcpu] === 1;
  }

  /** A vCPU id the domain has; a typed error naming the method otherwise (the message built only then). */
  private vcpu(method: string, v: number): void {
    if (!(v >= 0 && v < this.options.vcpus && v % 1 === 0)) intArg(`${method}.vcpu`, v, 0, this.options.vcpus - 1);
  }

  /**
   * A request's kind, gfn and page count as the ring stores them (Int32 gfns and counts). Every
   * put passes here: the plain comparisons come first, the messages only for a bad argument.
   */
  private request(method: string, kind: RequestKind, gfn: number, count: number): void {
    if (kind >= RequestKind.PAGE && kind <= RequestKind.DROP && kind % 1 === 0 && gfn >= 0 && gfn % 1 === 0 && count >= 1 && count % 1 === 0 && gfn + count <= INT32_END) return;
    argCheck(kind === RequestKind.PAGE || kind === RequestKind.RANGE || kind === RequestKind.DROP, `${method}.kind`, `must be RequestKind PAGE (0), RANGE (1) or DROP (2), got ${kind}`);
    intArg(`${method}.gfn`, gfn, 0, INT32_END - 1);
    intArg(`${method}.count`, count, 1, INT32_END - gfn);
  }

  /** A foreign accessor's page-in request: queued if a slot is free, else EBUSY (not queued). */
  putForeign(kind: RequestKind, gfn: number, count = 1): number {
    this.request('FaultRing.putForeign', kind, gfn, count);
    if (this.freeTop === 0 && this.options.unbounded) this.grow();
    if (this.freeTop === 0) {
      this.ebusy++;
      return EBUSY;
    }
    return this.put(kind, gfn, count, FOREIGN);
  }

  /** A guest vCPU wants a slot: true if one is free, else the vCPU joins the wait queue. */
  claimGuest(vcpu: number): boolean {
    this.vcpu('FaultRing.claimGuest', vcpu);
    if (this.freeTop === 0 && this.options.unbounded) this.grow();
    if (this.freeTop > this.sleepers.length) return true;
    this.sleepers.push(vcpu);
    return false;
  }

  /** A guest vCPU's request after a successful claim (or after being woken from the wait queue). */
  putGuest(vcpu: number, kind: RequestKind, gfn: number, count = 1): number {
    this.vcpu('FaultRing.putGuest', vcpu);
    this.request('FaultRing.putGuest', kind, gfn, count);
    if (this.freeTop === 0) throw new Error(`invariant: vCPU ${vcpu} put on a full ring`);
    const id = this.put(kind, gfn, count, vcpu);
    if (this.options.blackEye && this.freeTop < this.options.vcpus && this.blocked[vcpu] === 0) {
      this.blocked[vcpu] = 1;
      this.blockedCount++;
    }
    return id;
  }

  /** The pager takes the oldest queued request; -1 when none. The slot stays claimed. */
  take(): number {
    if (this.queuedCount === 0) return -1;
    const id = this.fifo[this.head]!;
    // A compare, not `%`: an integer division by a capacity V8 cannot know (~10 ns a request).
    // Its arms hold no load or arithmetic: one first reached in a later run (a sweep's next ring
    // size) would have no V8 type feedback and deoptimise the code compiled without it.
    const h = this.head + 1;
    this.head = h === this.capacity ? 0 : h;
    this.queuedCount--;
    return id;
  }

  /**
   * userfaultfd: a UFFDIO_COPY wakes the threads faulting on its pages, and a fault nobody has
   * read yet leaves the queue unread (`userfaultfd_wake_function` unlinks it). Removes the queued
   * guest page requests for gfns in from..to−1 into `out`, the others keeping their order;
   * returns how many. Their slots stay claimed until responded to.
   */
  withdraw(from: number, to: number, out: number[]): number {
    const fifo = this.fifo, cap = this.capacity, n = this.queuedCount, head = this.head;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const id = fifo[(head + i) % cap]!, g = this.gfns[id]!;
      if (this.producers[id]! >= 0 && this.kinds[id] === RequestKind.PAGE && g >= from && g < to) out.push(id);
      else fifo[(head + kept++) % cap] = id;
    }
    this.queuedCount = kept;
    return n - kept;
  }

  /** The response to a taken request is consumed: its slot is free again. */
  respond(id: number): void {
    if (!(id >= 0 && id < this.capacity && id % 1 === 0)) intArg('FaultRing.respond.id', id, 0, this.capacity - 1);
    if (this.freeTop === 0) this.noteFull(false);
    this.freeIds[this.freeTop++] = id;
    if (this.freeTop > this.capacity) throw new Error('invariant: ring answered more requests than it held');
  }

  /**
   * After responses: wakes wait-queue sleepers while slots are free (each is then expected to
   * `putGuest`), else unblocks black-eye vCPUs round-robin. Calls `woke(vcpu, fromWaitQueue)`.
   */
  wake(woke: (vcpu: number, fromWaitQueue: boolean) => void): void {
    if (this.sleepers.length > 0) {
      let avail = this.freeTop;
      while (avail-- > 0 && this.sleepers.length > 0) woke(this.sleepers.shift()!, true);
      return;
    }
    const n = this.options.vcpus;
    let avail = this.freeTop;
    for (let j = 0, i = this.lastWoken + 1; j < n && this.blockedCount > 0 && avail > 0; j++, i++) {
      const k = i % n;
      if (this.blocked[k] === 1) {
        this.blocked[k] = 0;
        this.blockedCount--;
        avail--;
        this.lastWoken = k;
        woke(k, false);
      }
    }
  }

  kindOf(id: number): RequestKind {
    return this.kinds[id]!;
  }
  gfnOf(id: number): number {
    return this.gfns[id]!;
  }
  countOf(id: number): number {
    return this.counts[id]!;
  }
  producerOf(id: number): number {
    return this.producers[id]!;
  }
  /** When the request was put (ns). */
  putTimeOf(id: number): number {
    return this.putTimes[id]!;
  }

  /** The queued (not yet taken) requests in FIFO order; allocates, for tests and observers. */
  contents(): RingRequest[] {
    const out: RingRequest[] = [];
    for (let i = 0; i < this.queuedCount; i++) {
      const id = this.fifo[(this.head + i) % this.capacity]!;
      out.push(this.describe(id));
    }
    return out;
  }

  describe(id: number): RingRequest {
    return { id, kind: this.kindOf(id), gfn: this.gfnOf(id), count: this.countOf(id), producer: this.producerOf(id) };
  }

  /** Time the ring has been full so far, including a full period still running. */
  timeFull(now: number): number {
    return this.timeFullNs + (this.fullSince >= 0 ? now - this.fullSince : 0);
  }

  /** Doubles the slots (unbounded ring only), keeping queued requests in FIFO order. */
  private grow(): void {
    const old = this.capacity, cap = old * 2;
    this.kinds = doubled(this.kinds);
    this.gfns = doubled(this.gfns);
    this.counts = doubled(this.counts);
    this.producers = doubled(this.producers);
    this.putTimes = doubled(this.putTimes);
    const fifo = new Int32Array(cap);
    for (let i = 0; i < this.queuedCount; i++) fifo[i] = this.fifo[(this.head + i) % old]!;
    this.fifo = fifo;
    this.head = 0;
    const freeIds = new Int32Array(cap);
    freeIds.set(this.freeIds.subarray(0, this.freeTop));
    for (let id = cap - 1; id >= old; id--) freeIds[this.freeTop++] = id;
    this.freeIds = freeIds;
    this.capacity = cap;
  }

  private put(kind: RequestKind, gfn: number, count: number, producer: number): number {
    const id = this.freeIds[--this.freeTop]!;
    this.kinds[id] = kind;
    this.gfns[id] = gfn;
    this.counts[id] = count;
    this.producers[id] = producer;
    this.putTimes[id] = this.clock.now;
    const at = this.head + this.queuedCount, cap = this.capacity;
    this.fifo[at - (at < cap ? 0 : cap)] = id;
    this.queuedCount++;
    this.puts++;
    const occ = this.capacity - this.freeTop;
    // Stored on every put: a branch taken only in a run's first puts gets no V8 type feedback and
    // deoptimises the next run's code when taken there.
    this.maxOccupancy = Math.max(this.maxOccupancy, occ);
    if (this.freeTop === 0 && !this.options.unbounded) this.noteFull(true);
    return id;
  }

  private noteFull(full: boolean): void {
    const now = this.clock.now;
    if (full) this.fullSince = now;
    else if (this.fullSince >= 0) {
      this.timeFullNs += now - this.fullSince;
      this.fullSince = -1;
    }
  }
}
