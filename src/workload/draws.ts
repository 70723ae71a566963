import { readFileSync } from 'node:fs';
import { packageRoot } from '../io/package.ts';

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

/** The module's exports and views of its area: made once per thread, at the first fill. */
interface Draws {
  fill: Exports['fill'];
  think: Float64Array;
  gfn: Int32Array;
  state: Int32Array;
  write: Uint8Array;
}

let draws: Draws | null = null;

function instantiate(): Draws {
  const file = `${packageRoot}dist/wasm/draws.wasm`;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch {
    throw new Error(`${file} is missing: \`npm run build\` compiles it from wasm/draws.ts`);
  }
  // Liftoff compiles the whole module in about a millisecond; its code runs at once.
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { log: Math.log, round: Math.round } });
  const x = exports as unknown as Exports, at = x.area(), buffer = x.memory.buffer;
  // The module never grows its memory, so the views stay valid.
  return {
    fill: x.fill,
    think: new Float64Array(buffer, at, BATCH),
    gfn: new Int32Array(buffer, at + 8 * BATCH, BATCH),
    state: new Int32Array(buffer, at + 12 * BATCH, 6),
    write: new Uint8Array(buffer, at + 12 * BATCH + 24, BATCH),
  };
}

/**
 * Draws BATCH touches of pattern `p` from `state` (pure-rand's four words of the stream, the
 * sequential cursor, the shuffled order's value), which it advances, into the three arrays.
 */
export function fillTouches(p: DrawnPattern, state: Int32Array, gfn: Int32Array, write: Uint8Array, think: Float64Array): void {
  const d = draws ?? (draws = instantiate());
  d.state.set(state);
  d.fill(p.kind, p.lo, p.count, p.hotPages, p.lcgMask, p.hotProbability, p.writeFraction, p.meanThinkNs, p.constantThink ? 1 : 0);
  state.set(d.state);
  gfn.set(d.gfn);
  write.set(d.write);
  think.set(d.think);
}
