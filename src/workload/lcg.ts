/**
 * A full-period LCG x ← a·x + c mod 2^k over a power-of-two range, skipping values ≥ the page
 * count: a pseudo-random order that visits every page once per 2^k steps. The real harness's
 * firmware guest walks its working set so (src/live/qemu/firmware.ts), and the `shuffled`
 * workload walks the model's the same way.
 */

/** a ≡ 1 (mod 4) and c odd give the full period 2^k (Hull–Dobell). */
export const LCG_A = 1103515245;
export const LCG_C = 12345;

/** The smallest 2^k − 1 ≥ pages − 1: the order walks 2^k values and skips those ≥ pages. */
export function lcgMask(pages: number): number {
  let m = 1;
  while (m < pages) m *= 2;
  return m - 1;
}

/** The next value below `pages` after x in the order (x itself below mask + 1). */
export function lcgNext(x: number, mask: number, pages: number): number {
  do x = (Math.imul(x, LCG_A) + LCG_C) & mask;
  while (x >= pages);
  return x;
}
