import { describe, expect, it } from 'vitest';
import { deviceDefaults, deviceName } from '../src/scenario/devices-schema.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { thrown } from './throws.ts';

const parseError = (input: unknown) => thrown(ScenarioError, () => parseScenario(input));
/** Precopy: the mode in which a device needs no page faults. */
const precopy = (devices: unknown[], more: Record<string, unknown> = {}) => ({ migration: { mode: 'precopy' }, devices, ...more }) as ScenarioInput;

describe('devices: defaults', () => {
  it('no devices, and the migration fields off, by default', () => {
    const s = parseScenario({});
    expect(s.devices).toEqual([]);
    expect(s.migration).toMatchObject({ switchoverAck: false, deviceLoadThreads: 1, deviceChannel: 'main' });
  });

  it('an empty device takes every default of the spec', () => {
    const [d] = parseScenario(precopy([{}])).devices;
    expect(d).toEqual({
      kind: 'vf', preCopy: true, initialBytes: 1_048_576, dirtyBytesPerSec: 0, stopCopyBytes: 1_048_576,
      maxCalls: 128, readIntervalNs: 1e9, readChunkBytes: 1_048_576, readBytesPerSec: 2e9, readCallNs: 20_000,
      arcNs: { preCopy: 100_000, quiesce: 1_000_000, stop: 5_000_000, stopCopyEnd: 100_000, resuming: 1_000_000, resume: 1_000_000 },
      load: { setupNs: 300_000_000, applyNs: 11_000_000, perByteNs: 0.1 },
      sizeQueryFails: false, stopBy: 'vfio', unplugNs: 5e9, startBy: 'resume', hotplugNs: 5e9, resetNs: 1e8,
      pageFaults: 'none', priCredits: 32,
    });
    expect(d!.name).toBeUndefined();
    expect(d!.partialContexts).toBeUndefined();
    expect(d!.dma).toBeUndefined();
  });

  it('a dma section takes its defaults around the region', () => {
    const [d] = parseScenario(precopy([{ dma: { region: [{ start: 0, count: 16 }] } }])).devices;
    expect(d!.dma).toEqual({
      region: [{ start: 0, count: 16 }], bytesPerSec: 1.25e8, pattern: 'sequential', tracking: 'device-log',
      unmapDelayNs: 1_000_000, iommuScanPerPageNs: 5, logMaxRanges: 2, logReportPerPageNs: 1, logFails: false,
    });
  });

  it('deviceDefaults resolves partialContexts and pacing from the kind, keeping what is given', () => {
    const [vf, virtio, given] = parseScenario(precopy([{}, { kind: 'virtio-vf' }, { kind: 'virtio-vf', partialContexts: true, pacing: 'cap' }])).devices;
    expect(deviceDefaults(vf!)).toMatchObject({ kind: 'vf', partialContexts: true, pacing: 'none' });
    expect(deviceDefaults(virtio!)).toMatchObject({ kind: 'virtio-vf', partialContexts: false, pacing: 'rate-limit' });
    expect(deviceDefaults(given!)).toMatchObject({ partialContexts: true, pacing: 'cap' });
    expect(deviceDefaults(vf!).arcNs).toEqual(vf!.arcNs);
  });

  it('names: given, or dev<index>', () => {
    const s = parseScenario(precopy([{ name: 'nic.0' }, {}]));
    expect(s.devices.map(deviceName)).toEqual(['nic.0', 'dev1']);
  });
});

describe('devices: schema errors name the field', () => {
  it('bad values and unknown fields', () => {
    expect(parseError(precopy([{ kind: 'gpu' }])).path).toBe('devices.0.kind');
    expect(parseError(precopy([{}, { nmae: 'x' }])).path).toBe('devices.1.nmae');
    expect(parseError(precopy([{ name: 'a b' }])).path).toBe('devices.0.name');
    expect(parseError(precopy([{ name: 'x'.repeat(65) }])).path).toBe('devices.0.name');
    expect(parseError(precopy([{ priCredits: 0 }])).path).toBe('devices.0.priCredits');
    expect(parseError(precopy([{ arcNs: { stop: -1 } }])).path).toBe('devices.0.arcNs.stop');
    expect(parseError(precopy([{ dma: {} }])).path).toBe('devices.0.dma.region');
    expect(parseError(precopy([{ dma: { region: [{ start: 0, count: 1 }], bytesPerSec: 0 } }])).path).toBe('devices.0.dma.bytesPerSec');
    expect(parseError({ migration: { deviceLoadThreads: 65 } }).path).toBe('migration.deviceLoadThreads');
    expect(parseError({ migration: { deviceChannel: 'rdma' } }).path).toBe('migration.deviceChannel');
  });

  it('at most 64 devices', () => {
    expect(parseScenario(precopy(Array.from({ length: 64 }, () => ({})))).devices).toHaveLength(64);
    const e = parseError(precopy(Array.from({ length: 65 }, () => ({}))));
    expect(e.path).toBe('devices');
    expect(e.detail).toBe('at most 64 devices');
  });
});

