import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { cliHarness } from './cli-harness.ts';

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

describe('fuzzed inputs', () => {
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
