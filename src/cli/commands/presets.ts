import type { Command } from 'commander';
import { CORE_COMPARISON, presets } from '../../scenario/presets.ts';
import { scenarioFrom } from './run.ts';

export function registerPresets(cmd: Command, out: (s: string) => void): void {
  cmd.command('presets')
    .description('list the built-in scenarios')
    .action(() => {
      const w = Math.max(...[...presets.keys()].map((k) => k.length));
      for (const [name, p] of presets) out(`${name.padEnd(w)}  ${p.description ?? ''}\n`);
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
