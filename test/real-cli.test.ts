import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RealRunError } from '../src/live/qemu/errors.ts';
import { checkAccel, checkUserfaultfd } from '../src/live/qemu/prereq.ts';
import { realReport } from '../src/live/qemu/result.ts';
import { readRealSweep, runRealSweep } from '../src/live/qemu/sweep.ts';
import type { Scenario } from '../src/scenario/schema.ts';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();
const dir = mkdtempSync(join(tmpdir(), 'pce-real-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SMALL = ['--set', 'memory.pages=65536'];

describe('real: missing prerequisites and refused scenarios (exit 2, one line)', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it('names the missing QEMU and how to install it', async () => {
    process.env.PATH = join(dir, 'empty');
    const r = await cli('real', ...SMALL);
    expect(r.code).toBe(2);
    expect(r.err).toBe('postcopy-emu: qemu-system-x86_64 is not on PATH: install it with `apt-get install qemu-system-x86`, or name it with --qemu PATH\n');
    const g = await cli('real', ...SMALL, '--qemu', join(dir, 'no-qemu'));
    expect(g.code).toBe(2);
    expect(g.err).toBe(`postcopy-emu: --qemu ${join(dir, 'no-qemu')}: no executable file there; give the path of qemu-system-x86_64, or install it with \`apt-get install qemu-system-x86\`\n`);
  });

  it('names a missing /dev/kvm and a missing userfaultfd', () => {
    expect(() => checkAccel('kvm', join(dir, 'kvm'))).toThrow(`${join(dir, 'kvm')} does not exist: real runs need KVM (load kvm_intel or kvm_amd, or add this user to group kvm), or pass --accel tcg to emulate the CPU (slower, not KVM timings)`);
    expect(() => checkAccel('tcg', join(dir, 'kvm'))).not.toThrow();
    expect(() => checkUserfaultfd(1000, join(dir, 'root'))).toThrow('userfaultfd is not available to this user and postcopy needs it: run as root, or `sysctl vm.unprivileged_userfaultfd=1`, or grant access to /dev/userfaultfd');
    expect(() => checkUserfaultfd(0, join(dir, 'root'))).not.toThrow();
  });

  it('refuses multifd with postcopy and a bad --accel before looking for QEMU', async () => {
    const m = await cli('real', ...SMALL, '--set', 'multifd.channels=2');
    expect(m.code).toBe(2);
    expect(m.err).toBe('postcopy-emu: multifd.channels: multifd with postcopy aborts the destination in QEMU 7.2 (yank_unregister_instance): use it with migration.mode precopy, not postcopy\n');
    process.env.PATH = join(dir, 'empty');
    const a = await cli('real', ...SMALL, '--accel', 'hvf');
    expect(a.code).toBe(2);
    expect(a.err).toBe('postcopy-emu: --accel: must be kvm or tcg, got "hvf"\n');
  });
});

describe('real sweep', () => {
  const SWEEP = `
base:
  file: base.yaml
  set:
    workload.region: { start: 0, count: 1024 }
axes:
  link.rateMbps: [1000, 10000]
replications: 3
`;
  writeFileSync(join(dir, 'base.yaml'), 'memory: { pages: 65536 }\nworkload: { kind: sequential }\nmigration: { mode: postcopy }\n');

  it('runs the matrix one at a time with --replications, a failed run recorded with its reason', async () => {
    writeFileSync(join(dir, 'sweep.yaml'), SWEEP);
    const sweep = readRealSweep(join(dir, 'sweep.yaml'), 2);
    expect(sweep.runs.map((r) => [r.config, r.replication])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]]);
    const seen: number[] = [];
    const run = async (s: Scenario) => {
      seen.push(s.link.rateMbps);
      if (seen.length === 2) throw new RealRunError('QEMU destination exited with code 1: boom');
      return realReport({
        scenario: s, qemuVersion: '7.2.22', accel: 'kvm', uncapped: false, commandLines: { source: [], destination: [] },
        source: { info: { status: 'completed', downtime: 2, ram: { transferred: 4096 } }, events: [] },
        destination: { info: { status: 'completed' }, events: [] },
        faults: { latenciesNs: [], unanswered: 0, firstAtUs: null }, switchover: { 'device-save-ms': null, 'sync-ms': null, 'discard-ms': null, 'package-bytes': null, 'listen-ms': null, 'load-ms': null }, guest: { passesAtSource: 1, passesAtDestination: 3, pageNs: null }, threads: [], sockets: { samples: 0, 'busy-samples': 0, 'send-q-p50': null, 'send-q-max': null, 'recv-q-p50': null, 'ahead-p50': null },
      });
    };
    const out = join(dir, 'out');
    const records = await runRealSweep(sweep, { dir: out, run, timestamp: () => '2026-01-01T00:00:00Z' });
    expect(seen).toEqual([1000, 1000, 10000, 10000]);
    expect(records.map((r) => r.status)).toEqual(['ok', 'failed', 'ok', 'ok']);
    expect(records[1]!.error).toBe('QEMU destination exited with code 1: boom');
    const lines = readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: string; result?: { downtime: number } });
    expect(lines.map((l) => l.status)).toEqual(['ok', 'failed', 'ok', 'ok']);
    expect(lines[0]!.result!.downtime).toBe(2);
    expect(readFileSync(join(out, 'runs.csv'), 'utf8').split('\n')[0]).toMatch(/^index,config,replication,seed,status,params\.link\.rateMbps,/);
    const c = await cli('compare', out);
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/link\.rateMbps=1000 +link\.rateMbps=10000/);
  });

  it('refuses a matrix with a configuration a real run cannot do, before running anything', async () => {
    writeFileSync(join(dir, 'bad.yaml'), SWEEP.replace('link.rateMbps: [1000, 10000]', 'multifd.channels: [0, 2]'));
    const r = await cli('real', 'sweep', join(dir, 'bad.yaml'), '--out', join(dir, 'bad-out'));
    expect(r.code).toBe(2);
    expect(r.err).toBe('postcopy-emu: axes.multifd.channels: multifd with postcopy aborts the destination in QEMU 7.2 (yank_unregister_instance): use it with migration.mode precopy, not postcopy (configuration 1: {"multifd.channels":2})\n');
  });
});
