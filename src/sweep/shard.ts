import { ScenarioError } from '../scenario/error.ts';

/** Shard K of N: runs whose index ≡ K (mod N). */
export interface Shard {
  index: number;
  count: number;
}

/**
 * The shard to run: `--shard K/N`, else a Slurm array task (SLURM_ARRAY_TASK_ID of
 * SLURM_ARRAY_TASK_COUNT), else a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with the count from
 * `--shards N` or POSTCOPY_EMU_SHARDS); null means the whole sweep.
 */
export function resolveShard(flag: string | undefined, shards: string | undefined, env: NodeJS.ProcessEnv): Shard | null {
  if (flag !== undefined) {
    if (shards !== undefined) throw new ScenarioError('--shards', 'give --shard K/N or --shards N (with JOB_COMPLETION_INDEX), not both');
    const m = /^(\d+)\/(\d+)$/.exec(flag);
    if (!m || Number(m[2]) < 1 || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) {
      throw new ScenarioError('--shard', `must be K/N with 1 ≤ K ≤ N, got "${flag}"`);
    }
    return { index: Number(m[1]), count: Number(m[2]) };
  }
  if (env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    return fromEnv('SLURM_ARRAY_TASK_ID', env.SLURM_ARRAY_TASK_ID, env.SLURM_ARRAY_TASK_COUNT);
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    const count = shards ?? env.POSTCOPY_EMU_SHARDS;
    if (count === undefined) throw new ScenarioError('--shards', 'JOB_COMPLETION_INDEX is set: give the number of shards with --shards N or POSTCOPY_EMU_SHARDS');
    return fromEnv('JOB_COMPLETION_INDEX', env.JOB_COMPLETION_INDEX, count);
  }
  return null;
}

function fromEnv(name: string, id: string, count: string): Shard {
  if (!/^\d+$/.test(id) || !/^\d+$/.test(count) || Number(count) < 1) {
    throw new ScenarioError(name, `needs a whole task id and shard count, got ${id} of ${count}`);
  }
  // Task ids may start at 0 (Kubernetes, most Slurm arrays) or 1: either way id mod N picks one shard.
  const n = Number(count);
  return { index: Number(id) % n === 0 ? n : Number(id) % n, count: n };
}
