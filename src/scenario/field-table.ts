import { fieldRows, type FieldRow } from './field-docs.ts';

/** `path (when)`: the name a user types, then the setting it applies to. */
const label = (r: FieldRow): string => (r.when ? `${r.path} (${r.when})` : r.path);

const HEADER = ['field', 'type', 'default', 'unit', 'allowed', 'source'];
const cells = (r: FieldRow) => [label(r), r.type, r.default, r.unit, r.allowed, r.source];

/** Rows whose path starts with `prefix` (`ring`, `source.`, `faults[]`). */
export function rowsWithPrefix(prefix: string): FieldRow[] {
  return fieldRows().filter((r) => r.path.startsWith(prefix));
}

/** The terminal listing: aligned columns, the source last and unpadded (it is long). */
export function formatFields(rows: readonly FieldRow[]): string {
  const table = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...table.map((c) => c[i]!.length)));
  return table.map((c) => c.map((s, i) => (i < c.length - 1 ? s.padEnd(widths[i]!) : s)).join('  ')).join('\n') + '\n';
}

const escape = (s: string) => s.replaceAll('|', '\\|');

/** The same rows as a Markdown table (docs/model.md). */
export function markdownFields(rows: readonly FieldRow[]): string {
  const line = (c: string[]) => `| ${c.map(escape).join(' | ')} |`;
  const body = rows.map((r) => line([`\`${r.path}\`${r.when ? ` (${r.when})` : ''}`, ...cells(r).slice(1)]));
  return [line(['parameter', ...HEADER.slice(1)]), `|${'---|'.repeat(HEADER.length)}`, ...body].join('\n') + '\n';
}

/** The sections docs/model.md lists under "Lifecycle" and "Devices"; the core table has every other field. */
const LIFECYCLE = new Set(['migration', 'precopy', 'multifd']);
const top = (r: FieldRow) => r.path.split(/[.[]/)[0]!;
const DOC_TABLES: Record<string, (r: FieldRow) => boolean> = {
  core: (r) => !LIFECYCLE.has(top(r)) && top(r) !== 'devices',
  lifecycle: (r) => LIFECYCLE.has(top(r)),
  devices: (r) => top(r) === 'devices',
};

/**
 * docs/model.md with its parameter tables regenerated from the schema: each sits between
 * `<!-- fields:NAME -->` and `<!-- /fields:NAME -->`. Throws when a marker is missing.
 */
export function withFieldTables(doc: string): string {
  const rows = fieldRows();
  let out = doc;
  for (const [name, keep] of Object.entries(DOC_TABLES)) {
    const open = `<!-- fields:${name}: generated from the schema (src/scenario/*schema.ts) by npm run docs:model -->\n`;
    const close = `<!-- /fields:${name} -->`;
    const from = out.indexOf(open), to = out.indexOf(close);
    if (from < 0 || to < from) throw new Error(`docs/model.md: no ${open.trim()} … ${close} block`);
    out = out.slice(0, from + open.length) + markdownFields(rows.filter(keep)) + out.slice(to);
  }
  return out;
}
