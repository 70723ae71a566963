import type { Command } from 'commander';
import { wholeNumber } from '../io.ts';
import { progressBar } from '../progress.ts';

/** 1234567 as 1,234,567; not toLocaleString, whose first call loads ICU (~45 ms) even with no bar to draw. */
const thousands = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

export function registerSweep(cmd: Command, out: (s: string) => void, fail: (code?: number) => void): void {
  cmd.command('sweep')
    .description('run a sweep file: every combination of its axes × replications, in parallel')
    .argument('<file>', 'sweep file, YAML or JSON')
    .option('-o, --out <dir>', 'output directory', 'sweep-out')
    .option('-j, --jobs <n>', 'worker threads (default: the CPUs this process may use)')
    .option('--resume', 'continue an interrupted sweep in --out, skipping runs already done')
    .option('--shard <K/N>', 'run only the runs whose index ≡ K (mod N)')
    .option('--shards <n>', 'shard count N for an array job: the task index (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, from 0) picks shard index mod N + 1')
    .action(async (file: string, o: { out: string; jobs?: string; resume?: boolean; shard?: string; shards?: string }) => {
      const warn = (w: string) => process.stderr.write(`postcopy-emu: warning: ${w}\n`);
      const requested = o.jobs === undefined ? undefined : wholeNumber('--jobs', o.jobs, 1);
      const [{ workerCount }, { startSweepWorkers }] = await Promise.all([import('../../workers/jobs.ts'), import('../../sweep/workers.ts')]);
      // Started before the sweep file is read: the workers load while this thread reads it (as many
      // as the CPUs allow; the sweep stops those the memory or the runs leave idle).
      const workers = startSweepWorkers(workerCount(requested, 0, () => {}));
      try {
        const [{ runSweep }, { resolveShard }, { readSweep }] = await Promise.all([
          import('../../sweep/run.ts'), import('../../sweep/shard.ts'), import('../../sweep/spec.ts'),
        ]);
        const sweep = readSweep(file, warn);
        const shard = resolveShard(o.shard, o.shards, process.env);
        const jobs = workerCount(requested, sweep.maxRunBytes, warn);
        const t0 = Date.now();
        const bar = progressBar('sweep [{bar}] {value}/{total} runs | ETA {eta_formatted} | {evps} events/s');
        // A cluster's requeue or cancel sends SIGTERM: stop the workers, keep runs.jsonl resumable.
        const stop = new AbortController();
        let signalled: NodeJS.Signals | null = null;
        const onSignal = (s: NodeJS.Signals) => {
          signalled = s;
          stop.abort();
        };
        process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
        const { records, resumed, interrupted } = await runSweep(sweep, {
          dir: o.out, jobs, workers, resume: o.resume === true, shard, signal: stop.signal,
          timestamp: () => new Date().toISOString(),
          warn,
          progress: (done, total, events) => bar.update(done, total, { evps: thousands(Math.round(events / Math.max(1e-3, (Date.now() - t0) / 1000))) }),
        });
        bar.stop();
        process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
        const failed = records.filter((r) => r.status === 'failed');
        const where = shard ? `, shard ${shard.index}/${shard.count} from ${shard.from}` : '';
        if (interrupted) {
          out(`interrupted by ${signalled}: ${records.length} runs recorded in ${o.out} (${resumed} resumed); continue with --resume\n`);
          fail(signalled === 'SIGINT' ? 130 : 143);
          return;
        }
        out(`${records.length} runs (${sweep.configs} configurations × ${sweep.spec.replications} replications${where}) in ${o.out}: `
          + `${records.length - failed.length} ok, ${failed.length} failed (${resumed} resumed from runs.jsonl, ${records.length - resumed} run now)\n`);
        for (const f of failed.slice(0, 5)) out(`  run ${f.index} ${JSON.stringify(f.params)}: ${f.error}\n`);
        // Every other run finished; the exit code still says that not all of them did.
        if (failed.length > 0) fail();
      } finally {
        // A sweep file or directory refused before the sweep took the workers over.
        await workers.terminate();
      }
    });

  cmd.command('merge')
    .description('merge shard directories of one sweep into one directory, as an unsharded run writes it')
    .argument('<dirs...>', 'shard output directories')
    .requiredOption('-o, --out <dir>', 'merged output directory')
    .action(async (dirs: string[], o: { out: string }) => {
      const { mergeSweeps } = await import('../../sweep/merge.ts');
      const records = mergeSweeps(dirs, o.out, (w) => process.stderr.write(`postcopy-emu: warning: ${w}\n`));
      out(`merged ${records.length} runs from ${dirs.length} directories into ${o.out}\n`);
    });
}
