import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { cliHarness } from './cli-harness.ts';
import { fieldsJsonSchema, type JsonSchema } from '../src/scenario/field-docs.ts';

/**
 * Plausible, clumsy and hostile scenario and sweep files: whatever they hold, the CLI ends with
 * exit 0, 1 with a reason, or 2 with one line; never a stack trace, never past its event bound.
 */
const cli = cliHarness();
const dir = mkdtempSync(join(tmpdir(), 'pce-fuzz-'));
const MAX_EVENTS = 100_000;
let files = 0;
const file = (text: string) => {
  const p = join(dir, `f${files++}.yaml`);
  writeFileSync(p, text);
  return p;
};

const junk = fc.oneof(fc.constant(null), fc.string({ maxLength: 8 }), fc.constantFrom(-1, 0, 1.5, 1e308, Number.NaN, 2 ** 53, '__proto__', [], {}));
/** A plausible value, or (hostile) sometimes garbage. */
const field = <T>(a: fc.Arbitrary<T>, hostile: boolean) => (hostile ? fc.oneof(a, junk) : a);
const section = <T extends Record<string, fc.Arbitrary<unknown>>>(shape: T) => fc.option(fc.record(shape, { requiredKeys: [] }), { nil: undefined });

function scenario(hostile: boolean) {
  const f = <T>(a: fc.Arbitrary<T>) => field(a, hostile);
  return fc.record({
    preset: fc.option(fc.constantFrom('xen-2017-hybrid', 'xen-2017-pure-range', 'qemu-2022-idle-precopy', 'recovery-link-cut'), { nil: undefined }),
    memory: section({ pages: f(fc.constantFrom(524_288, 1_048_576, 2 ** 30)), zeroFraction: f(fc.double({ min: 0, max: 1, noNaN: true })) }),
    ring: section({ capacity: f(fc.integer({ min: 1, max: 128 })), blackEye: f(fc.boolean()) }),
    link: section({ rateMbps: f(fc.constantFrom(0.001, 10, 1000, 1e7)), latencyNs: f(fc.integer({ min: 0, max: 1e6 })) }),
    source: section({ policy: f(fc.constantFrom('xen', 'qemu', 'demand', 'bubbling', 'adaptive-chunk', 'prefault')) }),
    mapper: section({
      retryNs: f(fc.constantFrom(0, 100_000)), timerSlackNs: f(fc.constantFrom(0, 50_000)), mapCallNs: f(fc.constantFrom(0, 1000)),
      perGfnNs: f(fc.constantFrom(0, 100)), request: f(fc.constantFrom('page', 'range')),
    }),
    workload: section({ kind: f(fc.constantFrom('idle', 'sequential', 'random', 'hot-set')), vcpus: f(fc.integer({ min: 1, max: 8 })) }),
    limits: section({ horizonNs: f(fc.constantFrom(1, 1e6, 1e9)), maxEventsPerInstant: f(fc.constantFrom(1, 1000)) }),
    unknown: hostile ? fc.option(fc.dictionary(fc.string({ maxLength: 6 }), junk, { minKeys: 1, maxKeys: 2 }), { nil: undefined }) : fc.constant(undefined),
  }, { requiredKeys: [] }).map(({ unknown, ...doc }) => ({ ...doc, ...unknown }));
}

const distIndex = new URL('../dist/index.js', import.meta.url).href;

/**
 * Runs `base` with each of `sets` through the built library (`npm test` builds first) in one child
 * process: a loop inside one event cannot be interrupted in-process, so a hang fails the test
 * after 120 s instead of stopping the suite. One JSON line per set: its status, or the field of
 * the ScenarioError that refused it.
 */
function boundsChild(base: unknown, sets: string[]): Promise<string[]> {
  const script = `const { Emulator, applySets, PostcopyEmuError } = await import(${JSON.stringify(distIndex)});
    const { base, sets } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
    for (const set of sets) {
      let outcome;
      try { outcome = new Emulator(applySets(base, [set])).run().status; }
      catch (e) { outcome = e instanceof PostcopyEmuError ? 'refused ' + e.field : 'threw ' + (e && e.stack); }
      console.log(JSON.stringify({ set, outcome }));
    }`.replace('require(\'node:fs\')', '(await import(\'node:fs\'))');
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 120_000, maxBuffer: 64 << 20 }, (e, out, err) => {
      if (e) reject(new Error(`${e.killed ? 'still running after 120 s' : e.message}; last case: ${out.trim().split('\n').at(-1)}; ${err}`));
      else resolve(out.trim().split('\n'));
    });
    child.stdin!.end(JSON.stringify({ base, sets }));
  });
}

/** YAML of the document; hostile: sometimes cut short or with a byte changed. */
const text = (hostile: boolean) => (doc: unknown) => fc.tuple(fc.nat(99), fc.nat(10_000), fc.integer({ min: 32, max: 126 })).map(([mode, at, byte]) => {
  const t = YAML.stringify(doc);
  if (!hostile || mode < 50) return t;
  const i = at % Math.max(1, t.length);
  return mode < 75 ? t.slice(0, i) : t.slice(0, i) + String.fromCharCode(byte) + t.slice(i + 1);
});

/** The exit contract: 0, 1 with a reason, or 2 with one line; no stack trace anywhere. */
function contract(r: { code: number; out: string; err: string }): void {
  expect([0, 1, 2]).toContain(r.code);
  expect(r.err + r.out).not.toMatch(/^\s+at /m);
  if (r.code === 2) {
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^postcopy-emu: [^\n]+\n$/);
  }
}

