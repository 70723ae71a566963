import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const PRESETS = ['xen-2017-pure', 'xen-2017-hybrid', 'xen-2017-pure-range', 'xen-2017-hybrid-range'];
/** A quick scenario: 2048 pages, every other knob at its default. */
const SMALL = ['--set', 'memory.pages=2048'];

const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = cliHarness();


function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

type Report = {
  status: string;
  ram: { 'page-size': number; total: number };
  'postcopy-latency-dist': number[];
  emulator: Record<string, unknown> & { host?: Record<string, unknown>; seed: number; scenario: string; ring: { capacity: number } };
};

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Report;

function withoutHost(r: Report): Report {
  const { host: _host, ...emulator } = r.emulator;
  return { ...r, emulator: emulator as Report['emulator'] };
}

describe('presets', () => {
  it('lists the xen-2017, trace and qemu presets with their descriptions', async () => {
    const { code, out, err } = await cli('presets');
    expect(code).toBe(0);
    expect(err).toBe('');
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(31);
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([...PRESETS, 'trace-hashtable', 'qemu-vanilla', 'qemu-preempt', 'recovery-link-cut',
      'xen-2017-precopy', 'xen-2017-hybrid-1pass', 'xen-2017-postcopy',
      'qemu-2022-idle-precopy', 'qemu-2022-idle-multifd', 'qemu-2022-idle-multifd-zero',
      'qemu-2022-stress-precopy', 'qemu-2022-stress-multifd', 'qemu-2022-stress-multifd-zero',
      'vfio-000-1vf-cold', 'vfio-000-1vf-warm', 'vfio-000-2vf-cold', 'vfio-000-2vf-warm', 'vfio-000-4vf-cold', 'vfio-000-4vf-warm',
      'vfio-000-2vf-cold-parallel', 'vfio-000-2vf-warm-cap', 'vfio-002-ack-off', 'vfio-002-ack-on',
      'vfio-003-none', 'vfio-003-unmap', 'vfio-003-iommu', 'vfio-003-device-log']);
    expect(lines[1]).toContain('256 MiB writable working set');
  });
});

describe('run', () => {
  it('runs the hybrid preset and writes the full JSON report', async () => {
    const json = join(dir, 'hybrid.json');
    const { code, out, err } = await cli('run', '--preset', 'xen-2017-hybrid', '--json', json);
    expect(code).toBe(0);
    expect(err).toBe('');
    const r = readJson(json);
    expect(r.status).toBe('completed');
    expect(r.ram['page-size']).toBe(4096);
    expect(r.ram.total).toBe(524_288 * 4096);
    expect(r['postcopy-latency-dist']).toHaveLength(24);
    expect(r.emulator.scenario).toBe('xen-2017-hybrid');
    expect(r.emulator['outstanding-at-start']).toBe(65_536);
    expect(r.emulator.ring.capacity).toBe(8);
    expect(r.emulator.host).toBeDefined();
    expect(typeof r.emulator.host!['wall-ms']).toBe('number');
    expect(typeof r.emulator.host!['events-per-sec']).toBe('number');
    expect(typeof r.emulator.host!['peak-rss-bytes']).toBe('number');
    // The summary table still goes to stdout.
    expect(out).toMatch(/^status\s+completed$/m);
    expect(out).toContain('xen-2017-hybrid');
    expect(readFileSync(json, 'utf8').endsWith('}\n')).toBe(true);
  });

  it('is deterministic: the same seed twice gives the same JSON apart from emulator.host', async () => {
    const args = [...SMALL, '--set', 'workload.kind=random', '--set', 'workload.vcpus=2', '--seed', '7'];
    const a = join(dir, 'a.json'), b = join(dir, 'b.json'), c = join(dir, 'c.json');
    expect((await cli('run', ...args, '--json', a)).code).toBe(0);
    expect((await cli('run', ...args, '--json', b)).code).toBe(0);
    const ra = readJson(a), rb = readJson(b);
    expect(ra.emulator.seed).toBe(7);
    expect(ra.status).toBe('completed');
    expect(JSON.stringify(withoutHost(rb))).toBe(JSON.stringify(withoutHost(ra)));
    // Another seed draws another random workload.
    expect((await cli('run', ...SMALL, '--set', 'workload.kind=random', '--set', 'workload.vcpus=2', '--seed', '8', '--json', c)).code).toBe(0);
    const rc = readJson(c);
    expect(rc.emulator.seed).toBe(8);
    expect(JSON.stringify(withoutHost(rc))).not.toBe(JSON.stringify(withoutHost(ra)));
  });

  it('--json - prints only the JSON report on stdout', async () => {
    const { code, out } = await cli('run', ...SMALL, '--set', 'ring.capacity=4', '--json', '-');
    expect(code).toBe(0);
    const r = JSON.parse(out) as Report;
    expect(r.status).toBe('completed');
    expect(r.emulator.ring.capacity).toBe(4);
    expect(r.ram.total).toBe(2048 * 4096);
  });

  it('reads a YAML scenario file, and a file may start from a preset', async () => {
    const plain = file('plain.yaml', 'seed: 3\nmemory:\n  pages: 1024\nring:\n  capacity: 2\n');
    let res = await cli('run', plain, '--json', '-');
    expect(res.code).toBe(0);
    let r = JSON.parse(res.out) as Report;
    expect(r.emulator.seed).toBe(3);
    expect(r.emulator.ring.capacity).toBe(2);
    expect(r.ram.total).toBe(1024 * 4096);

    const fromPreset = file('from-preset.yaml', [
      'preset: xen-2017-pure-range',
      'memory: {pages: 2048}',
      'mapper: {mapping: {kind: buckets, bucketPages: 256, count: 2}}',
      'workload: {region: {start: 0, count: 512}}',
      '',
    ].join('\n'));
    res = await cli('run', fromPreset, '--json', '-');
    expect(res.code).toBe(0);
    r = JSON.parse(res.out) as Report;
    expect(r.status).toBe('completed');
    expect(r.emulator.scenario).toBe('xen-2017-pure-range');
    expect(r.emulator.ring.capacity).toBe(8);
    expect(r.ram.total).toBe(2048 * 4096);
  });

  it('--check on a sound run exits 0', async () => {
    const { code, err } = await cli('run', ...SMALL, '--check', '--json', '-');
    expect(code).toBe(0);
    expect(err).toBe('');
  });
});

