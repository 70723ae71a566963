import type { Command } from 'commander';
import { REPRODUCTIONS, REPRODUCTION_NAMES, isReproductionName } from '../../scenario/lifecycle-presets.ts';
import { UsageError } from '../../io/errors.ts';
import { collect } from '../io.ts';
import { progressBar } from '../progress.ts';
import { scenarioFrom } from './run.ts';
import type { ScenarioInput } from '../../scenario/schema.ts';

export function registerReproduce(cmd: Command, out: (s: string) => void): void {
  cmd.command('reproduce')
    .description(`run the presets that mirror a seed's experiment and print measured beside published (${REPRODUCTION_NAMES.join(' or ')})`)
    .argument('<name>', REPRODUCTION_NAMES.join(' | '))
    .option('-s, --set <path=value>', 'override a scenario field in every preset (repeatable), e.g. a what-if link rate', collect, [])
    .option('--seed <n>', 'seed for every run')
    .option('--json', 'print {measured, published} as JSON instead of the table')
    .action(async (name: string, o: { set: string[]; seed?: string; json?: boolean }) => {
      if (!isReproductionName(name)) throw new UsageError(`unknown reproduction "${name}"; choose one of ${REPRODUCTION_NAMES.join(', ')}`);
      const { formatReproduction, reproductionJson, runReproduction } = await import('../../reproduce/reproduce.ts');
      // Every preset's scenario is resolved before the first run, so a bad --set fails at once.
      const inputs = new Map<string, ScenarioInput>();
      for (const preset of REPRODUCTIONS[name]) inputs.set(preset, await scenarioFrom(undefined, { preset, set: o.set, seed: o.seed }));
      const bar = progressBar('reproduce {name} {value}/{total} | {preset}');
      const reports = runReproduction(name, (preset) => inputs.get(preset)!,
        (i, total, preset) => bar.update(i, total, { name, preset }));
      bar.stop();
      for (const r of reports) {
        for (const w of r.emulator.warnings) process.stderr.write(`postcopy-emu: warning: ${r.emulator.scenario}: ${w}\n`);
      }
      out(o.json ? `${JSON.stringify(reproductionJson(name, reports), null, 2)}\n` : formatReproduction(name, reports, o.set));
    });
}
