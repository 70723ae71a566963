import type { Command } from 'commander';
import { ScenarioError } from '../../scenario/error.ts';
import { UsageError } from '../../io/errors.ts';
import { wholeNumber } from '../io.ts';
import { progressBar } from '../progress.ts';

/** A soak scenario has at most 4096 pages; 256 MiB per worker is ample. */
const SOAK_RUN_BYTES = 256 * 2 ** 20;

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
    .option('-j, --jobs <n>', 'worker threads (default: the CPUs this process may use)')
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
      // Seeds are whole numbers a double holds exactly: the last one must be too.
      if (from + count - 1 > Number.MAX_SAFE_INTEGER) {
        throw new ScenarioError('--seeds', `--from ${from} + --seeds ${count} passes 2^53 − 1, the last seed a double holds exactly`);
      }
      const { workerCount } = await import('../../workers/jobs.ts');
      const jobs = workerCount(o.jobs === undefined ? undefined : wholeNumber('--jobs', o.jobs, 1), SOAK_RUN_BYTES,
        (w) => process.stderr.write(`postcopy-emu: warning: ${w}\n`));
      const { formatSoak, soak } = await import('../../check/soak.ts');
      const t0 = Date.now();
      const bar = progressBar('soak [{bar}] {value}/{total} seeds | ETA {eta_formatted}');
      const result = await soak(from, count, jobs, { progress: (done, total) => bar.update(done, total, {}) });
      bar.stop();
      out(formatSoak(result, Date.now() - t0));
      if (result.failures.length > 0) fail();
    });
}
