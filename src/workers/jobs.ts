import { UsageError } from '../io/errors.ts';
import { availableBytes, gib, hostCpus } from '../io/host.ts';

/**
 * How many worker threads to run: `--jobs` (default: the CPUs this process may use), at most
 * those CPUs and at most as many runs of `runBytes` as the available memory holds. A single run
 * that does not fit is refused here, before anything is allocated.
 */
export function workerCount(requested: number | undefined, runBytes: number, warn: (message: string) => void): number {
  const cpus = hostCpus();
  const available = availableBytes();
  if (runBytes > available) {
    throw new UsageError(`one run needs about ${gib(runBytes)} (estimated from memory.pages); this host has ${gib(available)} available`, 'memory.pages');
  }
  const fit = Math.max(1, Math.floor(available / runBytes));
  const jobs = Math.min(requested ?? cpus, cpus, fit);
  if (requested !== undefined && jobs < requested) {
    warn(`--jobs ${requested} capped at ${jobs}: ${jobs === cpus ? `this process may use ${cpus} CPUs` : `${fit} runs of about ${gib(runBytes)} fit in the ${gib(available)} available`}`);
  }
  return jobs;
}
