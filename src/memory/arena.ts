import { Space } from './space.ts';

/** Where per-page and growing typed arrays come from. Every array handed out is zero-filled. */
export interface Alloc {
  uint8(n: number): Uint8Array;
  int32(n: number): Int32Array;
  float64(n: number): Float64Array;
  /** The memory the guest's touches are run in (WebAssembly): a run's own, or the Arena's. */
  space(): Space;
}

/**
 * Empty arrays for the structures that allocate at their first use, so that their growth path
 * runs (and gets V8's type feedback) in every run. Shared: nothing writes to an empty array.
 */
export const NO_INT32S = new Int32Array(0);
export const NO_FLOAT64S = new Float64Array(0);

/** Fresh arrays every time: safe when several emulators live at once (the default). */
export const FRESH: Alloc = {
  uint8: (n) => new Uint8Array(n),
  int32: (n) => new Int32Array(n),
  float64: (n) => new Float64Array(n),
  space: () => new Space(),
};

/** `a` copied into an array of its kind twice as long: a growing array that no Arena holds. */
export function doubled<T extends Uint8Array | Int32Array | Float64Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

/**
 * Reuses the same backing memory run after run, for a caller that runs one emulator at a time
 * (a sweep or soak worker). Fresh multi-megabyte buffers cost page faults, and freeing them
 * unmaps memory, which stops every thread of the process for a TLB flush: on this class of VM
 * that dominates short runs and serialises workers; memory already faulted in only needs
 * zeroing. Each array gets the smallest buffer the run has not taken yet that holds it, so runs
 * that ask in another order or grow arrays in other steps still find theirs. `reset()` before
 * each run: every array from the previous run is then invalid.
 */
export class Arena implements Alloc {
  /** Buffers not taken since the last reset, by size. */
  private free: ArrayBuffer[] = [];
  private taken: ArrayBuffer[] = [];
  private own: Space | null = null;

  reset(): void {
    this.free = this.free.concat(this.taken).sort((a, b) => a.byteLength - b.byteLength);
    this.taken = [];
    this.own?.reset();
  }

  /** One Space for every run, reset with the arena: its memory stays faulted in, as the buffers do. */
  space(): Space {
    return (this.own ??= new Space());
  }

  uint8(n: number): Uint8Array {
    return new Uint8Array(this.take(n), 0, n);
  }

  int32(n: number): Int32Array {
    return new Int32Array(this.take(n * 4), 0, n);
  }

  float64(n: number): Float64Array {
    return new Float64Array(this.take(n * 8), 0, n);
  }

  private take(bytes: number): ArrayBuffer {
    const free = this.free;
    let lo = 0, hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (free[mid]!.byteLength < bytes) lo = mid + 1;
      else hi = mid;
    }
    let b: ArrayBuffer;
    if (lo < free.length) {
      b = free.splice(lo, 1)[0]!;
      new Uint8Array(b, 0, bytes).fill(0);
    } else b = new ArrayBuffer(bytes);
    this.taken.push(b);
    return b;
  }
}
