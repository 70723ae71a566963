import { z } from 'zod';
import { presets } from './presets.ts';
import { scenarioSchema } from './schema.ts';

/** The part of JSON Schema that z.toJSONSchema writes for the scenario, plus the fields' metadata. */
export interface JsonSchema {
  $schema?: string;
  title?: string;
  description?: string;
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  unit?: string;
  source?: string;
  when?: string;
  [k: string]: unknown;
}

/** One settable field as `postcopy-emu fields` and docs/model.md show it. */
export interface FieldRow {
  /** Dotted, as `--set` takes it; a list's items are `faults[].kind` (the list is set whole). */
  path: string;
  /** The setting it applies to (`kind: buckets`, `policy: bubbling`), or ''. */
  when: string;
  type: string;
  default: string;
  unit: string;
  allowed: string;
  source: string;
}

/** An editor's hover text: what applies when, the source of the default, the unit. */
function describe(s: JsonSchema): string {
  const when = s.when ? `Applies with ${s.when}. ` : '';
  return `${when}${s.source}${s.unit ? ` [${s.unit}]` : ''}`;
}

/** The scenario's fields as JSON Schema (input side: every default optional), metadata included. */
export function fieldsJsonSchema(): JsonSchema {
  return z.toJSONSchema(scenarioSchema, {
    io: 'input',
    // yaml-language-server and most editors understand draft-07 best.
    target: 'draft-07',
    override: ({ jsonSchema }) => {
      const s = jsonSchema as JsonSchema;
      if (typeof s.source === 'string') s.description = describe(s);
    },
  }) as JsonSchema;
}

/** The JSON Schema of a scenario file: the fields plus the file-only `preset` key. */
export function scenarioFileSchema(): JsonSchema {
  const { $schema, properties, ...rest } = fieldsJsonSchema();
  const preset: JsonSchema = {
    type: 'string',
    enum: [...presets.keys()],
    description: 'Start from this preset (postcopy-emu presets NAME prints it); the file\'s other fields override it.',
  };
  return {
    $schema,
    title: 'postcopy-emu scenario',
    description: 'A scenario file for `postcopy-emu run FILE`; every field is optional (postcopy-emu fields lists them).',
    ...rest,
    properties: { preset, ...properties },
  };
}

/** Every settable field, in schema order; a union's fields once per set of variants that share them. */
export function fieldRows(schema: JsonSchema = fieldsJsonSchema()): FieldRow[] {
  const rows: FieldRow[] = [];
  walk(schema, '', { required: false, when: '' }, rows);
  return rows;
}

