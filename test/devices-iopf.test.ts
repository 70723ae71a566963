import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';

/** A 64 MiB guest with a NIC whose DMA can fault (PCIe ATS/PRI) into 8 MiB of RX buffers at 125 MB/s. */
const iopf = (mode: 'postcopy' | 'hybrid', priCredits: number, policy: 'qemu' | 'demand' = 'qemu') => ({
  memory: { pages: 16_384 },
  migration: { mode, ...(mode === 'hybrid' ? { switchAfterIterations: 1 } : {}) },
  source: { policy },
  link: { rateMbps: 1000 },
  precopy: { dirtying: { kind: 'fio', region: { start: 0, count: 4096 }, bytesPerSec: 5e8 } },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'idle', vcpus: 1 },
  devices: [{ name: 'nic0', pageFaults: 'iopf', priCredits, dma: { region: [{ start: 0, count: 16_384 }], buffers: [{ start: 8192, count: 2048 }] } }],
}) as ScenarioInput;

const run = (s: ScenarioInput) => {
  const emu = new Emulator(s).run();
  return { emu, r: buildReport(emu) };
};

describe('devices whose DMA faults through the IOMMU (pageFaults: iopf)', () => {
  it('postcopy mode: the device state goes first, in the downtime; its DMA parks on pages not there yet', () => {
    const { emu, r } = run(iopf('postcopy', 1));
    expect(r.status).toBe('completed');
    expect(r.downtime).toBe(330.228);
    // The 300 ms allocation and 11 ms apply (no warm-up without precopy), plus the default arcs.
    expect(r.emulator['downtime-breakdown']).toMatchObject({ 'device-stop-ms': 6, 'device-load-ms': 314.155 });
    // QEMU reads a record page by page as its bytes come (pager.wakeAt page): the DMA, 32.8 µs a
    // 4 KiB page at 125 MB/s, is a little faster than the wire's 33.3 µs, so it catches up with
    // the arriving pages 71 times and parks, asking for the page on its way each time. Read
    // whole, the records arrive 64 pages at a time: 7 parks, 2.6 ms more stall, 49 pages fewer.
    expect(r.emulator.devices![0]!.iopf).toEqual({ 'dma-stall-ms': 35.558, 'pri-requests': 71, 'pages-written': 2060 });
    expect(checkRun(emu)).toEqual([]);
  });

  it('PRI credits bound the requests that go out ahead of the parked page', () => {
    const one = run(iopf('postcopy', 1)).r.emulator.devices![0]!.iopf!;
    const eight = run(iopf('postcopy', 8)).r.emulator.devices![0]!.iopf!;
    expect([one['pri-requests'], eight['pri-requests']]).toEqual([71, 568]);
    // The buffers arrive at the background push's pace either way: the stall is the push's.
    expect(eight['dma-stall-ms']).toBe(one['dma-stall-ms']);
  });

  it('with a demand-only source the device asks for each of its buffer pages itself, and the run ends', () => {
    const { emu, r } = run(iopf('postcopy', 8, 'demand'));
    expect(r.emulator.devices![0]!.iopf).toEqual({ 'dma-stall-ms': 119.015, 'pri-requests': 2048, 'pages-written': 2040 });
    expect(r['total-time']).toBe(754.953);
    expect(emu.kernel.pending).toBe(0);
  });

  it('hybrid: the switch stops the device and sends its state; postcopy then serves its faults', () => {
    const { emu, r } = run(iopf('hybrid', 4));
    expect(r.status).toBe('completed');
    expect(r.emulator.precopy?.['switched-to-postcopy']).toBe(true);
    expect(r.emulator.devices![0]).toMatchObject({ 'source-state': 'STOP', 'destination-state': 'RUNNING', iopf: { 'pri-requests': 284 } });
    expect(checkRun(emu)).toEqual([]);
  });
});
