import type { Command } from 'commander';
import { REPRODUCTIONS, REPRODUCTION_NAMES, isReproductionName } from '../../scenario/lifecycle-presets.ts';
import { UsageError } from '../../io/errors.ts';
import { collect } from '../io.ts';
import { progressBar } from '../progress.ts';
import { scenarioFrom } from './run.ts';
import type { ScenarioInput } from '../../scenario/schema.ts';

export function registerReproduce(cmd: Command, out: (s: string) => void): void {
  cmd.command('reproduce')
    .description(`run the presets that mirror a seed's experiment and print measured beside published (${REPRODUCTION_NAMES.join(' or ')}), or a real sweep beside the model (real DIR)`)
    .argument('<name>', `${REPRODUCTION_NAMES.join(' | ')} | real`)
    .argument('[dir]', 'with real: a directory written by `postcopy-emu real sweep`')
    .option('-s, --set <path=value>', 'override a scenario field in every preset (repeatable), e.g. a what-if link rate', collect, [])
    .option('--seed <n>', 'seed for every run')
    .option('--json', 'print {measured, published} as JSON instead of the table')
    .option('--wire <mbps>', 'with real: the loopback wire the model runs on, Mbit/s (default 7780: what QEMU moved uncapped on this host)')
    .option('--host <file>', 'with real: the costs `live --calibrate --output FILE` measured on the host of the real runs')
    .action(async (name: string, dir: string | undefined, o: { set: string[]; seed?: string; json?: boolean; wire?: string; host?: string }) => {
      if (name === 'real') {
        if (dir === undefined) throw new UsageError('reproduce real needs the directory a `postcopy-emu real sweep` wrote');
        if (o.set.length > 0 || o.seed !== undefined) throw new UsageError('reproduce real runs the real sweep\'s own scenarios and seeds: leave out --set and --seed');
        const { LOOPBACK, compareReal, formatReal, readRealHost } = await import('../../reproduce/real.ts');
        const wire = o.wire === undefined ? LOOPBACK.rateMbps : Number(o.wire);
        if (!(wire > 0 && wire <= 1e7)) throw new UsageError(`--wire: must be a rate in Mbit/s above 0 and up to 10000000, got ${o.wire}`);
        const host = { wireMbps: wire, ...(o.host === undefined ? {} : { costs: readRealHost(o.host) }) };
        const bar = progressBar('reproduce real {value}/{total} model runs');
        const rows = compareReal(dir, (i, total) => bar.update(i, total, {}), host);
        bar.stop();
        out(o.json ? `${JSON.stringify(rows, null, 2)}\n` : formatReal(rows));
        return;
      }
      if (dir !== undefined) throw new UsageError(`reproduce ${name} takes no directory`);
      if (o.wire !== undefined || o.host !== undefined) throw new UsageError(`reproduce ${name}: ${o.wire !== undefined ? '--wire' : '--host'} is for reproduce real`);
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
