import { describe, expect, it } from 'vitest';
import { Kernel } from '../src/kernel/kernel.ts';
import { GuestMemory } from '../src/memory/guest-memory.ts';
import { FRESH } from '../src/memory/arena.ts';
import { FaultThread } from '../src/pager/fault-thread.ts';
import { PageWiseLoad } from '../src/pager/page-wise.ts';
import { Requests } from '../src/pager/requests.ts';
import type { PagerHost } from '../src/pager/pager.ts';
import { FaultRing, RequestKind } from '../src/ring/ring.ts';
import { RecordType, streamRecord, type BackRecord } from '../src/stream/records.ts';

/** 16 pages, all outstanding; a host that logs what the requests do. */
function setup(notifyNs = 2000, perHostPage = 1) {
  const kernel = new Kernel();
  const memory = new GuestMemory(16, 4096, { forEachRange: (fn) => fn(0, 16) });
  const ring = new FaultRing({ capacity: 4, vcpus: 1, blackEye: false }, kernel);
  const log = { sent: [] as string[], answered: [] as [number, number][], settled: [] as number[], freed: 0 };
  const host: PagerHost = {
    consumed: () => {},
    sendBack: (r: BackRecord) => {
      const pfns = Array.from(r.pfns.subarray(r.pfnAt, r.pfnAt + r.pfnCount));
      const ranges = Array.from(r.ranges.subarray(r.rangeAt, r.rangeAt + 2 * r.rangeCount));
      log.sent.push(`${r.type === RecordType.REQ_PAGES ? 'REQ_PAGES' : r.type === RecordType.POSTCOPY_FAULT ? 'POSTCOPY_FAULT' : r.type} pfns ${pfns.join(',')} ranges ${ranges.join(',')}`);
    },
    settled: (g) => log.settled.push(g),
    settledRange: () => {},
    pfnsRead: () => {},
    answered: (id) => log.answered.push([kernel.now, id]),
    slotsFreed: () => log.freed++,
    transition: () => {},
    spinsOn: () => false,
    spinning: () => false,
  };
  const requests = new Requests(kernel, memory, ring, notifyNs, host, FRESH, null, perHostPage);
  const run = () => { while (kernel.step()); };
  return { kernel, memory, ring, requests, log, run, host };
}

