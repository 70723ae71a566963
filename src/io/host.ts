import { availableParallelism, freemem, totalmem } from 'node:os';

/**
 * The CPUs this process may use: Slurm's allocation when it says (SLURM_CPUS_PER_TASK), else the
 * CPUs in the process's affinity mask, never the whole node's count.
 */
export function hostCpus(env: NodeJS.ProcessEnv = process.env): number {
  const slurm = Number(env.SLURM_CPUS_PER_TASK);
  return Number.isSafeInteger(slurm) && slurm >= 1 ? slurm : availableParallelism();
}

/** Bytes this process can still take: free memory, within a cgroup limit when there is one. */
export function availableBytes(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  const free = freemem();
  return limit > 0 && limit < totalmem() ? Math.min(free, limit - process.memoryUsage().rss) : free;
}

export const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
