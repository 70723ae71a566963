import { z } from 'zod';
import { deviceDefaults } from './devices-schema.ts';
import { placementOf, scenarioSchema, switchoverOf, type Scenario } from './schema.ts';

/**
 * A field that applies only with some values of another (its `when` metadata, as `postcopy-emu
 * fields` shows it): `path` from the root, `[]` for a list's items; `key` relative to the field's
 * own section, or from the root when dotted (`source.switchover`).
 */
interface Gate {
  path: string[];
  key: string[];
  values: string[];
  /** Where `path` has its list's `[]`, or −1. */
  list: number;
}

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType };
const def = (t: z.ZodType) => (t as unknown as { _zod: { def: Def } })._zod.def;

function collect(t: z.ZodType, path: string[], out: Gate[]): void {
  const when = z.globalRegistry.get(t)?.when;
  const m = when ? /^([\w.]+): (.+)$/.exec(when) : null;
  if (m) {
    const key = m[1]!.split('.');
    out.push({ path, key: key.length > 1 ? key : [...path.slice(0, -1), ...key], values: m[2]!.split(', '), list: path.indexOf('[]') });
  }
  const d = def(t);
  if (d.innerType) collect(d.innerType, path, out);
  else if (d.type === 'array' && d.element) collect(d.element, [...path, '[]'], out);
  else if (d.type === 'object') for (const [k, c] of Object.entries(d.shape!)) collect(c, [...path, k], out);
}

/** Built once, at the first scenario that asks. */
let gates: Gate[] | null = null;

/** `path` with a list's `[]` as item `i`. */
const at = (path: string[], i: number) => path.map((k) => (k === '[]' ? String(i) : k));

/** The value at the first `n` keys of `path` in `o` (undefined where a section is missing). */
function lookup(o: unknown, path: string[], n = path.length): unknown {
  for (let i = 0; i < n; i++) {
    if (typeof o !== 'object' || o === null) return undefined;
    o = (o as Record<string, unknown>)[path[i]!];
  }
  return o;
}

/**
 * The fields `input` gives that this run ignores, each as a warning: a setting for another
 * choice of the field it depends on (`devices.0.dma.logMaxRanges` with tracking `unmap`), which
 * would otherwise pass silently for the setting the user meant.
 */
export function ignoredFields(input: unknown, s: Scenario): string[] {
  gates ??= (() => {
    const out: Gate[] = [];
    collect(scenarioSchema, [], out);
    return out;
  })();
  // The choices as this run makes them, built at the first gated field the input gives (most
  // give none; a sweep or soak runs this for every run): the policy's where a setting is unset,
  // a device's kind-dependent fields (pacing, partialContexts) as its kind sets them.
  let root: unknown = null;
  const warnings: string[] = [];
  for (const g of gates) {
    const items = g.list < 0 ? 1 : (lookup(input, g.path, g.list) as unknown[] | undefined)?.length ?? 0;
    for (let i = 0; i < items; i++) {
      const path = g.list < 0 ? g.path : at(g.path, i);
      const parent = lookup(input, path, path.length - 1);
      if (typeof parent !== 'object' || parent === null || !Object.hasOwn(parent, path.at(-1)!)) continue;
      root ??= { ...s, devices: s.devices.map(deviceDefaults), pager: { ...s.pager, placement: placementOf(s) }, source: { ...s.source, switchover: switchoverOf(s) } };
      const key = g.list < 0 ? g.key : at(g.key, i);
      const actual = lookup(root, key);
      if (actual === undefined || g.values.includes(String(actual))) continue;
      warnings.push(`${path.join('.')} is ignored: it applies with ${key.join('.')} ${g.values.join(' or ')}, and this run has ${String(actual)}`);
    }
  }
  return warnings;
}
