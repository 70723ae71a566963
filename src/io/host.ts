import { availableParallelism, freemem, totalmem } from 'node:os';

/**
 * The CPUs this process may use: Slurm's allocation when it says (SLURM_CPUS_PER_TASK), else the
 * CPUs in the process's affinity mask, never the whole node's count.
 */
export function hostCpus(env: NodeJS.ProcessEnv = process.env): number {
  const slurm = Number(env.SLURM_CPUS_PER_TASK);
  return Number.isSafeInteger(slurm) && slurm >= 1 ? slurm : availableParallelism();
}

/** The cgroup limit below the machine's memory, or 0: read once (it does not change under a process). */
let cgroupLimit = -1;

/** Bytes this process can still take: free memory, within a cgroup limit when there is one. */
export function availableBytes(): number {
  if (cgroupLimit < 0) {
    const limit = process.constrainedMemory?.() ?? 0;
    cgroupLimit = limit > 0 && limit < totalmem() ? limit : 0;
  }
  const free = freemem();
  return cgroupLimit > 0 ? Math.min(free, cgroupLimit - process.memoryUsage.rss()) : free;
}

export const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
