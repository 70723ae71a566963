import type { Command } from 'commander';
import { CORE_COMPARISON, presets } from '../../scenario/presets.ts';
import { scenarioFrom } from './run.ts';

/**
 * A preset as the scenario file it is: `run FILE` on it gives what `--preset NAME` gives. The
 * description moves into the heading comment; every field the preset leaves out keeps its default.
 */
async function presetYaml(name: string): Promise<string> {
  // Loaded on use: listing the presets needs neither the YAML writer nor the loader.
  const [{ scenarioYaml }, { presetInput }] = await Promise.all([import('../../scenario/yaml.ts'), import('../../scenario/load.ts')]);
  const { name: _name, description, ...fields } = presetInput(name);
  return scenarioYaml([`${name}: ${description ?? ''}`, 'Run it with: postcopy-emu run FILE (a field left out takes its default: postcopy-emu fields)'], { name, ...fields });
}

export function registerPresets(cmd: Command, out: (s: string) => void): void {
  cmd.command('presets')
    .description('list the built-in scenarios, or print one as a YAML scenario file')
    .argument('[name]', 'print this preset as YAML, ready to edit and `run FILE`')
    .action(async (name?: string) => {
      if (name !== undefined) return out(await presetYaml(name));
      const w = Math.max(...[...presets.keys()].map((k) => k.length));
      for (const [n, p] of presets) out(`${n.padEnd(w)}  ${p.description ?? ''}\n`);
    });

  cmd.command('compare-presets')
    .description('run presets side by side (default: the four xen-2017 core presets)')
    .argument('[names...]', 'preset names')
    .option('--seed <n>', 'seed for every run')
    .action(async (names: string[], o: { seed?: string }) => {
      const list = names.length > 0 ? names : CORE_COMPARISON;
      const [{ runScenario }, { formatTable }] = await Promise.all([import('../../run.ts'), import('../table.ts')]);
      const inputs = await Promise.all(list.map((n) => scenarioFrom(undefined, { preset: n, set: [], seed: o.seed })));
      out(`${formatTable(inputs.map((i) => runScenario(i).report), list)}\n`);
    });
}
