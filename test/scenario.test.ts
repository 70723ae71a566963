import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScenarioError } from '../src/scenario/error.ts';
import { thrown } from './throws.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { applySets, merge, presetInput, readScenarioFile } from '../src/scenario/load.ts';
import { ignoredFields } from '../src/scenario/applies.ts';
import { presets } from '../src/scenario/presets.ts';
import { scenarioSchema, type ScenarioInput } from '../src/scenario/schema.ts';
import { randomScenario } from '../src/check/random-scenario.ts';

const scenarioError = (fn: () => unknown) => thrown(ScenarioError, fn);

const parseError = (input: unknown) => scenarioError(() => parseScenario(input));

describe('parseScenario defaults', () => {
  it('fills every default from an empty object', () => {
    const s = parseScenario({});
    expect(s.ring.capacity).toBe(8);
    expect(s.ring.blackEye).toBe(false);
    expect(s.memory.pages).toBe(524_288);
    expect(s.memory.pageSize).toBe(4096);
    expect(s.memory.outstanding).toEqual({ kind: 'all' });
    expect(s.link.rateMbps).toBe(1000);
    expect(s.link.mtuBytes).toBe(1500);
    expect(s.link.ipTcpHeaderBytes).toBe(52);
    expect(s.link.frameOverheadBytes).toBe(38);
    expect(s.backChannel.rateMbps).toBe(1000);
    expect(s.mapper.mapping).toEqual({ kind: 'none' });
    expect(s.workload.vcpus).toBe(1);
    expect(s.workload.region).toBeUndefined();
    expect(s.name).toBe('custom');
    expect(s.seed).toBe(1);
  });

  it('returns zod\'s parse key for key and in its order (rebuilt as ordinary objects)', () => {
    for (const input of [presetInput('xen-2017-pure'), randomScenario(5), randomScenario(77)]) {
      const zod = scenarioSchema.parse(input, { jitless: true }), s = parseScenario(input);
      expect(s).toStrictEqual(zod);
      expect(JSON.stringify(s)).toBe(JSON.stringify(zod));
      expect(Object.keys(s.pager)).toEqual(Object.keys(zod.pager));
    }
  });

  it('keeps given values and defaults the rest of the section', () => {
    const s = parseScenario({ ring: { capacity: 64 }, mapper: { mapping: { kind: 'buckets', count: 2 } } });
    expect(s.ring).toEqual({ capacity: 64, blackEye: false });
    expect(s.mapper.mapping).toEqual({ kind: 'buckets', bucketPages: 256, count: 2 });
  });
});

