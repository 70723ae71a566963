import cliProgress from 'cli-progress';

/**
 * A progress bar on stderr for long jobs, or nothing when stderr is not a terminal (CI, pipes),
 * so logs and tests stay clean.
 */
export function progressBar(format: string): { update(value: number, total: number, payload: object): void; stop(): void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 20 }, cliProgress.Presets.shades_classic);
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
