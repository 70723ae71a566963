import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { z } from 'zod';
import { fieldRows, type JsonSchema } from '../src/scenario/field-docs.ts';
import { withFieldTables } from '../src/scenario/field-table.ts';
import { presetInput } from '../src/scenario/load.ts';
import { presets } from '../src/scenario/presets.ts';
import { scenarioSchema } from '../src/scenario/schema.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();
const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const oneLine = (err: string) => {
  expect(err.endsWith('\n')).toBe(true);
  expect(err.trimEnd().split('\n')).toHaveLength(1);
};

/** A run's JSON result without the wall-clock figures. */
async function result(...args: string[]): Promise<unknown> {
  const { code, out, err } = await cli('run', ...args, '--json', '-');
  expect(err).toBe('');
  expect(code).toBe(0);
  const r = JSON.parse(out) as { emulator: Record<string, unknown> };
  const { host: _host, ...emulator } = r.emulator;
  return { ...r, emulator };
}

describe('presets NAME', () => {
  it('prints the preset as a YAML scenario under a comment naming it', async () => {
    const { code, out, err } = await cli('presets', 'xen-2017-pure');
    expect(code).toBe(0);
    expect(err).toBe('');
    const lines = out.split('\n');
    expect(lines[0]).toBe('# xen-2017-pure: Pure postcopy of a 2 GiB guest, every page outstanding, device-model mapping storm on an 8-slot ring');
    expect(lines[2]).toBe('name: xen-2017-pure');
    expect(out).toContain('  region: { start: 262144, count: 65536 }\n');
    const doc = YAML.parse(out) as Record<string, Record<string, unknown>>;
    expect(doc.ring).toEqual({ capacity: 8 });
    expect(doc.mapper).toEqual({ mapping: { kind: 'all' }, request: 'page' });
    expect(doc.workload).toEqual({ kind: 'random', vcpus: 2, region: { start: 262_144, count: 65_536 }, writeFraction: 1 });
  });

  it('is, for every preset, the same scenario as --preset (bar the description, which is in the comment)', async () => {
    for (const name of presets.keys()) {
      const { code, out } = await cli('presets', name);
      expect(code).toBe(0);
      expect(out).not.toContain('&'); // shared objects are written out, not aliased
      expect(parseScenario(YAML.parse(out))).toEqual({ ...parseScenario(presetInput(name)), description: '' });
    }
  });

  it('run as a file gives the same result as --preset', async () => {
    for (const name of ['xen-2017-hybrid', 'recovery-link-cut']) {
      const path = join(dir, `${name}.yaml`);
      writeFileSync(path, (await cli('presets', name)).out);
      expect(await result(path)).toEqual(await result('--preset', name));
    }
  });

  it('an unknown name exits 2 with one line naming the choices', async () => {
    const { code, out, err } = await cli('presets', 'nope');
    expect(code).toBe(2);
    expect(out).toBe('');
    oneLine(err);
    expect(err).toBe(`postcopy-emu: preset: unknown preset "nope"; choose one of ${[...presets.keys()].join(', ')}\n`);
  });
});

