import type { Command } from 'commander';
import type { ScenarioInput } from '../../scenario/schema.ts';
import { ScenarioError } from '../../scenario/error.ts';
import { UsageError } from '../../io/errors.ts';
import { collect } from '../io.ts';
import { progressBar } from '../progress.ts';

export interface ScenarioOptions {
  preset?: string;
  set: string[];
  seed?: string;
}

/** The scenario a command line names: a file or a preset, a seed, then `--set` overrides. */
export async function scenarioFrom(file: string | undefined, o: ScenarioOptions): Promise<ScenarioInput> {
  if (file && o.preset) throw new UsageError('give a scenario FILE or --preset, not both');
  // Loaded on use: the YAML parser is only needed by the commands that read scenarios.
  const { applySets, presetInput, readScenarioFile } = await import('../../scenario/load.ts');
  let input: ScenarioInput = file ? readScenarioFile(file) : o.preset ? presetInput(o.preset) : {};
  if (o.seed !== undefined) {
    if (!/^\d+$/.test(o.seed)) throw new ScenarioError('--seed', `must be a non-negative integer, got "${o.seed}"`);
    input = { ...input, seed: Number(o.seed) };
  }
  return applySets(input, o.set);
}

/** `--timeline [ms]`: the core's samples (unless the scenario sets them) and counter polls every `ms`. */
function withTimeline(input: ScenarioInput, flag: boolean | string): ScenarioInput {
  if (typeof flag === 'string' && !/^[1-9]\d*$/.test(flag)) throw new ScenarioError('--timeline', `must be a whole number of ms ≥ 1, got "${flag}"`);
  const pollMs = typeof flag === 'string' ? Number(flag) : 50;
  return { ...input, timeline: { samples: input.timeline?.samples || 1000, ...input.timeline, pollMs } };
}

/** The scenario as the emulator will see it (validated, defaults filled in), as a YAML file. */
async function resolvedYaml(input: ScenarioInput): Promise<string> {
  const [{ scenarioYaml }, { parseScenario }] = await Promise.all([import('../../scenario/yaml.ts'), import('../../scenario/validate.ts')]);
  const scenario = parseScenario(input);
  return scenarioYaml([`${scenario.name}, resolved: every field with its value. Run it with: postcopy-emu run FILE`], scenario);
}

/** Adds the options that name a scenario (--preset, --set, --seed). */
export function scenarioOptions(c: Command): Command {
  return c.option('-p, --preset <name>', 'start from a preset (see `presets`)')
    .option('-s, --set <path=value>', 'override a scenario field by dotted path (repeatable)', collect, [])
    .option('--seed <n>', 'seed for every random stream');
}

/** A command that runs one scenario: [file], --preset, --set, --seed and --json. */
export function scenarioCommand(cmd: Command, name: string, description: string): Command {
  return scenarioOptions(cmd.command(name).description(description).argument('[file]', 'scenario file, YAML or JSON'))
    .option('--json <file>', 'write the full JSON result to FILE (- for stdout)');
}

/** `--json FILE`: the result written atomically, or to stdout for `-`. */
export async function writeJson(path: string, value: unknown, out: (s: string) => void): Promise<void> {
  const text = JSON.stringify(value, null, 2) + '\n';
  if (path === '-') return out(text);
  const { writeAtomic } = await import('../../io/write.ts');
  writeAtomic(path, text);
}

export function registerRun(cmd: Command, out: (s: string) => void, fail: () => void): void {
  scenarioCommand(cmd, 'run', 'run one scenario (a YAML/JSON FILE or --preset) and print its summary')
    .option('--check', 'run the invariant checker; violations exit with code 1')
    .option('--timeline [ms]', 'record time series: the core\'s samples (ring occupancy, pages resident, …) and query-migrate polls every MS ms of precopy (default 50, as guestperf)')
    .option('--format <kind>', 'summary printed: table, or info (QEMU\'s `info migrate` layout)', 'table')
    .option('--print-scenario', 'print the resolved scenario (preset or file, --set, --seed, every default) as YAML instead of running it')
    .action(async (file: string | undefined, o: ScenarioOptions & { json?: string; check?: boolean; timeline?: boolean | string; format: string; printScenario?: boolean }) => {
      if (o.format !== 'table' && o.format !== 'info') throw new ScenarioError('--format', `must be table or info, got "${o.format}"`);
      let input = await scenarioFrom(file, o);
      if (o.timeline !== undefined) input = withTimeline(input, o.timeline);
      if (o.printScenario) return out(await resolvedYaml(input));
      const [{ runScenario }, { formatInfo }, { formatTable }] = await Promise.all([
        import('../../run.ts'), import('../info.ts'), import('../table.ts'),
      ]);
      // A path that cannot be written fails now, not after the run (io/write.ts, with
      // write-file-atomic and so worker_threads, is loaded only for a file).
      if (o.json && o.json !== '-') (await import('../../io/write.ts')).checkOutputFile(o.json);
      const t0 = Date.now();
      const bar = progressBar('run {sim} s simulated | {speed}× real time');
      const { report, violations } = runScenario(input, o.check, (now) => {
        const wall = Math.max(1, Date.now() - t0) / 1000;
        bar.update(0, 0, { sim: (now / 1e9).toFixed(2), speed: (now / 1e9 / wall).toFixed(1) });
      });
      bar.stop();
      if (o.json) await writeJson(o.json, report, out);
      if (o.json !== '-') out(o.format === 'info' ? formatInfo(report) : `${formatTable([report], [report.emulator.scenario])}\n`);
      for (const w of report.emulator.warnings) process.stderr.write(`postcopy-emu: warning: ${w}\n`);
      const cut = report.emulator.truncated;
      if (cut?.by === 'horizon') process.stderr.write(`postcopy-emu: warning: ${cut.reason}: its times are lower bounds\n`);
      if (cut?.by === 'limit') {
        process.stderr.write(`postcopy-emu: run stopped: ${cut.reason}\n`);
        fail();
      } else if (report.emulator.failure) process.stderr.write(`postcopy-emu: migration failed: ${report.emulator.failure}\n`);
      for (const v of violations) process.stderr.write(`postcopy-emu: invariant violated: ${v}\n`);
      if (violations.length > 0) fail();
    });
}
