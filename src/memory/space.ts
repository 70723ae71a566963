import { wasmModule } from '../io/wasm.ts';
import type { Rng } from '../kernel/rng.ts';

interface TouchesExports {
  heapBase(): number;
  fillBytes(at: number, value: number, n: number): void;
  outcome(): number;
  fill(block: number): void;
  slice(block: number, state: number, writes: number, touched: number, g: number, w: number, think: number, t: number,
    limit: number): number;
  advance(block: number, t: number, to: number, share: number, left: number, out: number, cap: number): number;
  drawFraction(state: number, out: number, pages: number, fraction: number): void;
}

/** slice()'s and advance()'s answers (wasm/touches.ts). */
export const enum Touches {
  /** slice(): it ran its touches; advance(): it reached its end. */
  DONE = 0,
  /** A trace's block ran out: JavaScript replays the next records into it and calls again. */
  REPLAY = 1,
  /** advance(): the work budget ran out. */
  SPENT = 2,
  /** advance(): its list of pages written is full: JavaScript marks them and calls again. */
  FULL = 3,
}

/** WebAssembly's page size: a memory grows by whole ones. */
const WASM_PAGE = 65536;

/**
 * A run's memory for what the guest's touches read and write in WebAssembly (wasm/touches.ts):
 * the page states and write counts, the vCPUs' first-touch bits, the access patterns' blocks.
 * Arrays come from it as views, bump-allocated; it grows as they are taken and never shrinks.
 * The memory is shared: growing it leaves every view valid (an ordinary WebAssembly memory
 * detaches them), and JavaScript reads views of it as fast as its own arrays (measured:
 * docs/benchmark.md). An Arena keeps one Space for its runs and resets it with them.
 */
export class Space {
  readonly memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  /**
   * The outcome of the last slice or advance (wasm/touches.ts lays it out). A slice's: its time
   * and the think time of the touch it stopped at; its touches, first touches and writes, and that
   * touch's page and write. An advance's: the clock and the work budget left; the pages written.
   */
  readonly outcomeTimes: Float64Array;
  readonly outcomeCounts: Int32Array;
  /** Draws the next touches of the pattern whose block is at `block` (wasm/touches.ts's fill). */
  readonly draw: (block: number) => void;
  private readonly fillBytes: TouchesExports['fillBytes'];
  readonly slice: TouchesExports['slice'];
  readonly advance: TouchesExports['advance'];
  private readonly drawFractionAt: TouchesExports['drawFraction'];
  private readonly base: number;
  private top: number;
  /** Below this, bytes were taken before a reset and may not be zero. */
  private used: number;

  constructor() {
    const imports = { env: { memory: this.memory, log: Math.log, round: Math.round } };
    const x = new WebAssembly.Instance(wasmModule('touches'), imports).exports as unknown as TouchesExports;
    this.draw = x.fill;
    this.fillBytes = x.fillBytes;
    this.slice = x.slice;
    this.advance = x.advance;
    this.drawFractionAt = x.drawFraction;
    this.base = this.top = this.used = align8(x.heapBase());
    const o = x.outcome();
    this.outcomeTimes = new Float64Array(this.memory.buffer, o, 2);
    this.outcomeCounts = new Int32Array(this.memory.buffer, o + 16, 5);
  }

  /** `bytes` zeroed bytes, 8-aligned: their offset in the memory. */
  take(bytes: number): number {
    const at = this.top, end = at + bytes, size = this.memory.buffer.byteLength;
    if (end > size) this.memory.grow(Math.ceil((end - size) / WASM_PAGE));
    if (at < this.used) this.fillBytes(at, 0, Math.min(end, this.used) - at);
    this.top = align8(end);
    this.used = Math.max(this.used, end);
    return at;
  }

  uint8(n: number): Uint8Array {
    const at = this.take(n);
    // The buffer after take(), which may have grown the memory.
    return new Uint8Array(this.memory.buffer, at, n);
  }

  int32(n: number): Int32Array {
    const at = this.take(4 * n);
    return new Int32Array(this.memory.buffer, at, n);
  }

  /** view.fill(value, from, to) for a view of this space, as a memset. */
  fill(view: Uint8Array, value: number, from: number, to: number): void {
    this.fillBytes(view.byteOffset + from, value, to - from);
  }

  /**
   * A bitmap of `pages` bits, page g's set when its draw from `rng` (one float() a page, in page
   * order) is below `fraction`: drawn in WebAssembly, where the stream goes on (nothing draws
   * from `rng` after).
   */
  drawFraction(rng: Rng, pages: number, fraction: number): Int32Array {
    const state = this.int32(4);
    state.set(rng.words());
    const out = this.int32((pages + 31) >>> 5);
    this.drawFractionAt(state.byteOffset, out.byteOffset, pages, fraction);
    return out;
  }

  /** Every array taken from it before is invalid after this (an Arena's next run). */
  reset(): void {
    this.top = this.base;
  }
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;