describe('bad input exits 2 with one line on stderr', () => {
  const oneLine = (err: string) => {
    expect(err.endsWith('\n')).toBe(true);
    expect(err.trimEnd().split('\n')).toHaveLength(1);
  };

  it('a value out of range names its field', async () => {
    const { code, err } = await cli('run', '--set', 'ring.capacity=0');
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toMatch(/^postcopy-emu: ring\.capacity: /);
  });

  it('an unknown key in a YAML file names its dotted path', async () => {
    const path = file('unknown-key.yaml', 'ring:\n  capacity: 4\n  bogus: 1\n');
    const { code, err } = await cli('run', path);
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain('ring.bogus');
    expect(err).toContain('unknown field');
  });

  it('--set without path=value', async () => {
    const { code, err } = await cli('run', '--set', 'nonsense');
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain('--set');
    expect(err).toContain('"nonsense"');
  });

  it('an unknown preset lists the choices', async () => {
    const { code, err } = await cli('run', '--preset', 'xen-2099');
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain('"xen-2099"');
    for (const p of PRESETS) expect(err).toContain(p);
  });

  it('a file that is not valid YAML', async () => {
    const path = file('broken.yaml', 'ring: [1, 2\n  capacity: {\n');
    const { code, err } = await cli('run', path);
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain(path);
    expect(err).toContain('not valid YAML');
  });

  it('a missing file', async () => {
    const path = join(dir, 'does-not-exist.yaml');
    const { code, err } = await cli('run', path);
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain(path);
  });

  it('a non-numeric --seed', async () => {
    const { code, err } = await cli('run', ...SMALL, '--seed', 'abc');
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain('--seed');
  });

  it('a file and --preset together', async () => {
    const path = file('both.yaml', 'seed: 1\n');
    const { code, err } = await cli('run', path, '--preset', 'xen-2017-hybrid');
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain('not both');
  });

  it('a range outside memory names the range', async () => {
    const { code, err } = await cli('run', ...SMALL, '--set', 'workload.region={start: 2000, count: 100}');
    expect(code).toBe(2);
    oneLine(err);
    expect(err).toContain('workload.region');
  });

  it('an unknown command', async () => {
    const { code } = await cli('fly');
    expect(code).toBe(2);
  });

  it('the --json file is not created when the scenario is bad', async () => {
    const a = join(dir, 'never-a.json'), b = join(dir, 'never-b.json');
    expect((await cli('run', '--set', 'ring.capacity=0', '--json', a)).code).toBe(2);
    const path = file('unknown-key-2.yaml', 'memory:\n  pages: 64\n  colour: blue\n');
    expect((await cli('run', path, '--json', b)).code).toBe(2);
    expect(existsSync(a)).toBe(false);
    expect(existsSync(b)).toBe(false);
  });
});

describe('the installed bin (real subprocess)', () => {
  const bin = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/postcopy-emu.mjs', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });

  it('runs a scenario and prints the JSON report', () => {
    const r = bin('run', ...SMALL, '--set', 'workload.kind=sequential', '--seed', '5', '--json', '-');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('completed');
    expect(report.emulator.seed).toBe(5);
    expect(report['postcopy-latency-dist']).toHaveLength(24);
  });

  it('exits 2 with a single stderr line on a bad value', () => {
    const json = join(dir, 'spawn-never.json');
    const r = bin('run', '--set', 'ring.capacity=0', '--json', json);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^postcopy-emu: ring\.capacity: /);
    expect(existsSync(json)).toBe(false);
  });
});
