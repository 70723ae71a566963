import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Sends `signal` to a running `sweep` child once its runs.jsonl in `out` holds two records, so it
 * lands between runs; rejects if the sweep finishes first. Resolves with the child's exit code.
 */
export async function signalMidSweep(child: ChildProcess, out: string, signal: NodeJS.Signals): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      const p = join(out, 'runs.jsonl');
      if (existsSync(p) && readFileSync(p, 'utf8').split('\n').length >= 3) {
        clearInterval(t);
        child.kill(signal);
        resolve();
      }
    }, 5);
    child.once('exit', () => {
      clearInterval(t);
      reject(new Error('the sweep finished before the signal'));
    });
  });
  return exited;
}
