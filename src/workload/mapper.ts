import { argCheck } from '../io/args.ts';
import { checkWiring } from '../io/wiring.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Rng } from '../kernel/rng.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { EBUSY, FaultRing, RequestKind } from '../ring/ring.ts';
import type { Range, Scenario } from '../scenario/schema.ts';

/** What the mapper tells the rest of the destination. */
export interface MapperHost {
  /** Request `id` was put on the ring. */
  put(id: number): void;
  /** Requests were put on the ring: the pager's event channel fires. */
  kick(): void;
  /** Every mapping succeeded: the domain build can finish and unpause the guest. */
  mapped(): void;
  /** Pages the pager has placed by now become present (a record placed page by page). */
  placeDue(): void;
}

/**
 * The device model mapping guest memory while the domain is created (xenforeignmemory_map).
 * A map call walks every gfn still failing; each paged-out gfn not yet being paged in gets a
 * page-in request if the ring has a slot (else -EBUSY: nothing queued); every missing gfn fails
 * with ENOENT. The walk goes on past a failed gfn (Linux's `do_remap_pfn` skips a failed frame
 * and maps the next), so a slot the pager frees while it walks goes to the next paged-out gfn it
 * reaches. The ring counts one EBUSY each time the walk finds it full (the gfns it then passes
 * until a slot frees fail alike: counting each would cost a scan of the walk's span). The library
 * then sleeps usleep(100) — plus the kernel's timer slack — and re-issues each run of consecutive
 * failed gfns. With `request: range` each such run of paged-out gfns is one range-population
 * request instead of one request per gfn.
 */
export class Mapper {
  private readonly params: Scenario['mapper'];
  private readonly mappings: Mappings;
  private index = -1;
  private lo = 0;
  private hi = 0;
  private missing = 0;
  private firstCall = true;
  /**
   * The call in progress walks gfns walkFrom..hi−1 from walkStart to walkEnd, at an even pace
   * over that span (a retry walks only the failed gfns: the pace is theirs, spread over the span).
   * Its first requests go on the ring at the call's start; once it is `cut` by an EBUSY, freed
   * slots go to the paged-out gfns past the point the walk has reached.
   */
  private walkFrom = 0;
  /** No page of the mapping below this one is pending (pages only settle): where a retry's walk starts. */
  private pendingFrom = 0;
  private walkStart = 0;
  private walkEnd = 0;
  private cut = false;
  private readonly callKind: number;
  private readonly finishKind: number;
  /** Stats. */
  calls = 0;
  retries = 0;
  requests = 0;
  /** A double from the start: see Kernel.now. */
  doneAt = NaN;

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly ring: FaultRing,
    scenario: Scenario,
    rng: Rng,
    private readonly host: MapperHost,
  ) {
    checkWiring('Mapper', kernel, memory, scenario, host, ['ring', ring, FaultRing, 'the FaultRing its requests go to']);
    argCheck(rng instanceof Rng, 'Mapper.rng', 'must be the Rng its mapping order is drawn from');
    this.doneAt = -1;
    this.params = scenario.mapper;
    this.mappings = planMappings(scenario, rng);
    this.callKind = kernel.register(() => this.call());
    this.finishKind = kernel.register(() => this.nextMapping());
  }

  get active(): boolean {
    return this.index >= 0 && this.doneAt < 0;
  }

  /** The device model starts mapping (after POSTCOPY_TRANSITION). */
  start(): void {
    this.nextMapping();
  }

  /** A page was loaded or dropped; keeps the count of gfns the current mapping still misses. */
  settled(gfn: number): void {
    if (gfn >= this.lo && gfn < this.hi) this.missing--;
  }

  /** settled() for every page of from..to−1. */
  settledRange(from: number, to: number): void {
    const n = Math.min(to, this.hi) - Math.max(from, this.lo);
    if (n > 0) this.missing -= n;
  }

  private nextMapping(): void {
    this.index++;
    if (this.index >= this.mappings.start.length) {
      this.doneAt = this.kernel.now;
      this.host.mapped();
      return;
    }
    this.lo = this.mappings.start[this.index]!;
    this.hi = this.lo + this.mappings.count[this.index]!;
    this.missing = this.memory.pendingIn(this.lo, this.hi);
    this.pendingFrom = this.lo;
    this.firstCall = true;
    this.call();
  }

  private call(): void {
    const p = this.params;
    this.calls++;
    // The walk sees every page the pager has made present by now.
    this.host.placeDue();
    // The first call walks the whole mapping; a retry re-issues only the failed gfns.
    const walked = this.firstCall ? this.hi - this.lo : this.missing;
    const cost = p.mapCallNs + walked * p.perGfnNs;
    this.cut = false;
    if (this.missing === 0) {
      this.firstCall = false;
      this.kernel.after(cost, this.finishKind);
      return;
    }
    const now = this.kernel.now;
    if (!this.firstCall) this.pendingFrom = this.memory.firstPendingIn(this.pendingFrom, this.hi);
    this.walkFrom = this.pendingFrom;
    this.walkStart = now + p.mapCallNs;
    this.walkEnd = now + cost;
    this.firstCall = false;
    // Every page nobody has asked for yet is pending, so none lies before pendingFrom: the walk's
    // search starts there, not at lo (a 2 GiB mapping's search from lo crossed hundreds of
    // summary words a retry, the settled ones).
    if (this.putRequests(this.pendingFrom) > 0) this.host.kick();
    this.retries++;
    // usleep's hrtimer fires at its hard expiry, expires + the thread's timer slack, unless
    // another timer interrupt comes first (schedule_hrtimeout_range: "expires+delta").
    this.kernel.after(cost + p.retryNs + p.timerSlackNs, this.callKind);
  }

  /** Responses freed ring slots: a walk cut by EBUSY goes on from where it has got to. */
  slotsFreed(): void {
    if (!this.cut || this.ring.free === 0) return;
    const at = this.walkReached(this.kernel.now);
    if (at >= this.hi) return;
    this.cut = false;
    if (this.putRequests(at) > 0) this.host.kick();
  }

  /** The gfn the call's walk has reached at `now`. */
  private walkReached(now: number): number {
    if (now <= this.walkStart) return this.walkFrom;
    if (now >= this.walkEnd) return this.hi;
    return this.walkFrom + Math.floor(((now - this.walkStart) * (this.hi - this.walkFrom)) / (this.walkEnd - this.walkStart));
  }

  /** Hypervisor side of the walk: one request per paged-out gfn (or run) from gfn `from` until the ring is full. */
  private putRequests(from: number): number {
    const mem = this.memory, ring = this.ring, hi = this.hi;
    let put = 0;
    for (let g = mem.unasked.next(from); g < hi; g = mem.unasked.next(g)) {
      const range = this.params.request === 'range';
      const count = range ? mem.unasked.nextGap(g, hi) - g : 1;
      const id = ring.putForeign(range ? RequestKind.RANGE : RequestKind.PAGE, g, count);
      if (id === EBUSY) {
        this.cut = true;
        break;
      }
      if (range) mem.markPagingInRange(g, g + count);
      else mem.markPagingIn(g);
      this.host.put(id);
      put++;
    }
    this.requests += put;
    return put;
  }
}