describe('Requests', () => {
  it('asks for the whole host pages a request lies in (soak seed 807409)', () => {
    // Huge host pages of 4 guest pages: a page request on 5 asks for 4..7, a range 6..9 for the
    // host pages it spans, 4..11 (8..11 newly); the page request waits on its page alone.
    const { ring, requests, log } = setup(2000, 4);
    expect(requests.book(ring.putForeign(RequestKind.PAGE, 5), false)).toBe(5);
    ring.take();
    expect(requests.book(ring.putForeign(RequestKind.RANGE, 6, 4), false)).toBe(-1);
    ring.take();
    expect([requests.live, requests.pfnsRequested]).toEqual([5, 8]);
    requests.send(RecordType.POSTCOPY_FAULT);
    expect(log.sent).toEqual(['POSTCOPY_FAULT pfns  ranges 4,4,4,8']);
  });

  it('books a page request, sends its pfn once, and answers it with one notify after the page lands', () => {
    const { memory, ring, requests, log, run } = setup();
    const a = ring.putForeign(RequestKind.PAGE, 5);
    const b = ring.putForeign(RequestKind.PAGE, 5);
    expect(requests.book(ring.take(), false)).toBe(5);
    expect(requests.book(ring.take(), false)).toBe(5);
    expect([requests.live, requests.pfnsRequested, requests.faultPending]).toEqual([2, 1, true]);
    requests.send(RecordType.POSTCOPY_FAULT);
    expect(log.sent).toEqual(['POSTCOPY_FAULT pfns 5 ranges ']);
    expect(requests.faultPending).toBe(false);
    expect(memory.load(5)).toBe(true);
    requests.placed(5, false);
    expect(requests.live).toBe(0);
    requests.flush();
    run();
    // Both responses consumed at the notify's end (2 µs), newest wait on the page first.
    expect(log.answered).toEqual([[2000, b], [2000, a]]);
    expect([log.freed, ring.occupancy]).toEqual([1, 0]);
    expect(requests.faultRecords).toBe(1);
  });

  it('answers a range request when its last missing page lands, and asks only for pages not yet requested', () => {
    const { memory, ring, requests, log, run } = setup();
    memory.load(3);
    ring.putForeign(RequestKind.PAGE, 4);
    requests.book(ring.take(), false);
    const r = ring.putForeign(RequestKind.RANGE, 2, 4); // 2..5: 3 is in, 4 asked for already
    expect(requests.book(ring.take(), false)).toBe(-1);
    expect(requests.pfnsRequested).toBe(3);
    requests.send(RecordType.POSTCOPY_FAULT);
    expect(log.sent).toEqual(['POSTCOPY_FAULT pfns 4 ranges 2,4']);
    for (const g of [2, 4]) {
      memory.load(g);
      requests.placed(g, false);
    }
    requests.flush();
    run();
    expect(log.answered.map(([, id]) => id)).not.toContain(r);
    memory.loadRun(5, 6);
    requests.placedRange(5, 6, false);
    requests.flush();
    run();
    expect(log.answered.map(([, id]) => id).at(-1)).toBe(r);
    expect(requests.live).toBe(0);
  });

  it('answers at once a request whose page is in, and a drop after dropping the page', () => {
    const { memory, ring, requests, log, run } = setup();
    memory.load(1);
    const a = ring.putForeign(RequestKind.PAGE, 1);
    const d = ring.putForeign(RequestKind.DROP, 7);
    expect(requests.book(ring.take(), false)).toBe(-1);
    expect(requests.book(ring.take(), false)).toBe(-1);
    expect([requests.pfnsRequested, requests.faultPending, log.settled]).toEqual([0, false, [7]]);
    expect(memory.isSettled(7)).toBe(true);
    requests.flush();
    run();
    expect(log.answered.map(([, id]) => id)).toEqual([a, d]);
  });

  it('with `again` (QEMU) asks again for a page already requested; without, it does not', () => {
    const { ring, requests, log } = setup();
    for (const again of [false, false, true]) {
      ring.putForeign(RequestKind.PAGE, 9);
      requests.book(ring.take(), again);
      requests.send(RecordType.REQ_PAGES);
    }
    expect(log.sent).toEqual(['REQ_PAGES pfns 9 ranges ', 'REQ_PAGES pfns 9 ranges ']);
    expect([requests.pfnsRequested, requests.faultRecords]).toEqual([1, 2]);
  });

  it('a landed page answers the faults on it still queued on the ring (uffd), not the others', () => {
    const { memory, ring, requests, log, run } = setup();
    const first = ring.putGuest(0, RequestKind.PAGE, 3);
    const other = ring.putGuest(0, RequestKind.PAGE, 8);
    memory.load(3);
    requests.placed(3, true);
    expect(ring.queued).toBe(1);
    requests.flush();
    run();
    expect(log.answered.map(([, id]) => id)).toEqual([first]);
    expect(ring.take()).toBe(other);
  });

  it('asks again for every page still requested after a resume', () => {
    const { memory, ring, requests, log } = setup();
    for (const g of [6, 2]) {
      ring.putForeign(RequestKind.PAGE, g);
      requests.book(ring.take(), false);
    }
    memory.load(6);
    expect(requests.askAgain()).toBe(1);
    expect(log.sent).toEqual(['POSTCOPY_FAULT pfns 2 ranges ']);
  });
});