describe('run --print-scenario', () => {
  it('prints the resolved scenario: preset, --set, --seed and every default, without running', async () => {
    const { code, out, err } = await cli('run', '--preset', 'xen-2017-hybrid', '--set', 'ring.capacity=64', '--seed', '9', '--print-scenario');
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).not.toMatch(/^status/m);
    expect(out.split('\n')[0]).toBe('# xen-2017-hybrid, resolved: every field with its value. Run it with: postcopy-emu run FILE');
    const s = YAML.parse(out) as ReturnType<typeof parseScenario>;
    expect(s.name).toBe('xen-2017-hybrid');
    expect(s.seed).toBe(9);
    expect(s.ring).toEqual({ capacity: 64, blackEye: false });
    expect(s.memory.outstanding).toEqual({ kind: 'ranges', ranges: [{ start: 262_144, count: 65_536 }] });
    // Defaults the preset does not set.
    expect(s.pager.loadPageNs).toBe(6400);
    expect(s.limits.horizonNs).toBe(3_600e9);
    expect(s.precopy.dirtying).toEqual({ kind: 'workload' });
    // It is complete: validating it again changes nothing.
    expect(parseScenario(s)).toEqual(s);
  });

  it('resolves a file that starts from a preset', async () => {
    const path = join(dir, 'storm.yaml');
    writeFileSync(path, 'preset: xen-2017-pure\nmapper: {mapping: {kind: buckets, count: 16}}\n');
    const { code, out } = await cli('run', path, '--print-scenario');
    expect(code).toBe(0);
    const s = YAML.parse(out) as ReturnType<typeof parseScenario>;
    expect(s.mapper.mapping).toEqual({ kind: 'buckets', bucketPages: 256, count: 16 });
    expect(s.mapper.request).toBe('page');
  });

  it('bad input still exits 2 with one line', async () => {
    const { code, out, err } = await cli('run', '--preset', 'xen-2017-hybrid', '--set', 'ring.capacity=0', '--print-scenario');
    expect(code).toBe(2);
    expect(out).toBe('');
    oneLine(err);
    expect(err).toMatch(/^postcopy-emu: ring\.capacity: /);
  });
});

/**
 * The paths a user can set, read straight off the JSON Schema: sections are descended into, a
 * union contributes its discriminator and each variant's fields, a list of unions or of untitled
 * objects (devices) its items' fields as `path[]`; anything else (a number, a choice, a titled
 * range) is one field.
 */
function schemaLeaves(s: JsonSchema, path: string, out: Set<string>): Set<string> {
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (s.oneOf) {
    for (const v of s.oneOf) for (const [k, c] of Object.entries(v.properties ?? {})) schemaLeaves(c, at(k), out);
  } else if (s.type === 'object' && !s.title) {
    for (const [k, c] of Object.entries(s.properties ?? {})) schemaLeaves(c, at(k), out);
  } else {
    out.add(path);
    if (s.items?.oneOf || (s.items?.type === 'object' && !s.items.title)) schemaLeaves(s.items, `${path}[]`, out);
  }
  return out;
}

/** `fields` output as rows of cells (columns are two or more spaces apart). */
async function fieldsTable(...prefix: string[]): Promise<string[][]> {
  const { code, out, err } = await cli('fields', ...prefix);
  expect(code).toBe(0);
  expect(err).toBe('');
  const [header, ...rows] = out.trimEnd().split('\n').map((l) => l.split(/ {2,}/));
  expect(header).toEqual(['field', 'type', 'default', 'unit', 'allowed', 'source']);
  return rows;
}

const pathOf = (row: string[]) => row[0]!.replace(/ \(.*\)$/, '');

