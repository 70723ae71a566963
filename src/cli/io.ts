import { ScenarioError } from '../scenario/error.ts';

/** A whole-number flag ≥ min (and a safe integer); one line naming the flag otherwise. */
export function wholeNumber(flag: string, v: string, min: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw new ScenarioError(flag, `must be a whole number ≥ ${min}, got "${v}"`);
  }
  return Number(v);
}

/** Collects a repeatable option's values. */
export const collect = (v: string, acc: string[]): string[] => [...acc, v];
