import { renameSync, writeFileSync } from 'node:fs';

/** Bad command-line input: one line on stderr, exit code 2. */
export class UsageError extends Error {}

/** Writes through a temp file and a rename, so a reader never sees half a file. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Collects a repeatable option's values. */
export const collect = (v: string, acc: string[]): string[] => [...acc, v];