/** The mappings the device model performs, in order: mapping i is count[i] pages from start[i]. */
interface Mappings {
  start: Int32Array;
  count: Int32Array;
}

function planMappings(scenario: Scenario, rng: Rng): Mappings {
  const m = scenario.mapper.mapping;
  const pages = scenario.memory.pages;
  let list: Range[];
  switch (m.kind) {
    case 'none':
      return { start: new Int32Array(0), count: new Int32Array(0) };
    case 'all':
      list = [{ start: 0, count: pages }];
      break;
    case 'ranges':
      list = m.ranges.map((r) => ({ ...r }));
      break;
    case 'buckets': {
      // Typed arrays rather than an object per bucket: a storm maps tens of thousands.
      const buckets = Math.floor(pages / m.bucketPages);
      const order = new Int32Array(buckets);
      for (let i = 0; i < buckets; i++) order[i] = i;
      const start = new Int32Array(m.count);
      for (let i = 0; i < m.count; i++) {
        // Partial Fisher-Yates: m.count distinct buckets, each equally likely.
        const j = scenario.mapper.order === 'random' ? rng.int(i, buckets - 1) : i;
        const b = order[j]!;
        order[j] = order[i]!;
        order[i] = b;
        start[i] = b * m.bucketPages;
      }
      return { start, count: new Int32Array(m.count).fill(m.bucketPages) };
    }
  }
  if (scenario.mapper.order === 'random') {
    for (let i = list.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      const r = list[j]!;
      list[j] = list[i]!;
      list[i] = r;
    }
  }
  return { start: Int32Array.from(list, (r) => r.start), count: Int32Array.from(list, (r) => r.count) };
}
