/**
 * The live software pager's fault ring (docs/live.md): a bounded multi-producer, single-consumer
 * queue of gfns in one SharedArrayBuffer. vCPU worker threads put faulting gfns on it; the pager
 * (the destination's main thread) takes them off. A vCPU whose put finds the ring full blocks
 * (Atomics.wait on the take counter) until the pager frees a slot: the bounded ring's rule.
 *
 * Layout, one Int32 per word: a header of HEADER words, then `capacity` slots. Producers serialise
 * on a futex-style lock word (a put holds it for a few stores); the single consumer needs no lock:
 * it reads PUT, reads the slots below it, then advances TAKE. Every shared access is an Atomics
 * operation (sequentially consistent), so a slot written before PUT is advanced is seen by a
 * consumer that reads the new PUT. The counters only grow: one fault per page at most, so they
 * stay far below 2^31 for any guest memory.pages allows.
 */

/** Words of the header. */
export const RING = {
  /** 0 free, 1 held by a producer. */
  LOCK: 0,
  /** Gfns ever put (the producers' counter). */
  PUT: 1,
  /** Gfns ever taken (the consumer's counter); a full producer waits on it. */
  TAKE: 2,
  /** The most gfns the ring has held at once. */
  MAX_OCCUPANCY: 3,
  /** Puts that found the ring full and waited. */
  FULL_WAITS: 4,
  /** 1: the run failed; blocked vCPUs give up. */
  ABORT: 5,
  CAPACITY: 6,
} as const;

const HEADER = 8;

/** The capacity an unbounded ring (userfaultfd queues every fault) gets. */
export const UNBOUNDED_CAPACITY = 65_536;

/** A ring of `capacity` slots in a new SharedArrayBuffer. */
export function createRing(capacity: number): Int32Array {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > UNBOUNDED_CAPACITY) {
    throw new RangeError(`ring capacity ${capacity}: must be an integer in [1, ${UNBOUNDED_CAPACITY}]`);
  }
  const ring = new Int32Array(new SharedArrayBuffer((HEADER + capacity) * 4));
  ring[RING.CAPACITY] = capacity;
  return ring;
}

export const ringCapacity = (ring: Int32Array): number => Atomics.load(ring, RING.CAPACITY);

/** Takes the futex-style lock word `words[at]` (0 free, 1 held), sleeping while another thread holds it. */
export function lockWord(words: Int32Array, at: number): void {
  while (Atomics.compareExchange(words, at, 0, 1) !== 0) Atomics.wait(words, at, 1);
}

export function unlockWord(words: Int32Array, at: number): void {
  Atomics.store(words, at, 0);
  Atomics.notify(words, at, 1);
}

const lock = (ring: Int32Array) => lockWord(ring, RING.LOCK);
const unlock = (ring: Int32Array) => unlockWord(ring, RING.LOCK);

/**
 * Puts `gfn` on the ring (a vCPU thread: it may block). Waits while the ring is full. Returns
 * false, without putting, if the run was aborted meanwhile.
 */
export function ringPut(ring: Int32Array, gfn: number): boolean {
  const capacity = ring[RING.CAPACITY]!;
  lock(ring);
  for (;;) {
    if (Atomics.load(ring, RING.ABORT) !== 0) {
      unlock(ring);
      return false;
    }
    const put = Atomics.load(ring, RING.PUT);
    const take = Atomics.load(ring, RING.TAKE);
    if (put - take < capacity) {
      Atomics.store(ring, HEADER + (put % capacity), gfn);
      Atomics.store(ring, RING.PUT, put + 1);
      if (put + 1 - take > Atomics.load(ring, RING.MAX_OCCUPANCY)) Atomics.store(ring, RING.MAX_OCCUPANCY, put + 1 - take);
      unlock(ring);
      Atomics.notify(ring, RING.PUT);
      return true;
    }
    // Full: let the other producers (and their own full checks) through, and sleep until the
    // consumer moves TAKE past what we saw (if it already has, wait returns at once).
    Atomics.add(ring, RING.FULL_WAITS, 1);
    unlock(ring);
    Atomics.wait(ring, RING.TAKE, take);
    lock(ring);
  }
}

/**
 * Takes every gfn on the ring (the pager: it never blocks), calling `take` for each in order, and
 * frees their slots, waking producers that wait for one. Returns the PUT counter it drained up
 * to: wait on PUT with it (Atomics.waitAsync) for the next gfn.
 */
export function ringDrain(ring: Int32Array, take: (gfn: number) => void): number {
  const capacity = ring[RING.CAPACITY]!;
  const put = Atomics.load(ring, RING.PUT);
  let t = Atomics.load(ring, RING.TAKE);
  if (t >= put) return put;
  for (; t < put; t++) take(Atomics.load(ring, HEADER + (t % capacity)));
  Atomics.store(ring, RING.TAKE, t);
  Atomics.notify(ring, RING.TAKE);
  return put;
}

/** Atomics.waitAsync (Node ≥ 16; typed only from lib es2024, beyond this project's target). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { async: false } | { async: true; value: Promise<unknown> };
}).waitAsync;

/** Resolves once the PUT counter is past `seen` (ringDrain's return), without blocking the thread. */
export async function putAfter(ring: Int32Array, seen: number): Promise<void> {
  const w = waitAsync(ring, RING.PUT, seen);
  if (w.async) await w.value;
}

/**
 * Marks the run failed and wakes every producer blocked on a full ring. TAKE moves too, so a
 * producer between its full check and its wait does not sleep on the old value.
 */
export function ringAbort(ring: Int32Array): void {
  Atomics.store(ring, RING.ABORT, 1);
  Atomics.add(ring, RING.TAKE, 1);
  Atomics.notify(ring, RING.TAKE);
  Atomics.notify(ring, RING.LOCK);
}

export const ringAborted = (ring: Int32Array): boolean => Atomics.load(ring, RING.ABORT) !== 0;