async function runScenario(yaml: string): Promise<number> {
  const r = await cli('run', file(yaml), '--set', `limits.maxEvents=${MAX_EVENTS}`, '--json', '-');
  contract(r);
  if (r.code === 1) expect(r.err).toMatch(/^postcopy-emu: (run stopped|invariant violated|migration failed): /m);
  if (r.code !== 2) expect((JSON.parse(r.out) as { emulator: { events: number } }).emulator.events).toBeLessThanOrEqual(MAX_EVENTS);
  return r.code;
}

function sweep(hostile: boolean) {
  const f = <T>(a: fc.Arbitrary<T>) => field(a, hostile);
  const base = { preset: 'xen-2017-hybrid', set: { 'memory.pages': 4096, 'memory.outstanding': { kind: 'all' }, 'workload.region': { start: 0, count: 1024 }, 'limits.maxEvents': 20_000 } };
  return fc.record({
    base: f(fc.constant(base)),
    axes: f(fc.dictionary(fc.constantFrom('ring.capacity', 'link.rateMbps', 'mapper.retryNs'), fc.array(f(fc.integer({ min: 1, max: 64 })), { minLength: 1, maxLength: 2 }), { minKeys: 1, maxKeys: 2 })),
    replications: f(fc.constantFrom(1, 2, 1e7)),
    seed: f(fc.nat()),
  }, { requiredKeys: ['base', 'axes'] });
}

async function runSweep(yaml: string): Promise<number> {
  const r = await cli('sweep', file(yaml), '-o', join(dir, `out${files}`), '-j', '1');
  contract(r);
  // Exit 1: every run finished, and the failed ones are listed with their reasons.
  if (r.code === 1) expect(r.out).toMatch(/: \d+ ok, [1-9]\d* failed \(\d+ resumed from runs\.jsonl, \d+ run now\)\n {2}run \d+ \{.*\}: .+/);
  return r.code;
}

/** Every number field of the plain sections (not lists, not unions) with its bounds. */
function numberFields(s: JsonSchema, path = '', out: { path: string; min: number; max: number }[] = []) {
  for (const [k, c] of Object.entries(s.properties ?? {})) {
    const p = path ? `${path}.${k}` : k;
    if (c.type === 'object' && c.title === undefined && !c.oneOf) numberFields(c, p, out);
    else if ((c.type === 'integer' || c.type === 'number') && c.maximum !== undefined) {
      out.push({ path: p, min: c.minimum ?? (c.exclusiveMinimum === 0 ? 5e-324 : c.exclusiveMinimum!), max: c.maximum });
    }
  }
  return out;
}

/**
 * Each field at its bound, on a small hybrid migration that reaches every layer (precopy with
 * the workload's writes, the storm on the ring, range requests, the background push). An edge
 * value once looped inside one event where no event cap reaches (1 ns think times in precopy,
 * records of 65,536 pages with range requests): the run must still end within the contract.
 */
const EDGE_BASE = [
  'memory: { pages: 4096 }',
  'migration: { mode: hybrid, switchAfterIterations: 1 }',
  // A 1 ms downtime limit keeps what is pending at the switch above QEMU's threshold: it switches.
  'precopy: { policy: qemu, downtimeLimitMs: 1, dirtying: { kind: workload } }',
  'workload: { kind: random, vcpus: 2, region: { start: 0, count: 1024 } }',
  'mapper: { mapping: { kind: buckets, bucketPages: 8, count: 64 }, request: range }',
  `limits: { maxEvents: ${MAX_EVENTS}, horizonNs: 600000000000 }`,
].join('\n');

describe('fuzzed inputs', () => {
  it('every field at either bound ends: a result or a ScenarioError naming a field, never a loop no cap reaches', async () => {
    // memory.pages at 2^30 needs 24 GiB: refused or not by the host's memory, a test of the host.
    const fields = numberFields(fieldsJsonSchema()).filter((f) => f.path !== 'memory.pages' && !f.path.startsWith('limits.'));
    expect(fields.length).toBeGreaterThan(60);
    const sets = fields.flatMap((f) => [`${f.path}=${f.min}`, `${f.path}=${f.max}`]);
    const lines = await boundsChild(YAML.parse(EDGE_BASE), sets);
    const outcomes = lines.map((l) => JSON.parse(l) as { set: string; outcome: string });
    expect(outcomes.map((o) => o.set)).toEqual(sets);
    expect(outcomes.filter((o) => !/^(completed|failed|postcopy-active|active|precopy-active|refused [\w.]+)/.test(o.outcome))).toEqual([]);
    expect(outcomes.filter((o) => !o.outcome.startsWith('refused')).length).toBeGreaterThan(sets.length / 2);
  }, 150_000);


  for (const hostile of [false, true]) {
    it(`${hostile ? 'hostile' : 'plausible'} scenario files keep the exit contract within the event bound`, async () => {
      const codes = [0, 0, 0];
      await fc.assert(fc.asyncProperty(scenario(hostile).chain(text(hostile)), async (yaml) => {
        codes[await runScenario(yaml)]!++;
      }), { numRuns: 40, seed: 20261126 });
      // Both kinds of file reach both ends: runs that finish and inputs refused.
      expect(hostile ? codes[2]! : codes[0]!).toBeGreaterThan(10);
    }, 120_000);

    it(`${hostile ? 'hostile' : 'plausible'} sweep files keep the exit contract`, async () => {
      const codes = [0, 0, 0];
      await fc.assert(fc.asyncProperty(sweep(hostile).chain(text(hostile)), async (yaml) => {
        codes[await runSweep(yaml)]!++;
      }), { numRuns: 15, seed: 20261126 });
      expect(hostile ? codes[2]! : codes[0]! + codes[1]!).toBeGreaterThan(4);
    }, 120_000);
  }
});
