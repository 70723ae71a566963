import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { main } from '../src/cli/main.ts';
import { resolveShard } from '../src/sweep/shard.ts';
import { expandSweep, replicationSeed, scenarioOf } from '../src/sweep/spec.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import { signalMidSweep } from './sweep-signal.ts';

const root = join(import.meta.dirname, '..');
const tmp = () => mkdtempSync(join(tmpdir(), 'pce-sweep-'));

/** A small, fast sweep: 4 configurations × 2 replications of a 64 MiB storm. */
const SWEEP = `
base:
  preset: xen-2017-hybrid
  set:
    memory.pages: 16384
    memory.outstanding: { kind: all }
    workload.region: { start: 0, count: 4096 }
    limits.stopAt: resume
axes:
  ring.capacity: [1, 64]
  source.policy: [xen, demand]
replications: 2
seed: 42
`;

function sweepFile(text = SWEEP): string {
  const dir = tmp();
  writeFileSync(join(dir, 'sweep.yaml'), text);
  return join(dir, 'sweep.yaml');
}

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await main(['node', 'postcopy-emu', ...args], (s) => (out += s));
  return { code, out };
}

const read = (dir: string, f: string) => readFileSync(join(dir, f), 'utf8');

describe('sweep expansion', () => {
  it('expands the cartesian product, first axis slowest, × replications', () => {
    const s = expandSweep({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capacity': [1, 8, 64], 'link.rateMbps': [1000, 10000] }, replications: 2, seed: 7 }, root);
    expect(s.configs).toBe(6);
    expect(s.runs).toHaveLength(12);
    expect(s.runs.slice(0, 4).map((r) => [r.config, r.replication, r.params])).toEqual([
      [0, 0, { 'ring.capacity': 1, 'link.rateMbps': 1000 }],
      [0, 1, { 'ring.capacity': 1, 'link.rateMbps': 1000 }],
      [1, 0, { 'ring.capacity': 1, 'link.rateMbps': 10000 }],
      [1, 1, { 'ring.capacity': 1, 'link.rateMbps': 10000 }],
    ]);
    expect(s.runs[11]!.params).toEqual({ 'ring.capacity': 64, 'link.rateMbps': 10000 });
  });

  it('gives replication i the same seed in every configuration (common random numbers)', () => {
    const s = expandSweep({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capacity': [1, 8, 64] }, replications: 3, seed: 7 }, root);
    for (const r of s.runs) expect(r.seed).toBe(replicationSeed(7, r.replication));
    const seeds = new Set(s.runs.map((r) => r.seed));
    expect(seeds.size).toBe(3);
    expect(replicationSeed(7, 0)).not.toBe(replicationSeed(8, 0));
    expect(scenarioOf(s, s.runs[4]!)).toMatchObject({ seed: replicationSeed(7, 1), ring: { capacity: 8 } });
  });

  it('names the field of a bad sweep file', () => {
    const bad = (doc: unknown) => {
      try {
        expandSweep(doc, root);
      } catch (e) {
        return (e as ScenarioError).path;
      }
      return 'no error';
    };
    expect(bad({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capacity': [8] }, extra: 1 })).toBe('extra');
    expect(bad({ base: { preset: 'xen-2017-hybrid' }, axes: {} })).toBe('axes');
    expect(bad({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capacity': [] } })).toBe('axes.ring.capacity');
    expect(bad({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capacity': [8, 0] } })).toBe('axes.ring.capacity');
    expect(bad({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capcity': [8] } })).toBe('axes.ring.capcity');
    expect(bad({ base: { preset: 'nope' }, axes: { 'ring.capacity': [8] } })).toBe('preset');
    expect(bad({ base: { preset: 'xen-2017-hybrid', set: { 'memory.pages': 10 } }, axes: { 'ring.capacity': [8] } })).toBe('base.memory.outstanding.ranges.0');
    expect(bad({ base: { preset: 'xen-2017-hybrid' }, axes: { 'ring.capacity': [8] }, replications: 0 })).toBe('replications');
    // A base that is neither a preset nor a file says what it may be, not zod's "Invalid input".
    expect(() => expandSweep({ base: { name: 'x', memory: { pages: 8 } }, axes: { 'ring.capacity': [8] } }, root))
      .toThrow('base: must be { preset: NAME } or { file: PATH }, each with an optional set: { FIELD: VALUE }');
  });

  it('exits 2 on a bad sweep file and writes nothing', async () => {
    const file = sweepFile('base: { preset: xen-2017-hybrid }\naxes: { ring.capacity: [0] }\n');
    const out = join(tmp(), 'o');
    const r = await cli('sweep', file, '-o', out);
    expect(r.code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});

describe('sweep runs', () => {
  it('gives byte-identical results with --jobs 1 and --jobs 2, and writes every output', async () => {
    const file = sweepFile();
    const a = join(tmp(), 'a'), b = join(tmp(), 'b');
    expect((await cli('sweep', file, '-o', a, '-j', '1')).code).toBe(0);
    const r = await cli('sweep', file, '-o', b, '-j', '2');
    expect(r.code).toBe(0);
    expect(r.out).toContain('8 runs (4 configurations × 2 replications)');
    for (const f of ['runs.jsonl', 'runs.csv', 'metrics.md']) expect(read(b, f)).toBe(read(a, f));
    const lines = read(a, 'runs.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(lines.every((l) => l.status === 'ok' && l.result.emulator.host === undefined)).toBe(true);
    // Same replication seed across configurations; demand paging with 1 slot is the slowest.
    expect(lines[0].seed).toBe(lines[2].seed);
    const downtime = (i: number) => lines[i].result.downtime as number;
    expect(downtime(2)).toBeGreaterThan(downtime(0)); // demand vs xen push at 1 slot
    expect(downtime(2)).toBeGreaterThan(downtime(6)); // 1 slot vs 64 slots, demand
    const csv = read(a, 'runs.csv').trim().split('\n');
    expect(csv).toHaveLength(9);
    expect(csv[0]!.startsWith('index,config,replication,seed,status,params.ring.capacity,params.source.policy,result.status')).toBe(true);
    expect(read(a, 'metrics.md')).toContain('| `result.downtime` | ms |');
    const manifest = JSON.parse(read(a, 'manifest.json'));
    expect(manifest).toMatchObject({ tool: 'postcopy-emu', runs: 8, configurations: 4, completed: 8, failed: 0, shard: null });
    expect(manifest.sweep.axes).toEqual({ 'ring.capacity': [1, 64], 'source.policy': ['xen', 'demand'] });
    expect(typeof manifest.startedAt).toBe('string');
  });

  it('merges shards 1/3, 2/3, 3/3 into exactly the unsharded sweep', async () => {
    const file = sweepFile();
    const whole = join(tmp(), 'whole');
    expect((await cli('sweep', file, '-o', whole, '-j', '1')).code).toBe(0);
    const shards = [1, 2, 3].map((k) => join(tmp(), `s${k}`));
    for (const [i, dir] of shards.entries()) {
      expect((await cli('sweep', file, '-o', dir, '-j', '1', '--shard', `${i + 1}/3`)).code).toBe(0);
    }
    expect(read(shards[0]!, 'runs.jsonl').trim().split('\n').map((l) => JSON.parse(l).index)).toEqual([1, 4, 7]);
    expect(read(shards[2]!, 'runs.jsonl').trim().split('\n').map((l) => JSON.parse(l).index)).toEqual([0, 3, 6]);
    const merged = join(tmp(), 'merged');
    expect((await cli('merge', ...shards, '-o', merged)).code).toBe(0);
    for (const f of ['runs.jsonl', 'runs.csv', 'metrics.md']) expect(read(merged, f)).toBe(read(whole, f));
    expect((await cli('merge', shards[0]!, shards[1]!, '-o', join(tmp(), 'm2'))).code).toBe(2);
  });

  it('reads the shard from Slurm and Kubernetes variables', () => {
    // Task index i (from 0) runs shard (i mod N) + 1; N always comes from --shards, never the array.
    expect(resolveShard(undefined, '3', { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 1, count: 3, from: 'SLURM_ARRAY_TASK_ID=0' });
    expect(resolveShard(undefined, '3', { SLURM_ARRAY_TASK_ID: '2' })).toEqual({ index: 3, count: 3, from: 'SLURM_ARRAY_TASK_ID=2' });
    // Resubmitted alone (sbatch --array=1): the array has one task, the shard is still 2 of 3.
    expect(resolveShard(undefined, '3', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '1' })).toEqual({ index: 2, count: 3, from: 'SLURM_ARRAY_TASK_ID=1' });
    expect(resolveShard(undefined, '4', { JOB_COMPLETION_INDEX: '1' })).toEqual({ index: 2, count: 4, from: 'JOB_COMPLETION_INDEX=1' });
    expect(resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '1', POSTCOPY_EMU_SHARDS: '2' })).toEqual({ index: 2, count: 2, from: 'JOB_COMPLETION_INDEX=1' });
    expect(resolveShard('2/5', undefined, { SLURM_ARRAY_TASK_ID: '0' })).toEqual({ index: 2, count: 5, from: '--shard' });
    expect(resolveShard(undefined, undefined, {})).toBeNull();
    expect(() => resolveShard('0/3', undefined, {})).toThrow(ScenarioError);
    expect(() => resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '16' }))
      .toThrow('--shards: SLURM_ARRAY_TASK_ID is set: give the number of shards with --shards N (or POSTCOPY_EMU_SHARDS); it is never taken from the array\'s size');
    expect(() => resolveShard(undefined, '3', {})).toThrow(/--shards: needs a task index/);
  });

  it('resumes a killed sweep and ends with the same results as an uninterrupted one', async () => {
    // Slower runs (256 MiB) so the kill lands between runs.
    const file = sweepFile(SWEEP.replace('memory.pages: 16384', 'memory.pages: 65536'));
    const whole = join(tmp(), 'whole');
    expect((await cli('sweep', file, '-o', whole, '-j', '1')).code).toBe(0);
    const dir = join(tmp(), 'killed');
    const child = spawn(process.execPath, ['bin/postcopy-emu.mjs', 'sweep', file, '-o', dir, '-j', '1'], { cwd: root, stdio: 'ignore' });
    await signalMidSweep(child, dir, 'SIGKILL');
    const before = read(dir, 'runs.jsonl').trim().split('\n').length;
    expect(before).toBeGreaterThanOrEqual(2);
    expect(before).toBeLessThan(8);
    expect((await cli('sweep', file, '-o', dir, '-j', '2')).code).toBe(2); // refuses without --resume
    const r = await cli('sweep', file, '-o', dir, '-j', '2', '--resume');
    expect(r.code).toBe(0);
    for (const f of ['runs.jsonl', 'runs.csv', 'metrics.md']) expect(read(dir, f)).toBe(read(whole, f));
  }, 60_000);
});

describe('compare', () => {
  it('groups a sweep by an axis, with ratios against the first column', async () => {
    const file = sweepFile();
    const dir = join(tmp(), 'c');
    expect((await cli('sweep', file, '-o', dir, '-j', '2')).code).toBe(0);
    const r = await cli('compare', dir, '--by', 'ring.capacity');
    expect(r.code).toBe(0);
    const header = r.out.split('\n')[0]!;
    expect(header).toContain('ring.capacity=1');
    expect(header).toContain('ring.capacity=64');
    expect(r.out).toMatch(/downtime \(ms\)\s+[\d.]+\s+[\d.]+ \(×0\.\d\d\)/);
    expect(r.out).toContain('(mean over 8 runs)');
    expect((await cli('compare', dir, '--by', 'nope')).code).toBe(2);
  });

  it('averages runs whose status histories differ in length, each entry over the runs that have it', async () => {
    const { meanReport } = await import('../src/cli/commands/compare.ts');
    const a = { downtime: 10, emulator: { 'status-history': [{ status: 'postcopy-active', 'at-ms': 0 }] } };
    const b = { downtime: 20, emulator: { 'status-history': [{ status: 'postcopy-active', 'at-ms': 2 }, { status: 'completed', 'at-ms': 30 }] } };
    expect(meanReport([a, b] as never)).toEqual({
      downtime: 15, emulator: { 'status-history': [{ status: 'postcopy-active', 'at-ms': 1 }, { status: 'completed', 'at-ms': 30 }] },
    });
  });

  it('compares run files side by side', async () => {
    const d = tmp();
    for (const c of ['8', '64']) {
      expect((await cli('run', '--preset', 'xen-2017-hybrid', '--set', 'memory.pages=16384', '--set', 'memory.outstanding={kind: all}',
        '--set', 'workload.region={start: 0, count: 4096}', '--set', 'source.policy=demand', '--set', `ring.capacity=${c}`, '--json', join(d, `${c}.json`))).code).toBe(0);
    }
    const r = await cli('compare', join(d, '8.json'), join(d, '64.json'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ring max occupancy\s+8 \/ 8\s+64 \/ 64/);
    expect((await cli('compare', join(d, 'missing.json'))).code).toBe(2);
  });
});

describe('failed runs', () => {
  it('records a run that throws with its error and finishes the others', async () => {
    const { runSweep } = await import('../src/sweep/run.ts');
    const good = expandSweep(parse(SWEEP), root);
    // Break configuration 1 after validation, as a run that fails at run time would.
    const broken = { ...good, runs: good.runs.map((r) => (r.config === 1 ? { ...r, params: { ...r.params, 'ring.capacity': 0 } } : r)) };
    const dir = join(tmp(), 'f');
    const { records } = await runSweep(broken, { dir, jobs: 2, resume: false, shard: null, timestamp: () => 't' });
    expect(records.map((r) => r.status)).toEqual(['ok', 'ok', 'failed', 'failed', 'ok', 'ok', 'ok', 'ok']);
    expect(records[2]!.error).toContain('ring.capacity');
    const manifest = JSON.parse(read(dir, 'manifest.json'));
    expect(manifest).toMatchObject({ completed: 6, failed: 2, startedAt: 't', finishedAt: 't' });
    expect(read(dir, 'runs.csv').split('\n')[3]).toMatch(/^2,1,0,\d+,failed,/);
  });
});

function parse(yaml: string): unknown {
  return YAML.parse(yaml);
}
