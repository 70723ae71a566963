import { argCheck } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import { readBounded } from '../io/read.ts';
import YAML from 'yaml';
import { presets } from './presets.ts';
import type { ScenarioInput } from './schema.ts';
import { ScenarioError } from './error.ts';

type Json = Record<string, unknown>;

/** A preset by name, as a fresh copy; ScenarioError naming the choices when unknown. */
export function presetInput(name: string): ScenarioInput {
  const p = presets.get(name);
  if (!p) throw new ScenarioError('preset', `unknown preset "${name}"; choose one of ${[...presets.keys()].join(', ')}`);
  return structuredClone(p);
}

/** A scenario or sweep file is written by hand: 4 MiB holds 65,536 ranges several times over. */
export const MAX_SCENARIO_BYTES = 4 * 2 ** 20;

/**
 * Reads a YAML or JSON scenario file. A top-level `preset: NAME` starts from that preset and
 * the file's other fields override it.
 */
export function readScenarioFile(path: string): ScenarioInput {
  argCheck(typeof path === 'string', 'readScenarioFile.path', 'must be a file\'s path (a string)');
  let text: string;
  try {
    text = readBounded(path, MAX_SCENARIO_BYTES, 'scenario file').toString('utf8');
  } catch (e) {
    if (e instanceof PostcopyEmuError) throw new ScenarioError('file', e.message);
    throw new ScenarioError('file', `cannot read ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    // JSON is YAML, but the YAML parser takes seconds over a few MB of JSON.
    doc = /\.json$/i.test(path) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new ScenarioError('file', `${path} is not valid YAML or JSON: ${firstLine(e)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ScenarioError('file', `${path} must hold a mapping of scenario fields`);
  const { preset, ...rest } = doc as Json;
  if (preset === undefined) return rest as ScenarioInput;
  if (typeof preset !== 'string') throw new ScenarioError('preset', 'must be a preset name');
  return merge(presetInput(preset) as Json, rest) as ScenarioInput;
}

/**
 * Deep merge of plain objects: `over` wins; arrays and scalars replace, and so does an object of
 * another `kind` (`memory.outstanding: {kind: all}` over a preset's `{kind: ranges, ranges: …}`
 * is the new choice, not its fields added to the old one's).
 */
export function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlain(v) && isPlain(b) && (v.kind === undefined || v.kind === b.kind) ? merge(b, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Applies `path=value` overrides (value in YAML flow syntax: 8, true, range, {kind: all}). A
 * number in the path indexes a list that is there (`devices.0.preCopy=false`). The result is
 * validated by the schema afterwards, so a bad path or value names its field.
 */
export function applySets(input: ScenarioInput, sets: readonly string[]): ScenarioInput {
  argCheck(Array.isArray(sets) && sets.every((x) => typeof x === 'string'), 'applySets.sets', 'must be a list of "path=value" strings');
  const root = structuredClone(input) as Json;
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new ScenarioError('--set', `"${set}" must look like path=value, e.g. ring.capacity=64`);
    const path = set.slice(0, eq).trim();
    const keys = path.split('.');
    if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) {
      throw new ScenarioError('--set', `"${path}" is not a valid dotted path`);
    }
    let value: unknown;
    try {
      value = YAML.parse(set.slice(eq + 1));
    } catch (e) {
      throw new ScenarioError(path, `value is not valid YAML: ${firstLine(e)}`);
    }
    let o: Json | unknown[] = root;
    for (const [i, k] of keys.entries()) {
      const list = Array.isArray(o);
      if (list && !(/^\d+$/.test(k) && Number(k) < (o as unknown[]).length)) {
        throw new ScenarioError(path, `${keys.slice(0, i).join('.')} is a list of ${(o as unknown[]).length}: ${k} must be an index from 0 to ${(o as unknown[]).length - 1}`);
      }
      const at = list ? Number(k) : k;
      if (i === keys.length - 1) {
        (o as Record<string | number, unknown>)[at] = value;
        break;
      }
      const next = (o as Record<string | number, unknown>)[at];
      if (next === undefined) (o as Json)[k] = {};
      else if (!isPlain(next) && !Array.isArray(next)) throw new ScenarioError(path, `${k} is not a section`);
      o = (o as Record<string | number, unknown>)[at] as Json | unknown[];
    }
  }
  return root as ScenarioInput;
}

/** The parser's message without its source excerpt. */
function firstLine(e: unknown): string {
  return (e as Error).message.split('\n')[0]!.replace(/:\s*$/, '');
}
