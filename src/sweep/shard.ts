import { ScenarioError } from '../scenario/error.ts';

/** Shard K of N (1 ≤ K ≤ N): runs whose index ≡ K (mod N); `from` says where K came from. */
export interface Shard {
  index: number;
  count: number;
  /** `--shard`, or the task-index variable and its value (`SLURM_ARRAY_TASK_ID=0`). */
  from: string;
}

/** The variables that number a task in an array job, first match wins. */
const TASK_VARIABLES = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX'] as const;

/**
 * The shard to run: `--shard K/N`, else a task index (Slurm's SLURM_ARRAY_TASK_ID, a Kubernetes
 * Indexed Job's JOB_COMPLETION_INDEX) with the shard count from `--shards N` or
 * POSTCOPY_EMU_SHARDS; null means the whole sweep. The count is never inferred from the array:
 * a task resubmitted alone (`sbatch --array=3`) has SLURM_ARRAY_TASK_COUNT 1 and would run the
 * whole sweep.
 */
export function resolveShard(flag: string | undefined, shards: string | undefined, env: NodeJS.ProcessEnv): Shard | null {
  if (flag !== undefined) {
    if (shards !== undefined) throw new ScenarioError('--shards', 'give --shard K/N or --shards N (with a task index variable), not both');
    const m = /^(\d+)\/(\d+)$/.exec(flag);
    if (!m || Number(m[2]) < 1 || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) {
      throw new ScenarioError('--shard', `must be K/N with 1 ≤ K ≤ N, got "${flag}"`);
    }
    return { index: Number(m[1]), count: Number(m[2]), from: '--shard' };
  }
  const variable = TASK_VARIABLES.find((v) => env[v] !== undefined);
  const count = shards ?? env.POSTCOPY_EMU_SHARDS;
  if (variable === undefined) {
    if (shards !== undefined) throw new ScenarioError('--shards', `needs a task index: ${TASK_VARIABLES.join(' or ')} is not set (or give --shard K/N)`);
    return null;
  }
  if (count === undefined) {
    throw new ScenarioError('--shards', `${variable} is set: give the number of shards with --shards N (or POSTCOPY_EMU_SHARDS); it is never taken from the array's size`);
  }
  const id = env[variable]!;
  if (!/^\d+$/.test(id) || !/^\d+$/.test(count) || Number(count) < 1) {
    throw new ScenarioError(variable, `needs a whole task index and shard count, got ${id} of ${count}`);
  }
  // Index i (from 0, as Kubernetes and most Slurm arrays number them) runs shard (i mod N) + 1.
  const n = Number(count);
  return { index: (Number(id) % n) + 1, count: n, from: `${variable}=${id}` };
}
