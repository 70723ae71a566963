/** Where per-page typed arrays come from. Every array handed out is zero-filled. */
export interface Alloc {
  uint8(n: number): Uint8Array;
  int32(n: number): Int32Array;
}

/** Fresh arrays every time: safe when several emulators live at once (the default). */
export const FRESH: Alloc = {
  uint8: (n) => new Uint8Array(n),
  int32: (n) => new Int32Array(n),
};

/**
 * Reuses the same backing memory run after run, for a caller that runs one emulator at a time
 * (a sweep worker). Fresh multi-megabyte buffers cost page faults that, on this class of VM,
 * serialise across threads and dominate short runs; memory already faulted in only needs
 * zeroing. `reset()` before each run: every array from the previous run is then invalid.
 */
export class Arena implements Alloc {
  private readonly buffers: ArrayBuffer[] = [];
  private next = 0;

  reset(): void {
    this.next = 0;
  }

  uint8(n: number): Uint8Array {
    return new Uint8Array(this.take(n), 0, n);
  }

  int32(n: number): Int32Array {
    return new Int32Array(this.take(n * 4), 0, n);
  }

  private take(bytes: number): ArrayBuffer {
    let b = this.buffers[this.next];
    if (b === undefined || b.byteLength < bytes) {
      b = new ArrayBuffer(bytes);
      this.buffers[this.next] = b;
    } else {
      new Uint8Array(b, 0, bytes).fill(0);
    }
    this.next++;
    return b;
  }
}