describe('fields', () => {
  it('lists every leaf of the schema, each with a unit (or –) and a source', async () => {
    const rows = await fieldsTable();
    const leaves = schemaLeaves(z.toJSONSchema(scenarioSchema, { io: 'input' }) as JsonSchema, '', new Set());
    expect(leaves.size).toBeGreaterThan(100);
    expect(leaves).toContain('mapper.mapping.count');
    expect(leaves).toContain('faults[].restartNs');
    expect(leaves).toContain('devices[].dma.tracking');
    expect(leaves).toContain('migration.deviceChannel');
    expect(new Set(rows.map(pathOf))).toEqual(leaves);
    for (const row of rows) {
      expect(row).toHaveLength(6);
      expect(row[3]).toMatch(/^(–|[\w%/]+)$/);
      expect(row[5]!.length).toBeGreaterThan(3);
    }
    expect(fieldRows().filter((r) => r.source === '')).toEqual([]);
  });

  it('gives type, default, unit, range and source, and names the variant a field belongs to', async () => {
    const rows = await fieldsTable();
    const row = (label: string) => rows.find((r) => r[0] === label);
    expect(row('ring.capacity')).toEqual(['ring.capacity', 'integer', '8', 'slots', '1 … 65536',
      'one 4 KiB shared page, 64-byte header, 312-byte request: (4096 − 64) / 312 = 12.9, rounded down to a power of two (RFC)']);
    expect(row('link.sendBufferBytes')?.slice(1, 5)).toEqual(['integer', '4194304 (4 MiB)', 'bytes', '0 … 2^40']);
    expect(row('mapper.mapping.kind')?.slice(1, 5)).toEqual(['choice', 'none', '–', 'none, all, ranges, buckets']);
    expect(row('mapper.mapping.count (kind: buckets)')?.slice(1, 6)).toEqual(['integer', 'required', 'buckets', '1 … 2^30', 'required: no default']);
    expect(row('mapper.mapping.bucketPages (kind: buckets)')?.[5]).toBe('QEMU\'s Xen map cache: 1 MiB buckets on 64-bit hosts');
    expect(row('source.pivots (policy: bubbling)')?.[2]).toBe('1');
    expect(row('precopy.dirtying.workers (kind: stress)')?.[5]).toBe('seed 001\'s `stress --vm 4 --vm-keep --vm-bytes 400M`');
    expect(row('faults[].durationNs (kind: link-cut, degrade, backchannel-loss)')?.slice(1, 4)).toEqual(['integer', 'required', 'ns']);
    expect(row('faults[].at')?.[2]).toBe('unset');
    expect(row('limits.horizonNs')?.[2]).toBe('3600000000000 (3600 s)');
    expect(row('mapper.order')?.[5]).toBe('none yet');
  });

  it('PREFIX keeps the fields whose path starts with it', async () => {
    expect((await fieldsTable('ring')).map((r) => r[0])).toEqual(['ring.capacity', 'ring.blackEye', 'ring.unbounded']);
    const source = await fieldsTable('source.');
    expect(source).toHaveLength(17);
    expect(source.every((r) => r[0]!.startsWith('source.'))).toBe(true);
    expect((await fieldsTable('faults[].w')).map((r) => r[0])).toEqual(['faults[].window']);
  });

  it('an unknown prefix exits 2 with one line', async () => {
    const { code, out, err } = await cli('fields', 'nosuch');
    expect(code).toBe(2);
    expect(out).toBe('');
    oneLine(err);
    expect(err).toMatch(/^postcopy-emu: fields: no field starts with "nosuch"; paths start with name, description, seed, memory, ring, /);
  });
});

describe('schema', () => {
  it('prints the JSON Schema of a scenario file, with units and sources as descriptions', async () => {
    const { code, out, err } = await cli('schema');
    expect(code).toBe(0);
    expect(err).toBe('');
    const s = JSON.parse(out) as JsonSchema;
    expect(s.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(s.type).toBe('object');
    expect(s.additionalProperties).toBe(false);
    expect(s.properties!.preset!.enum).toEqual([...presets.keys()]);
    const capacity = s.properties!.ring!.properties!.capacity!;
    expect(capacity).toMatchObject({ type: 'integer', minimum: 1, maximum: 65_536, default: 8, unit: 'slots' });
    expect(capacity.description).toBe('one 4 KiB shared page, 64-byte header, 312-byte request: (4096 − 64) / 312 = 12.9, rounded down to a power of two (RFC) [slots]');
    expect(s.properties!.source!.properties!.pivots!.description).toMatch(/^Applies with policy: bubbling\. /);
    // Every preset fits it: its keys, and its sections' keys, are properties of the schema.
    for (const [name, p] of presets) {
      for (const [key, value] of Object.entries(p)) {
        const prop = s.properties![key];
        expect(prop, `${name}: ${key}`).toBeDefined();
        if (prop!.type === 'object' && prop!.properties) {
          for (const k of Object.keys(value as object)) expect(prop!.properties[k], `${name}: ${key}.${k}`).toBeDefined();
        }
      }
    }
  });
});

describe('docs/model.md', () => {
  it('holds exactly the parameter tables generated from the schema', () => {
    const doc = readFileSync(new URL('../docs/model.md', import.meta.url), 'utf8');
    expect(withFieldTables(doc)).toBe(doc);
    expect(doc).toContain('| `ring.capacity` | integer | 8 | slots | 1 … 65536 | one 4 KiB shared page');
    expect(doc).toContain('| `precopy.downtimeLimitMs` | integer | 300 | ms | 1 … 1e7 | QEMU `downtime-limit` default');
  });
});
