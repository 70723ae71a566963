import { Command, CommanderError, Option } from 'commander';
import { renameSync, writeFileSync } from 'node:fs';
import { checkRun } from '../check/invariants.ts';
import { Emulator } from '../emulator.ts';
import { buildReport, type RunReport } from '../metrics/report.ts';
import { applySets, presetInput, readScenarioFile } from '../scenario/load.ts';
import { CORE_COMPARISON, presets } from '../scenario/presets.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { ScenarioError } from '../scenario/validate.ts';
import { formatTable } from './table.ts';

/** Bad input: one line on stderr naming the field, exit code 2. */
class UsageError extends Error {}

interface RunOptions {
  preset?: string;
  set: string[];
  seed?: string;
  json?: string;
  check?: boolean;
}

/** Runs one scenario and adds the wall-clock figures under emulator.host. */
export function runScenario(input: ScenarioInput, check = false): { report: RunReport & { emulator: { host: object } }; violations: string[] } {
  const t0 = process.hrtime.bigint();
  const emu = new Emulator(input).run();
  const wallNs = Number(process.hrtime.bigint() - t0);
  const violations = check ? checkRun(emu) : [];
  const report = buildReport(emu);
  const host = {
    'wall-ms': Math.round(wallNs / 1e3) / 1e3,
    'events-per-sec': Math.round(report.emulator.events / (wallNs / 1e9)),
    'peak-rss-bytes': process.resourceUsage().maxRSS * 1024,
  };
  return { report: { ...report, emulator: { ...report.emulator, host } }, violations };
}

function scenarioFrom(file: string | undefined, o: RunOptions): ScenarioInput {
  if (file && o.preset) throw new UsageError('give a scenario FILE or --preset, not both');
  let input: ScenarioInput = file ? readScenarioFile(file) : o.preset ? presetInput(o.preset) : {};
  if (o.seed !== undefined) {
    if (!/^\d+$/.test(o.seed)) throw new ScenarioError('--seed', `must be a non-negative integer, got "${o.seed}"`);
    input = { ...input, seed: Number(o.seed) };
  }
  return applySets(input, o.set);
}

/** Writes through a temp file and a rename, so a reader never sees half a file. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function program(out: (s: string) => void): Command {
  const cmd = new Command('postcopy-emu')
    .description('Deterministic emulator of postcopy live-migration paging')
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: (s) => process.stderr.write(s) });

  cmd.command('run')
    .description('run one scenario (a YAML/JSON FILE or --preset) and print its summary')
    .argument('[file]', 'scenario file, YAML or JSON')
    .option('-p, --preset <name>', 'start from a preset (see `presets`)')
    .option('-s, --set <path=value>', 'override a scenario field by dotted path (repeatable)', (v, acc: string[]) => [...acc, v], [])
    .option('--seed <n>', 'seed for every random stream')
    .option('--json <file>', 'write the full JSON result to FILE (- for stdout)')
    .option('--check', 'run the invariant checker; violations exit with code 1')
    .action((file: string | undefined, o: RunOptions) => {
      const input = scenarioFrom(file, o);
      const { report, violations } = runScenario(input, o.check);
      if (o.json) {
        const text = JSON.stringify(report, null, 2) + '\n';
        if (o.json === '-') out(text);
        else writeAtomic(o.json, text);
      }
      if (o.json !== '-') out(`${formatTable([report], [report.emulator.scenario])}\n`);
      for (const v of violations) process.stderr.write(`invariant violated: ${v}\n`);
      if (violations.length > 0) cmd.setOptionValueWithSource('failed', true, 'cli');
    });

  cmd.command('presets')
    .description('list the built-in scenarios')
    .action(() => {
      const w = Math.max(...[...presets.keys()].map((k) => k.length));
      for (const [name, p] of presets) out(`${name.padEnd(w)}  ${p.description ?? ''}\n`);
    });

  cmd.command('compare-presets')
    .description('run presets side by side (default: the four xen-2017 core presets)')
    .argument('[names...]', 'preset names')
    .addOption(new Option('--seed <n>', 'seed for every run'))
    .action((names: string[], o: { seed?: string }) => {
      const list = names.length > 0 ? names : CORE_COMPARISON;
      const reports = list.map((n) => runScenario(scenarioFrom(undefined, { preset: n, set: [], seed: o.seed })).report);
      out(`${formatTable(reports, list)}\n`);
    });
  return cmd;
}

/** The CLI entry point; returns the process exit code. */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const cmd = program(out);
  try {
    await cmd.parseAsync([...argv]);
    return cmd.getOptionValue('failed') ? 1 : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ScenarioError || e instanceof UsageError) {
      process.stderr.write(`postcopy-emu: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
