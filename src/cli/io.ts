/** Collects a repeatable option's values. */
export const collect = (v: string, acc: string[]): string[] => [...acc, v];
