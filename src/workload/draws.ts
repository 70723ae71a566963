import { instantiateWasm } from '../io/wasm.ts';

/** Touches per fill (wasm/draws.ts's BATCH). */
export const BATCH = 64;

/** The patterns wasm/draws.ts draws, by its numbers for them. */
export const enum DrawnKind {
  SEQUENTIAL = 0,
  RANDOM = 1,
  SHUFFLED = 2,
  HOT_SET = 3,
}

/** A pattern's fixed parameters, as fill() takes them. */
export interface DrawnPattern {
  kind: DrawnKind;
  lo: number;
  count: number;
  hotPages: number;
  lcgMask: number;
  hotProbability: number;
  writeFraction: number;
  meanThinkNs: number;
  constantThink: boolean;
}

interface Exports {
  memory: WebAssembly.Memory;
  area(): number;
  fill(kind: number, lo: number, count: number, hotPages: number, mask: number, hotProbability: number, writeFraction: number, meanNs: number, constant: number): void;
}

/**
 * The layout of wasm/draws.ts's area, which a pattern's own block copies: the think times (f64),
 * the pages (i32), the stream's state (i32: pure-rand's four words, the sequential cursor, the
 * shuffled order's value) and the writes (u8).
 */
export const THINK_AT = 0;
export const GFN_AT = THINK_AT + 8 * BATCH;
export const STATE_AT = GFN_AT + 4 * BATCH;
export const WRITE_AT = STATE_AT + 4 * 6;
export const AREA_BYTES = WRITE_AT + BATCH;

/** The module's fill and its area: made once per thread, at the first fill. */
let draws: { fill: Exports['fill']; area: Uint8Array } | null = null;

function instantiate(): NonNullable<typeof draws> {
  const x = instantiateWasm('draws', { env: { log: Math.log, round: Math.round } }) as unknown as Exports;
  // The module never grows its memory, so the view stays valid.
  return { fill: x.fill, area: new Uint8Array(x.memory.buffer, x.area(), AREA_BYTES) };
}

/**
 * Draws BATCH touches of pattern `p` into `block` (AREA_BYTES laid out as the module's area),
 * from the stream's state there, which it advances.
 */
export function fillTouches(p: DrawnPattern, block: Uint8Array): void {
  const d = draws ?? (draws = instantiate());
  d.area.set(block);
  d.fill(p.kind, p.lo, p.count, p.hotPages, p.lcgMask, p.hotProbability, p.writeFraction, p.meanThinkNs, p.constantThink ? 1 : 0);
  block.set(d.area);
}