describe('PageWiseLoad', () => {
  it('places a record page by page: a waited-for page gets an event at its time, the others when someone looks', () => {
    const { kernel, memory, ring, requests, log, host } = setup();
    const placed: [number, number][] = [];
    const load = new PageWiseLoad(kernel, true, requests, host, (g) => {
      placed.push([kernel.now, g]);
      memory.load(g);
      requests.placed(g, false);
    });
    requests.book(ring.putForeign(RequestKind.PAGE, 9) >= 0 ? ring.take() : -1, false);
    // Pages 7..10 at 100 ns each from 0: page 9 lands at 300, the last with the record (end()).
    load.begin(streamRecord(RecordType.POSTCOPY_PAGE_DATA, 16_448, 4, new Int32Array([7, 8, 9, 10])), 400);
    kernel.runUntil(350);
    expect(placed).toEqual([[300, 7], [300, 8], [300, 9]]);
    // Its request is answered at the page (pager.wakeAt page): the notify, 2 µs later.
    kernel.runUntil(2_300);
    expect(log.answered.map(([t]) => t)).toEqual([2_300]);
    expect(load.end()).toBe(3);
    load.placeDue(); // nothing in progress: nothing to place
    expect(placed).toHaveLength(3);
  });
});

describe('request latency (Requests.latency)', () => {
  it('runs from a page\'s first request to its placement, once a page; not for a dropped page or a range', () => {
    const { kernel, memory, ring, requests } = setup();
    const book = (kind: RequestKind, g: number, at: number, count = 1) => {
      kernel.runUntil(at);
      requests.book(ring.putForeign(kind, g, count) >= 0 ? ring.take() : -1, true);
    };
    book(RequestKind.PAGE, 5, 1_000);
    book(RequestKind.PAGE, 5, 2_000); // asked again: the first request counts
    book(RequestKind.PAGE, 6, 2_500);
    book(RequestKind.RANGE, 8, 3_000, 4);
    kernel.runUntil(10_000);
    memory.load(5);
    requests.placed(5, false);
    memory.loadRun(8, 12);
    requests.placedRange(8, 12, false);
    requests.flush();
    kernel.runUntil(20_000); // the responses free their slots
    // Page 6 is dropped (ballooned out) while asked for: no placement, no latency.
    book(RequestKind.DROP, 6, 20_000);
    expect(memory.isSettled(6)).toBe(true);
    expect(requests.latency.count).toBe(1);
    expect(requests.latency.max).toBe(9_000);
  });
});

describe('FaultThread (QEMU\'s postcopy_ram_fault_thread)', () => {
  it('wakes once, then reads one fault at a time and writes a REQ_PAGES for each, asked for before or not', () => {
    const { kernel, ring, requests, log, run } = setup();
    const booked: [number, number][] = [];
    // wake-up 9 µs, a uffd_msg read 1.7 µs, a request's write 5 µs.
    const thread = new FaultThread(kernel, ring, requests, 9_000, 1_700, 5_000, (id) => {
      booked.push([kernel.now, id]);
      requests.book(id, true);
    });
    const a = ring.putForeign(RequestKind.PAGE, 3);
    const b = ring.putForeign(RequestKind.PAGE, 3);
    const c = ring.putForeign(RequestKind.PAGE, 7);
    thread.kick();
    thread.kick(); // already awake: no second wake-up
    run();
    // a at 9 µs, then one read and one write each: QEMU asks again for a page not received yet.
    expect(booked).toEqual([[9_000, a], [15_700, b], [22_400, c]]);
    expect(log.sent).toEqual(['REQ_PAGES pfns 3 ranges ', 'REQ_PAGES pfns 3 ranges ', 'REQ_PAGES pfns 7 ranges ']);
    expect(kernel.now).toBe(29_100);
    // Idle again: the next fault costs a wake-up.
    const d = ring.putForeign(RequestKind.PAGE, 9);
    thread.kick();
    run();
    expect(booked.at(-1)).toEqual([29_100 + 9_000, d]);
  });
});
