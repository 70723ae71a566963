import { createRequire } from 'node:module';
import type cliProgressTypes from 'cli-progress';

let quiet = false;

/** `--quiet`: no progress bars. */
export function setQuiet(q: boolean): void {
  quiet = q;
}

/**
 * A progress bar on stderr for long jobs, or nothing when stderr is not a terminal (CI, pipes),
 * with --quiet, or on a terminal that cannot redraw a line (TERM=dumb). With NO_COLOR it is drawn
 * in plain ASCII and leaves the cursor alone (no escape sequences beyond the line redraw).
 */
export function progressBar(format: string): { update(value: number, total: number, payload: object): void; stop(): void } {
  if (quiet || !process.stderr.isTTY || process.env.TERM === 'dumb') return { update: () => {}, stop: () => {} };
  // Loaded on use (synchronously, it is CommonJS): most runs never draw a bar.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof cliProgressTypes;
  const plain = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: !plain, etaBuffer: 20 },
    plain ? cliProgress.Presets.legacy : cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(value, total, payload) {
      if (!started) {
        bar.start(total, 0, payload);
        started = true;
      }
      bar.setTotal(total);
      bar.update(value, payload);
    },
    stop: () => bar.stop(),
  };
}
