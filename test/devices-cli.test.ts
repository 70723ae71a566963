import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// End to end through the built bin (`npm run build` first; `npm test` does it).
const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-devices-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bin = (...args: string[]) => spawnSync(process.execPath, ['bin/postcopy-emu.mjs', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

type DeviceRow = { name: string; kind: string; 'source-state': string; 'destination-state': string; 'precopy-bytes': number; 'stop-copy-bytes': number; 'device-calls': number };
type Report = {
  status: string;
  downtime: number;
  vfio?: { transferred: number };
  ram: { transferred: number };
  emulator: { scenario: string; 'downtime-breakdown': Record<string, number> | null; devices?: DeviceRow[]; 'stale-pages'?: number; precopy?: { end: string } };
};

describe('postcopy-emu run with devices', () => {
  it('--preset vfio-000-2vf-warm --check --json -: completed, the vfio counter and the downtime breakdown', () => {
    const r = bin('run', '--preset', 'vfio-000-2vf-warm', '--check', '--json', '-');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('completed');
    expect(report.emulator.scenario).toBe('vfio-000-2vf-warm');
    const devs = report.emulator.devices!;
    expect(devs.map((d) => [d.name, d.kind, d['source-state'], d['destination-state']])).toEqual([
      ['vf0', 'virtio-vf', 'STOP', 'RUNNING'], ['vf1', 'virtio-vf', 'STOP', 'RUNNING'],
    ]);
    // Whole 64 KiB contexts: each VF's precopy reads plus one stop-copy context.
    for (const d of devs) {
      expect(d['stop-copy-bytes']).toBe(65_536);
      expect(d['precopy-bytes']).toBe(65_536 * d['device-calls']);
    }
    expect(report.vfio!.transferred).toBe(devs.reduce((s, d) => s + d['precopy-bytes'] + d['stop-copy-bytes'], 0));
    expect(report.ram.transferred).toBeGreaterThan(report.vfio!.transferred);
    const b = report.emulator['downtime-breakdown']!;
    expect(Object.keys(b)).toEqual(['device-stop-ms', 'ram-ms', 'device-transfer-ms', 'drain-ms', 'device-load-ms', 'vcpu-state-ms', 'switchover-ms']);
    expect(Object.values(b).reduce((s, x) => s + x, 0)).toBeCloseTo(report.downtime, 2);
    // Warm: the 300 ms setups happened in precopy; each VF's 11 ms apply is left, one after the other.
    expect(b['device-load-ms']).toBeGreaterThanOrEqual(22);
    expect(b['device-load-ms']).toBeLessThan(30);
    expect(report.emulator['stale-pages']).toBe(0);
  });

  it('a YAML scenario with a bad device field: exit 2, one line naming devices.0.<field>', () => {
    const bad = file('bad-device.yaml', 'migration: {mode: precopy}\ndevices:\n  - name: nic\n    readChunkBytes: 0\n');
    const r = bin('run', bad);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('postcopy-emu: devices.0.readChunkBytes: Too small: expected number to be >=1\n');
    const nested = file('bad-dma.yaml', 'migration: {mode: precopy}\ndevices:\n  - {}\n  - dma: {region: [{start: 0, count: 8}], tracking: dirty-bit}\n');
    const n = bin('run', nested);
    expect(n.status).toBe(2);
    expect(n.stderr.split('\n')).toEqual(['postcopy-emu: devices.1.dma.tracking: Invalid option: expected one of "none"|"unmap"|"iommu"|"device-log"', '']);
    const unknown = bin('run', file('unknown-device-field.yaml', 'migration: {mode: precopy}\ndevices:\n  - colour: blue\n'));
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('postcopy-emu: devices.0.colour: unknown field\n');
  });
});

describe('postcopy-emu reproduce vfio', () => {
  it('prints the three seeds\' tables, measured beside the published figures', () => {
    const r = bin('reproduce', 'vfio');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    const cells = (label: string) => lines.find((l) => l.startsWith(`  ${label} `))?.slice(label.length + 2).trim().split(/\s{2,}/);
    // Seed 000: warm-up and the per-device step.
    expect(lines[0]).toBe('Seed 000, vfio-virtio device warm-up (2024): downtime in ms, measured (published)');
    expect(cells('1 VF')).toEqual(['411.4', '111.4']);
    expect(cells('2 VFs')).toEqual(['722.3 (439)', '122.3 (128)']);
    expect(cells('each VF more')).toEqual(['311.0 (~400)', '11.0 (~11)']);
    expect(cells('2 VFs, 2 load threads')).toEqual(['411.3 (439)']);
    // Seed 002: switchover-ack takes the 1 s load out of the downtime.
    expect(lines).toContain('Seed 002, switchover-ack (2023): a VF with 1 s of initial-data load at the destination ("seconds" moved out of the downtime)');
    expect(cells('off')).toEqual(['900.1', '860.4', '1018.4', '4194304']);
    expect(cells('on')).toEqual(['22.0', '14.2', '1027.7', '17825792']);
    // Seed 003: untracked DMA never converges; the trackers do.
    expect(lines.some((l) => l.startsWith('Seed 003, DMA dirty tracking (2015)'))).toBe(true);
    expect(cells('none')?.slice(0, 2)).toEqual(['max-time', '10']);
    expect(cells('unmap (hot-unplug)')?.[0]).toBe('converged');
    expect(cells('iommu')?.slice(0, 5)).toEqual(['converged', '7', '1064960', '36.7', '201.0']);
    expect(cells('device-log')?.slice(0, 5)).toEqual(['converged', '7', '1064960', '7.3', '201.9']);
    for (const t of ['none', 'unmap (hot-unplug)', 'iommu', 'device-log']) expect(cells(t)?.at(-1), t).toBe('0');
  });
});

describe('postcopy-emu fields devices', () => {
  it('lists every device field of the spec, in order, with its default', () => {
    const r = bin('fields', 'devices');
    expect(r.status).toBe(0);
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^field\s+type\s+default\s+unit\s+allowed\s+source$/);
    const names = rows.slice(1).map((l) => l.split(/\s+/)[0]);
    const d = (f: string) => `devices[].${f}`;
    expect(names).toEqual([
      'devices', ...['name', 'kind', 'preCopy', 'initialBytes', 'dirtyBytesPerSec', 'stopCopyBytes', 'partialContexts', 'pacing', 'maxCalls',
        'readIntervalNs', 'readChunkBytes', 'readBytesPerSec', 'readCallNs'].map(d),
      ...['preCopy', 'quiesce', 'stop', 'stopCopyEnd', 'resuming', 'resume'].map((f) => d(`arcNs.${f}`)),
      ...['setupNs', 'applyNs', 'perByteNs'].map((f) => d(`load.${f}`)),
      ...['sizeQueryFails', 'stopBy', 'unplugNs', 'startBy', 'hotplugNs', 'resetNs', 'pageFaults', 'priCredits'].map(d),
      ...['region', 'buffers', 'bytesPerSec', 'pattern', 'tracking', 'unmapDelayNs', 'iommuScanPerPageNs', 'logMaxRanges', 'logReportPerPageNs', 'logFails'].map((f) => d(`dma.${f}`)),
    ]);
    const row = (name: string) => rows.find((l) => l.startsWith(`${name} `))!;
    expect(row('devices[].kind')).toMatch(/choice\s+vf\s+–\s+vf, virtio-vf\s/);
    expect(row('devices[].load.setupNs')).toMatch(/300000000 \(300 ms\)\s+ns\s/);
    expect(row('devices[].dma.tracking')).toMatch(/device-log\s+–\s+none, unmap, iommu, device-log\s/);
    // A field that applies under a condition says so.
    expect(row('devices[].maxCalls (pacing: cap)')).toMatch(/integer\s+128\s+calls/);
  });
});