describe('parseScenario errors name their path', () => {
  it('unknown field in a section', () => {
    const e = parseError({ ring: { capcity: 8 } });
    expect(e.path).toBe('ring.capcity');
    expect(e.detail).toBe('unknown field');
    expect(e.message).toBe('ring.capcity: unknown field');
    expect(e.name).toBe('ScenarioError');
  });

  it('a required field left out says so, and what it takes', () => {
    expect(parseError({ mapper: { mapping: { kind: 'buckets' } } }).message).toBe('mapper.mapping.count: required (no default): a number');
    expect(parseError({ memory: { outstanding: { kind: 'ranges' } } }).message).toBe('memory.outstanding.ranges: required (no default): a list');
    // A wrong type keeps zod's words, which name what was given.
    expect(parseError({ ring: { capacity: '8' } }).detail).toMatch(/expected number, received string/);
  });

  it('unknown top-level field', () => {
    // A misspelt section must not be silently ignored (it would drop the user's settings).
    const e = parseError({ rign: { capacity: 64 } });
    expect(e.path).toBe('rign');
    expect(e.detail).toBe('unknown field');
  });

  it('wrong types', () => {
    expect(parseError({ ring: { capacity: '8' } }).path).toBe('ring.capacity');
    expect(parseError({ ring: { blackEye: 'yes' } }).path).toBe('ring.blackEye');
    expect(parseError({ ring: null }).path).toBe('ring');
    expect(parseError({ link: { rateMbps: 'fast' } }).path).toBe('link.rateMbps');
    expect(parseError({ source: { policy: 'eager' } }).path).toBe('source.policy');
  });

  it('out-of-range values', () => {
    expect(parseError({ ring: { capacity: 0 } }).path).toBe('ring.capacity');
    expect(parseError({ ring: { capacity: 65_537 } }).path).toBe('ring.capacity');
    expect(parseError({ ring: { capacity: 1.5 } }).path).toBe('ring.capacity');
    expect(parseError({ memory: { pages: 0 } }).path).toBe('memory.pages');
    expect(parseError({ link: { rateMbps: 0 } }).path).toBe('link.rateMbps');
    expect(parseError({ backChannel: { mtuBytes: 100 } }).path).toBe('backChannel.mtuBytes');
    expect(parseError({ memory: { outstanding: { kind: 'fraction', fraction: 0 } } }).path).toBe('memory.outstanding.fraction');
    expect(parseError({ workload: { vcpus: 0 } }).path).toBe('workload.vcpus');
    expect(parseError({ memory: { outstanding: { kind: 'ranges', ranges: [] } } }).path).toBe('memory.outstanding.ranges');
    expect(parseError({ memory: { outstanding: { kind: 'ranges', ranges: [{ start: 0, count: 0 }] } } }).path).toBe(
      'memory.outstanding.ranges.0.count',
    );
  });

  it('unknown discriminator', () => {
    expect(parseError({ memory: { outstanding: { kind: 'some' } } }).path).toBe('memory.outstanding.kind');
  });

  it('ranges outside memory name the range', () => {
    const e = parseError({
      memory: { pages: 100, outstanding: { kind: 'ranges', ranges: [{ start: 90, count: 20 }] } },
    });
    expect(e.path).toBe('memory.outstanding.ranges.0');
    expect(e.detail).toBe('range [90, 110) must lie within memory.pages (100)');

    const e2 = parseError({
      memory: { pages: 100 },
      mapper: { mapping: { kind: 'ranges', ranges: [{ start: 0, count: 10 }, { start: 95, count: 6 }] } },
    });
    expect(e2.path).toBe('mapper.mapping.ranges.1');

    // A range ending exactly at the end of memory is fine.
    const ok = parseScenario({ memory: { pages: 100, outstanding: { kind: 'ranges', ranges: [{ start: 90, count: 10 }] } } });
    expect(ok.memory.outstanding).toEqual({ kind: 'ranges', ranges: [{ start: 90, count: 10 }] });
  });

  it('a workload region outside memory names workload.region', () => {
    // region is a single range, not a list: there is no field "workload.region.0".
    const e = parseError({ memory: { pages: 100 }, workload: { region: { start: 50, count: 51 } } });
    expect(e.path).toBe('workload.region');
    expect(e.detail).toBe('range [50, 101) must lie within memory.pages (100)');
  });

  it('too many buckets names mapper.mapping.count', () => {
    const e = parseError({ memory: { pages: 512 }, mapper: { mapping: { kind: 'buckets', count: 3 } } });
    expect(e.path).toBe('mapper.mapping.count');
    expect(e.detail).toBe('at most 2 buckets of 256 pages fit in memory');
    expect(parseScenario({ memory: { pages: 512 }, mapper: { mapping: { kind: 'buckets', count: 2 } } }).mapper.mapping).toEqual({
      kind: 'buckets',
      bucketPages: 256,
      count: 2,
    });
  });

  it('IP/TCP headers must leave room for payload in an MTU', () => {
    // MSS = mtuBytes − ipTcpHeaderBytes; with MSS ≤ 0 the link's wire size is Infinity or negative
    // and the run dies with "event at Infinity ns ..." instead of a ScenarioError.
    const e = parseError({ link: { mtuBytes: 1500, ipTcpHeaderBytes: 1500 } });
    expect(e.path).toMatch(/^link\.(ipTcpHeaderBytes|mtuBytes)$/);
  });
});

