import { cpus } from 'node:os';
import type { Command } from 'commander';
import { ScenarioError } from '../../scenario/error.ts';
import { UsageError } from '../../io/errors.ts';
import { progressBar } from '../progress.ts';

function wholeNumber(flag: string, v: string, min: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw new ScenarioError(flag, `must be a whole number ≥ ${min}, got "${v}"`);
  }
  return Number(v);
}

/** One seed's random scenario as a YAML scenario file. */
export async function scenarioYaml(seed: number): Promise<string> {
  const [{ default: YAML }, { randomScenario }] = await Promise.all([import('yaml'), import('../../check/random-scenario.ts')]);
  return `# postcopy-emu soak seed ${seed}; run it with: postcopy-emu run FILE --check\n${YAML.stringify(randomScenario(seed))}`;
}

export function registerSoak(cmd: Command, out: (s: string) => void, fail: () => void): void {
  cmd.command('soak')
    .description('run random scenarios under the invariant checker and print every failing seed')
    .option('-n, --seeds <n>', 'how many seeds to run')
    .option('--from <s>', 'first seed', '1')
    .option('-j, --jobs <n>', 'worker threads (default: cores)')
    .option('--print-scenario', 'print the scenario of seed --from as YAML instead of running it')
    .action(async (o: { seeds?: string; from: string; jobs?: string; printScenario?: boolean }) => {
      const from = wholeNumber('--from', o.from, 0);
      if (o.printScenario) {
        if (o.seeds !== undefined && o.seeds !== '1') throw new UsageError('--print-scenario prints one seed\'s scenario (--from S); leave out --seeds');
        out(await scenarioYaml(from));
        return;
      }
      if (o.seeds === undefined) throw new UsageError('soak needs --seeds N');
      const count = wholeNumber('--seeds', o.seeds, 1);
      const jobs = o.jobs === undefined ? cpus().length : wholeNumber('--jobs', o.jobs, 1);
      const { formatSoak, soak } = await import('../../check/soak.ts');
      const t0 = Date.now();
      const bar = progressBar('soak [{bar}] {value}/{total} seeds | ETA {eta_formatted}');
      const result = await soak(from, count, jobs, { progress: (done, total) => bar.update(done, total, {}) });
      bar.stop();
      out(formatSoak(result, Date.now() - t0));
      if (result.failures.length > 0) fail();
    });
}
