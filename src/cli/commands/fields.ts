import type { Command } from 'commander';
import { UsageError } from '../../io/errors.ts';

export function registerFields(cmd: Command, out: (s: string) => void): void {
  cmd.command('fields')
    .description('list every scenario field: type, default, unit, allowed values and the source of the default')
    .argument('[prefix]', 'only the fields whose dotted path starts with this (ring, source., faults[])')
    .addHelpText('after', '\nPaths are what --set takes; a list (faults) is set whole, its items\' fields shown as faults[].NAME.\n')
    .action(async (prefix: string = '') => {
      // Loaded on use: the field table is built from the zod schema.
      const { formatFields, rowsWithPrefix } = await import('../../scenario/field-table.ts');
      const rows = rowsWithPrefix(prefix);
      if (rows.length === 0) {
        const tops = [...new Set(rowsWithPrefix('').map((r) => r.path.split(/[.[]/)[0]))];
        throw new UsageError(`fields: no field starts with "${prefix}"; paths start with ${tops.join(', ')}`);
      }
      out(formatFields(rows));
    });
}

export function registerSchema(cmd: Command, out: (s: string) => void): void {
  cmd.command('schema')
    .description('print the JSON Schema of a scenario file (for editors: see docs/model.md)')
    .action(async () => {
      const { scenarioFileSchema } = await import('../../scenario/field-docs.ts');
      out(`${JSON.stringify(scenarioFileSchema(), null, 2)}\n`);
    });
}