describe('applySets', () => {
  it('sets a number by dotted path', () => {
    const out = applySets({}, ['ring.capacity=64']);
    expect(out).toEqual({ ring: { capacity: 64 } });
    expect(parseScenario(out).ring.capacity).toBe(64);
  });

  it('sets an object in YAML flow syntax', () => {
    const out = applySets({ mapper: { request: 'range' } }, ['mapper.mapping={kind: all}']);
    expect(out).toEqual({ mapper: { request: 'range', mapping: { kind: 'all' } } });
  });

  it('sets booleans, strings and several paths in order', () => {
    const out = applySets({ ring: { capacity: 8 } }, ['ring.blackEye=true', 'source.policy=demand', 'ring.capacity=16', 'ring.capacity=32']);
    expect(out).toEqual({ ring: { capacity: 32, blackEye: true }, source: { policy: 'demand' } });
  });

  it('does not modify its input', () => {
    const input: ScenarioInput = { ring: { capacity: 8 } };
    applySets(input, ['ring.capacity=64']);
    expect(input).toEqual({ ring: { capacity: 8 } });
  });

  it('rejects a set without "="', () => {
    const e = scenarioError(() => applySets({}, ['bad']));
    expect(e.path).toBe('--set');
    expect(e.detail).toBe('"bad" must look like path=value, e.g. ring.capacity=64');
    expect(scenarioError(() => applySets({}, ['=5'])).path).toBe('--set');
  });

  it('rejects prototype paths and empty path segments', () => {
    const e = scenarioError(() => applySets({}, ['__proto__.x=1']));
    expect(e.path).toBe('--set');
    expect(e.detail).toBe('"__proto__.x" is not a valid dotted path');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(scenarioError(() => applySets({}, ['constructor.prototype.y=1'])).path).toBe('--set');
    expect(scenarioError(() => applySets({}, ['ring..capacity=1'])).path).toBe('--set');
    expect(({} as Record<string, unknown>).y).toBeUndefined();
  });

  it('rejects descending into a value that is not a section', () => {
    const e = scenarioError(() => applySets({ ring: { capacity: 8 } }, ['ring.capacity.max=1']));
    expect(e.path).toBe('ring.capacity.max');
    expect(e.detail).toBe('capacity is not a section');
  });

  it('indexes a list that is there: one device of several', () => {
    const input = { devices: [{ name: 'a' }, { name: 'b', load: { setupNs: 1 } }] } as ScenarioInput;
    const out = applySets(input, ['devices.1.load.setupNs=5', 'devices.0.preCopy=false']) as { devices: Record<string, unknown>[] };
    expect(out.devices).toEqual([{ name: 'a', preCopy: false }, { name: 'b', load: { setupNs: 5 } }]);
    expect(input.devices![1]!.load!.setupNs).toBe(1);
    const e = scenarioError(() => applySets(input, ['devices.2.preCopy=false']));
    expect([e.path, e.detail]).toEqual(['devices.2.preCopy', 'devices is a list of 2: 2 must be an index from 0 to 1']);
    expect(scenarioError(() => applySets(input, ['devices.x=1'])).detail).toBe('devices is a list of 2: x must be an index from 0 to 1');
  });

  it('rejects an invalid YAML value, naming the path', () => {
    const e = scenarioError(() => applySets({}, ['ring.capacity=[1, 2']));
    expect(e.path).toBe('ring.capacity');
    expect(e.detail).toMatch(/^value is not valid YAML/);
  });

  it('a misspelt path is caught by validation afterwards', () => {
    const e = parseError(applySets({}, ['ring.capcity=64']));
    expect(e.path).toBe('ring.capcity');
    expect(e.detail).toBe('unknown field');
    expect(parseError(applySets({}, ['ring.capacity=0'])).path).toBe('ring.capacity');
  });
});

describe('merge', () => {
  it('merges plain objects deeply; arrays and scalars replace', () => {
    const base = { a: { b: 1, c: [1, 2, 3] }, d: 'x' };
    const out = merge(base, { a: { c: [9] }, d: 'y', e: true });
    expect(out).toEqual({ a: { b: 1, c: [9] }, d: 'y', e: true });
    expect(base).toEqual({ a: { b: 1, c: [1, 2, 3] }, d: 'x' });
  });

  it('replaces an object of another kind whole, merges one of the same kind', () => {
    const base = { memory: { pages: 8, outstanding: { kind: 'ranges', ranges: [{ start: 0, count: 4 }] } } };
    expect(merge(base, { memory: { outstanding: { kind: 'all' } } })).toEqual({ memory: { pages: 8, outstanding: { kind: 'all' } } });
    expect(merge(base, { memory: { outstanding: { kind: 'ranges', ranges: [] } } })).toEqual({ memory: { pages: 8, outstanding: { kind: 'ranges', ranges: [] } } });
    expect(merge({ m: { kind: 'buckets', bucketPages: 8, count: 2 } }, { m: { count: 3 } })).toEqual({ m: { kind: 'buckets', bucketPages: 8, count: 3 } });
  });
});