interface Context {
  required: boolean;
  when: string;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
const both = (...when: (string | undefined)[]) => when.filter(Boolean).join('; ');

function walk(s: JsonSchema, path: string, ctx: Context, rows: FieldRow[]): void {
  if (s.oneOf) return union(s, path, ctx, rows);
  // A titled object (range, window) is one value; other objects are sections to descend into.
  if (s.type === 'object' && s.title === undefined) {
    for (const [k, child] of Object.entries(s.properties ?? {})) {
      walk(child, join(path, k), { required: s.required?.includes(k) ?? false, when: ctx.when }, rows);
    }
    return;
  }
  rows.push(leaf(s, path, ctx));
  const items = s.items;
  if (items && (items.oneOf || (items.type === 'object' && items.title === undefined))) {
    walk(items, `${path}[]`, { required: true, when: ctx.when }, rows);
  }
}

/** A discriminated union: its discriminator, then each field with the variants that have it. */
function union(s: JsonSchema, path: string, ctx: Context, rows: FieldRow[]): void {
  const variants = s.oneOf!;
  const props = (v: JsonSchema) => v.properties ?? {};
  const disc = Object.keys(props(variants[0]!)).find((k) => variants.every((v) => props(v)[k]?.const !== undefined));
  if (disc === undefined) throw new Error(`${path}: a union without a discriminator`);
  const kinds = variants.map((v) => String(props(v)[disc]!.const));
  const given = (s.default as Record<string, unknown> | undefined)?.[disc];
  rows.push({
    path: join(path, disc), when: ctx.when, type: 'choice', allowed: kinds.join(', '),
    default: given === undefined ? (ctx.required ? 'required' : 'unset') : String(given),
    unit: '–', source: s.source ?? '',
  });
  // Same name and same schema in several variants: one row naming them all.
  const groups = new Map<string, { key: string; schema: JsonSchema; required: boolean; kinds: string[] }>();
  variants.forEach((v, i) => {
    for (const [key, schema] of Object.entries(props(v))) {
      if (key === disc) continue;
      const required = v.required?.includes(key) ?? false;
      const id = `${key}\0${required}\0${JSON.stringify(schema)}`;
      const g = groups.get(id);
      if (g) g.kinds.push(kinds[i]!);
      else groups.set(id, { key, schema, required, kinds: [kinds[i]!] });
    }
  });
  for (const g of groups.values()) {
    const when = g.kinds.length === kinds.length ? ctx.when : both(ctx.when, `${disc}: ${g.kinds.join(', ')}`);
    walk(g.schema, join(path, g.key), { required: g.required, when }, rows);
  }
}

function leaf(s: JsonSchema, path: string, ctx: Context): FieldRow {
  return {
    path,
    when: both(ctx.when, s.when),
    type: typeOf(s),
    default: s.default !== undefined ? shown(s.default, s.unit) : ctx.required ? 'required' : 'unset',
    unit: s.unit ?? '–',
    allowed: allowed(s),
    source: s.source ?? '',
  };
}

function typeOf(s: JsonSchema): string {
  if (s.enum || s.const !== undefined) return 'choice';
  if (s.oneOf) return s.title ?? 'one of';
  // A list of untitled objects has its items' fields as rows of their own (`devices[].kind`).
  if (s.type === 'array') return `list of ${!s.items ? 'values' : s.items.type === 'object' && !s.items.title ? 'objects' : typeOf(s.items)}`;
  if (s.type === 'object') return `${s.title} {${Object.keys(s.properties ?? {}).join(', ')}}`;
  return s.type ?? 'any';
}

function allowed(s: JsonSchema): string {
  if (s.enum) return s.enum.join(', ');
  if (s.type === 'integer' || s.type === 'number') return bounds(s);
  if (s.type === 'boolean') return 'true, false';
  if (s.type === 'string') return s.minLength ? 'non-empty' : 'any text';
  if (s.type === 'array') {
    const min = s.minItems ? `at least ${s.minItems} item${s.minItems > 1 ? 's' : ''}` : '';
    const max = s.maxItems !== undefined ? `at most ${s.maxItems}` : '';
    return [min, max].filter(Boolean).join(', ') || 'any length';
  }
  if (s.type === 'object') return Object.entries(s.properties ?? {}).map(([k, c]) => `${k} ${bounds(c)}`).join(', ');
  return '–';
}

/** `1 … 2^30`, `> 0, ≤ 1`, `≥ 0`. */
function bounds(s: JsonSchema): string {
  const lo = s.exclusiveMinimum !== undefined ? `> ${num(s.exclusiveMinimum)}` : s.minimum !== undefined ? `≥ ${num(s.minimum)}` : '';
  const hi = s.exclusiveMaximum !== undefined ? `< ${num(s.exclusiveMaximum)}` : s.maximum !== undefined ? `≤ ${num(s.maximum)}` : '';
  if (lo.startsWith('≥') && hi.startsWith('≤')) return `${lo.slice(2)} … ${hi.slice(2)}`;
  return [lo, hi].filter(Boolean).join(', ') || 'any';
}

/** Large limits as the powers they are: 2^30, 2^31−1, 1e12. */
function num(n: number): string {
  if (!Number.isInteger(n) || Math.abs(n) < 1e6) return String(n);
  const k = Math.round(Math.log2(n + 1));
  if (2 ** k === n) return `2^${k}`;
  if (2 ** k === n + 1) return `2^${k}−1`;
  const e = Math.round(Math.log10(n));
  return 10 ** e === n ? `1e${e}` : String(n);
}

/** A default as YAML would write it, with a readable size or time beside big numbers. */
function shown(v: unknown, unit: string | undefined): string {
  if (typeof v !== 'number') return typeof v === 'string' && v !== '' ? v : JSON.stringify(v);
  return hint(v, unit) ? `${v} (${hint(v, unit)})` : String(v);
}

function hint(v: number, unit: string | undefined): string | null {
  if (unit === 'ns' && v >= 1e6) return v >= 1e9 ? `${v / 1e9} s` : `${v / 1e6} ms`;
  if (unit === 'bytes' && v >= 1024) {
    const big = [[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']] as const;
    const hit = big.find(([d]) => v % d === 0);
    if (hit) return `${v / hit[0]} ${hit[1]}`;
  }
  return null;
}
