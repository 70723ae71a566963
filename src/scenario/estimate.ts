import { availableBytes, gib } from '../io/host.ts';
import { ScenarioError } from './error.ts';
import type { Scenario } from './schema.ts';

/**
 * Measured peak RSS per guest page above the process baseline is 1.7–18 B (npm run bench: a
 * byte of page state and bitmaps; a range-request storm's pending waits are the 18 B, and a
 * 2 GiB guest's 12.5 B is mostly fixed costs); 24 B bounds it from above.
 */
const BYTES_PER_PAGE = 24;
/** The process itself, the records in flight and the report. */
const BASE_BYTES = 64 * 2 ** 20;
/** One time-series sample: a handful of numbers. */
const BYTES_PER_SAMPLE = 64;

/**
 * An upper estimate of the memory one run of `s` needs, before anything is allocated (a trace
 * is loaded, within its own bound, when the scenario is validated).
 */
export function estimateRunBytes(s: Scenario): number {
  return BASE_BYTES + s.memory.pages * BYTES_PER_PAGE + s.timeline.samples * BYTES_PER_SAMPLE;
}

/** The host's available memory as last read, and how many small runs may still use that reading. */
let lastAvailable = 0;
let reuses = 0;
/** Runs below this are checked against a reading up to 64 runs old (a /proc read costs more than a small run's setup). */
const SMALL_RUN_BYTES = 256 * 2 ** 20;

/** Refuses, before anything is allocated, a run that would not fit in the memory this host has. */
export function checkRunFits(s: Scenario): void {
  const need = estimateRunBytes(s);
  if (need > SMALL_RUN_BYTES || reuses-- <= 0 || need > lastAvailable) {
    lastAvailable = availableBytes();
    reuses = 64;
  }
  const have = lastAvailable;
  if (need > have) {
    throw new ScenarioError('memory.pages', `a run of ${s.memory.pages} pages needs about ${gib(need)} (64 MiB + 24 B a page); this host has ${gib(have)} available`);
  }
}