describe('readScenarioFile', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-test-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a preset plus overrides merges, the file winning', () => {
    const p = file('pure.yaml', ['preset: xen-2017-pure', 'ring:', '  capacity: 64', 'workload:', '  vcpus: 4', ''].join('\n'));
    const input = readScenarioFile(p);
    expect(input).not.toHaveProperty('preset');
    const s = parseScenario(input);
    expect(s.name).toBe('xen-2017-pure');
    expect(s.ring.capacity).toBe(64);
    expect(s.workload.vcpus).toBe(4);
    // Untouched preset fields survive the merge.
    expect(s.workload.kind).toBe('random');
    expect(s.workload.writeFraction).toBe(1);
    expect(s.workload.region).toEqual({ start: 262_144, count: 65_536 });
    expect(s.mapper.mapping).toEqual({ kind: 'all' });
    expect(s.memory.pages).toBe(524_288);
    // The preset itself is unchanged.
    expect(presetInput('xen-2017-pure').ring).toEqual({ capacity: 8 });
  });

  it('a file without a preset is taken as is', () => {
    const p = file('plain.yaml', 'ring: {capacity: 16}\nseed: 5\n');
    expect(readScenarioFile(p)).toEqual({ ring: { capacity: 16 }, seed: 5 });
  });

  it('reads JSON too', () => {
    const p = file('s.json', JSON.stringify({ preset: 'xen-2017-hybrid', ring: { blackEye: true } }));
    const s = parseScenario(readScenarioFile(p));
    expect(s.memory.outstanding).toEqual({ kind: 'ranges', ranges: [{ start: 262_144, count: 65_536 }] });
    expect(s.ring).toEqual({ capacity: 8, blackEye: true });
  });

  it('an empty file is an empty scenario', () => {
    expect(readScenarioFile(file('empty.yaml', ''))).toEqual({});
  });

  it('invalid YAML is a ScenarioError on "file"', () => {
    const p = file('bad.yaml', 'ring: [1, 2\nseed: {\n');
    const e = scenarioError(() => readScenarioFile(p));
    expect(e.path).toBe('file');
    expect(e.detail).toContain('is not valid YAML or JSON');
  });

  it('a missing file is a ScenarioError on "file"', () => {
    const e = scenarioError(() => readScenarioFile(join(dir, 'nope.yaml')));
    expect(e.path).toBe('file');
    expect(e.detail).toMatch(/^cannot read /);
  });

  it('a top-level list is rejected', () => {
    const e = scenarioError(() => readScenarioFile(file('list.yaml', '- 1\n- 2\n')));
    expect(e.path).toBe('file');
    expect(e.detail).toMatch(/must hold a mapping of scenario fields$/);
  });

  it('an unknown preset names the choices', () => {
    const e = scenarioError(() => readScenarioFile(file('unknown.yaml', 'preset: xen-2099\n')));
    expect(e.path).toBe('preset');
    expect(e.detail).toContain('unknown preset "xen-2099"');
    expect(e.detail).toContain('xen-2017-pure');
    expect(scenarioError(() => readScenarioFile(file('num.yaml', 'preset: 5\n'))).path).toBe('preset');
  });
});

describe('ignoredFields', () => {
  const ignored = (input: ScenarioInput) => ignoredFields(input, parseScenario(input));

  it('warns of a field given for another choice of the field it depends on, with the choice this run has', () => {
    expect(ignored({ preempt: { share: 0.3 }, source: { pivots: 7 }, workload: { kind: 'random', hotPages: 5 } })).toEqual([
      'source.pivots is ignored: it applies with source.policy bubbling, and this run has xen',
      'workload.hotPages is ignored: it applies with workload.kind hot-set, and this run has random',
      'preempt.share is ignored: it applies with preempt.enabled true, and this run has false',
    ]);
    expect(ignored({ preempt: { enabled: true, share: 0.3 }, source: { policy: 'bubbling', pivots: 7 } })).toEqual([]);
  });

  it('takes an unset choice as the policy and the device kind make it', () => {
    // pager.placement unset: uffd under the qemu policy, hypercall under xen's.
    expect(ignored({ source: { policy: 'qemu' }, pager: { uffdCopyNs: 3000 } })).toEqual([]);
    expect(ignored({ pager: { uffdCopyNs: 3000 } })).toEqual(['pager.uffdCopyNs is ignored: it applies with pager.placement uffd, and this run has hypercall']);
    expect(ignored({ source: { policy: 'lazy-pages', chunkMinPages: 8 } })).toEqual([]);
    // A virtio VF's pacing is rate-limit unless set: maxCalls is pacing cap's.
    const devices = [{ kind: 'virtio-vf' as const, maxCalls: 4 }, { kind: 'vf' as const, pacing: 'cap' as const, maxCalls: 4 }];
    expect(ignored({ migration: { mode: 'precopy' }, precopy: { policy: 'qemu' }, devices })).toEqual(['devices.0.maxCalls is ignored: it applies with devices.0.pacing cap, and this run has rate-limit']);
  });

  it('says nothing for any preset', () => {
    for (const name of presets.keys()) expect(ignored(presetInput(name))).toEqual([]);
  });
});