describe('devices: cross-field checks', () => {
  it('a DMA region lies within memory.pages', () => {
    const e = parseError(precopy([{}, { dma: { region: [{ start: 0, count: 10 }, { start: 95, count: 6 }] } }], { memory: { pages: 100 } }));
    expect(e.path).toBe('devices.1.dma.region.1');
    expect(e.detail).toBe('range [95, 101) must lie within memory.pages (100)');
    expect(parseScenario(precopy([{ dma: { region: [{ start: 95, count: 5 }] } }], { memory: { pages: 100 } })).devices[0]!.dma!.region).toHaveLength(1);
  });

  it('device data on multifd needs multifd channels', () => {
    const e = parseError({ migration: { mode: 'precopy', deviceChannel: 'multifd' } });
    expect(e.path).toBe('migration.deviceChannel');
    expect(e.detail).toBe('multifd needs multifd.channels > 0');
    const s = parseScenario({ migration: { mode: 'precopy', deviceChannel: 'multifd' }, precopy: { policy: 'qemu' }, multifd: { channels: 2 } });
    expect(s.migration.deviceChannel).toBe('multifd');
  });

  it('postcopy and hybrid need pageFaults: iopf (QEMU blocks postcopy with a VFIO device)', () => {
    for (const mode of ['postcopy', 'hybrid'] as const) {
      const e = parseError({ migration: { mode }, devices: [{ pageFaults: 'iopf' }, {}] });
      expect(e.path).toBe('devices.1.pageFaults');
      expect(e.detail).toBe(
        'QEMU refuses postcopy with a VFIO device (2023, \'Block VFIO migration with postcopy migration\'): a device cannot fault on a page that has not arrived; set pageFaults: iopf to model IOMMU page faults (PCIe ATS/PRI)',
      );
      expect(parseScenario({ migration: { mode }, devices: [{ pageFaults: 'iopf' }] }).devices[0]!.pageFaults).toBe('iopf');
    }
    // postcopy is the default mode: a bare device is refused there.
    expect(parseError({ devices: [{}] }).path).toBe('devices.0.pageFaults');
  });

  it('names are unique, defaults included; the given name is blamed', () => {
    const same = parseError(precopy([{ name: 'nic' }, {}, { name: 'nic' }]));
    expect(same.path).toBe('devices.2.name');
    expect(same.detail).toBe('"nic" is also the name of devices.0 (unset names are dev<index>); names must be unique');
    // devices.1's default name is dev1: the explicit dev1 at index 0 clashes with it.
    expect(parseError(precopy([{ name: 'dev1' }, {}])).path).toBe('devices.0.name');
    expect(parseError(precopy([{}, { name: 'dev0' }])).path).toBe('devices.1.name');
    expect(parseScenario(precopy([{ name: 'dev0' }, {}])).devices).toHaveLength(2);
  });
});

describe('devices: how they stop and start, and the policy', () => {
  it('a hot-unplugged device must come back by hotplug or reset', () => {
    expect(parseError(precopy([{ stopBy: 'hot-unplug' }]))).toMatchObject({ field: 'devices.0.startBy', message: expect.stringContaining('no state to resume: hotplug or reset') });
    expect(parseScenario(precopy([{ stopBy: 'hot-unplug', startBy: 'hotplug' }])).devices[0]!.startBy).toBe('hotplug');
  });

  it('hotplug or reset needs a device that did not migrate its state', () => {
    expect(parseError(precopy([{ startBy: 'reset' }]))).toMatchObject({ field: 'devices.0.startBy', message: expect.stringContaining('need stopBy hot-unplug') });
  });

  it('VFIO migration is QEMU\'s: Xen\'s precopy policy is refused', () => {
    expect(parseError(precopy([{}], { precopy: { policy: 'xen' } }))).toMatchObject({ field: 'precopy.policy', message: expect.stringContaining('need precopy.policy qemu') });
  });
});
