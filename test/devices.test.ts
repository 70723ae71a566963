import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import type { DeviceArc } from '../src/devices/devices.ts';
import { DeviceState } from '../src/devices/fsm.ts';
import { Emulator } from '../src/emulator.ts';
import { buildReport } from '../src/metrics/report.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import type { ScenarioInput } from '../src/scenario/schema.ts';
import { thrown } from './throws.ts';

// Hand-checked figures. The base guest: 1024 pages (4 MiB), nothing dirties it, a 10 Gbit/s link
// (0.8 ns/byte) with no latency, default precopy (setupNs 2 ms, 1 ns per page per sync, 300 ms
// downtime limit). Devices move 1 MiB of stop-copy state and read it at 2e9 B/s.
const MiB = 1 << 20;
/** One read() of 1 MiB: readCallNs 20 000 + 2^20 B / 2e9 B/s = 524 288 ns. */
const READ_1MIB = 20_000 + 524_288;
/** 1 MiB on the wire: 725 TCP segments of ≤ 1448 B, 90 B of headers and framing each, at 0.8 ns/B. */
const WIRE_1MIB = Math.ceil((MiB + 725 * 90) * 0.8);
/** A sync walks the 1024 pages' dirty log at 1 ns each (nothing dirty). */
const SYNC = 1024;
/** Setup: precopy.setupNs + setup's sync (device arcs cost 0 in ARCS0). */
const SETUP_END = 2_000_000 + SYNC;
/**
 * Nothing is dirty, so RAM is sent by ~5.5 ms; the threshold is 0 until the first 100 ms window
 * ends, then bandwidth × 300 ms: the exact query (a sync) then finds 1 MiB below it and stops.
 */
const PAUSE = 100_000_000 + SYNC;

const ARCS0 = { preCopy: 0, quiesce: 0, stop: 0, stopCopyEnd: 0, resuming: 0, resume: 0 };
/** ns as the report gives ms: rounded to the µs. */
const ms = (ns: number) => Math.round(ns / 1000) / 1000;

type DeviceInput = NonNullable<ScenarioInput['devices']>[number];
/** A VF without device precopy: only the stop arc costs (5 ms); its load is 100 ms setup + 10 ms apply. */
const cold = (name: string, more: DeviceInput = {}): DeviceInput => ({
  name, preCopy: false, stopCopyBytes: MiB, arcNs: { ...ARCS0, stop: 5_000_000 }, load: { setupNs: 100_000_000, applyNs: 10_000_000, perByteNs: 0 }, ...more,
});

function scenario(devices: DeviceInput[], more: Partial<ScenarioInput> = {}): ScenarioInput {
  return {
    memory: { pages: 1024 },
    link: { rateMbps: 10_000, latencyNs: 0 },
    backChannel: { rateMbps: 10_000, latencyNs: 0 },
    source: { policy: 'qemu' },
    mapper: { mapping: { kind: 'none' } },
    workload: { kind: 'idle', vcpus: 1 },
    ...more,
    migration: { mode: 'precopy', ...more.migration },
    precopy: { dirtying: { kind: 'none' }, ...more.precopy },
    devices,
  };
}

function run(input: ScenarioInput) {
  const emu = new Emulator(input).run();
  const r = buildReport(emu);
  return { emu, r, b: r.emulator['downtime-breakdown']!, devs: r.emulator.devices!, pre: r.emulator.precopy! };
}

/** The CPU state and the destination's switchover after the devices: the same as without devices. */
const TAIL = (() => {
  const { b } = run(scenario([]));
  return { vcpu: b['vcpu-state-ms'], switchover: b['switchover-ms'] };
})();

describe('device loads without device precopy', () => {
  it('one device: stop arc, read, wire, then setup + apply on the load thread, all in the downtime', () => {
    const { emu, r, b, devs } = run(scenario([cold('vf0')]));
    expect(r.status).toBe('completed');
    expect(emu.pausedAt).toBe(PAUSE);
    expect(b).toEqual({
      'device-stop-ms': 5, // RUNNING → RUNNING_P2P (0) → STOP (5 ms) → STOP_COPY (0)
      'ram-ms': ms(SYNC), // the final sync; nothing left to send
      'device-transfer-ms': ms(READ_1MIB),
      'drain-ms': ms(WIRE_1MIB),
      'device-load-ms': 110, // arrives when drained: 100 + 10 ms, the destination's arcs cost 0
      'vcpu-state-ms': TAIL.vcpu,
      'switchover-ms': TAIL.switchover,
    });
    expect(r.downtime).toBeCloseTo(5 + ms(SYNC) + ms(READ_1MIB) + ms(WIRE_1MIB) + 110 + TAIL.vcpu + TAIL.switchover, 3);
    expect(devs[0]).toMatchObject({ 'precopy-bytes': 0, 'stop-copy-bytes': MiB, 'device-calls': 0, 'initial-loaded-at-ms': null });
    expect(devs[0]!['loaded-at-ms']).toBeCloseTo(ms(PAUSE + 5_000_000 + SYNC + READ_1MIB + WIRE_1MIB + 110_000_000), 3);
    expect(r.vfio).toEqual({ transferred: MiB });
  });

  it('two devices on one load thread: each adds setup + apply + its arcs; the second one\'s transfer hides behind the first load', () => {
    const one = run(scenario([cold('vf0')])), two = run(scenario([cold('vf0'), cold('vf1')]));
    const { b } = two;
    expect(b['device-stop-ms']).toBe(10);
    expect(b['device-transfer-ms']).toBe(ms(2 * READ_1MIB));
    // vf1's data waits for vf0's on the wire: the drain ends one wire time after vf0 arrived.
    const arrive0 = READ_1MIB + WIRE_1MIB, arrive1 = arrive0 + WIRE_1MIB;
    expect(b['drain-ms']).toBe(ms(arrive1 - 2 * READ_1MIB));
    // vf1's load starts when vf0's ends: 2 × 110 ms from vf0's arrival.
    expect(b['device-load-ms']).toBe(ms(arrive0 + 220_000_000 - arrive1));
    expect(two.r.downtime - one.r.downtime).toBeCloseTo(110 + 5, 3);
    expect(two.devs.map((d) => d['loaded-at-ms'])).toEqual([
      ms(PAUSE + 10_000_000 + SYNC + arrive0 + 110_000_000), ms(PAUSE + 10_000_000 + SYNC + arrive0 + 220_000_000),
    ]);
  });

  it('every arc and the per-byte copy: N × (setup + apply + perByte × bytes + stop arcs + start arcs)', () => {
    const arcNs = { preCopy: 100_000, quiesce: 1_000_000, stop: 5_000_000, stopCopyEnd: 200_000, resuming: 2_000_000, resume: 1_000_000 };
    const dev = (name: string) => cold(name, { arcNs, load: { setupNs: 100_000_000, applyNs: 10_000_000, perByteNs: 1 } });
    // Source: RUNNING → RUNNING_P2P (quiesce) → STOP (stop) → STOP_COPY (preCopy); STOP (stopCopyEnd)
    // at cleanup, once the migration completed: in no phase's time.
    // Destination, at the end: RESUMING → STOP → RUNNING_P2P → RUNNING, three `resume` arcs (STOP → RESUMING was at setup).
    const stopArcs = 1_000_000 + 5_000_000 + 100_000, startArcs = 3 * 1_000_000, load = 110_000_000 + MiB;
    const one = run(scenario([dev('vf0')])), two = run(scenario([dev('vf0'), dev('vf1')]));
    expect(one.b['device-stop-ms']).toBe(ms(stopArcs));
    expect(one.b['device-transfer-ms']).toBe(ms(READ_1MIB));
    expect(one.b['drain-ms']).toBe(ms(WIRE_1MIB));
    expect(one.b['device-load-ms']).toBe(ms(load + startArcs));
    expect(two.b['device-stop-ms']).toBe(ms(2 * stopArcs));
    // vf1's reads follow vf0's at once: vf0's STOP waits for the cleanup.
    expect(two.b['device-transfer-ms']).toBe(ms(2 * READ_1MIB));
    expect(two.r.downtime - one.r.downtime).toBeCloseTo(ms(load + stopArcs + startArcs), 2);
    expect(one.r.downtime).toBeCloseTo(ms(stopArcs + SYNC + READ_1MIB + WIRE_1MIB + load + startArcs) + TAIL.vcpu + TAIL.switchover, 3);
  });

  it('two load threads: the loads overlap, one load is left in the downtime', () => {
    const { b, r } = run(scenario([cold('vf0'), cold('vf1')], { migration: { deviceLoadThreads: 2 } }));
    expect(b['device-load-ms']).toBe(110);
    const serial = run(scenario([cold('vf0'), cold('vf1')]));
    expect(serial.r.downtime - r.downtime).toBeCloseTo(110 - WIRE_1MIB / 1e6, 3);
  });
});

describe('warm-up: device precopy moves the setup out of the downtime', () => {
  it('the first precopy data allocates the device (setupNs); the downtime keeps applyNs', () => {
    const load = { setupNs: 50_000_000, applyNs: 10_000_000, perByteNs: 0 };
    const coldRun = run(scenario([cold('vf0', { load })]));
    const warm = run(scenario([cold('vf0', { load, preCopy: true, initialBytes: MiB })]));
    // The first turn is right after setup: one 1 MiB read, on the wire, then the 50 ms setup.
    expect(warm.devs[0]).toMatchObject({ 'precopy-bytes': MiB, 'stop-copy-bytes': MiB, reads: 2, 'device-calls': 1 });
    expect(warm.devs[0]!['initial-loaded-at-ms']).toBe(ms(SETUP_END + READ_1MIB + WIRE_1MIB + 50_000_000));
    expect(warm.emu.pausedAt).toBe(PAUSE);
    // PRE_COPY → PRE_COPY_P2P (quiesce, 0) → STOP_COPY (stop, 5 ms).
    expect(warm.b['device-stop-ms']).toBe(5);
    expect(warm.b['device-load-ms']).toBe(10);
    expect(coldRun.b['device-load-ms']).toBe(60);
    expect(coldRun.r.downtime - warm.r.downtime).toBeCloseTo(50, 3);
    expect(warm.r.vfio).toEqual({ transferred: 2 * MiB });
  });
});

describe('switchover-ack', () => {
  // A guest that converges at the first window (fio writes 10 MB/s into 1 MiB), a VF whose initial data takes 1 s to load.
  const ack = (on: boolean) => run(scenario([{ name: 'vf0', initialBytes: MiB, stopCopyBytes: MiB, arcNs: { ...ARCS0, stop: 5_000_000 }, load: { setupNs: 1e9, applyNs: 10_000_000, perByteNs: 0 } }], {
    memory: { pages: 4096 },
    backChannel: { rateMbps: 10_000, latencyNs: 300_000 },
    migration: { switchoverAck: on },
    precopy: { dirtying: { kind: 'fio', region: { start: 0, count: 256 }, bytesPerSec: 1e7 } },
  }));

  it('off: the guest stops while the initial load runs; the rest of it, and the apply, are downtime', () => {
    const { emu, r, b, devs } = ack(false);
    expect(r.status).toBe('completed');
    const initial = devs[0]!['initial-loaded-at-ms']!;
    expect(emu.pausedAt / 1e6).toBeLessThan(initial - 800);
    expect(r.emulator.precopy!['paused-at-ms']).toBeCloseTo(100, 0);
    // The stop-copy data waits for the load thread: loaded at initial + applyNs.
    expect(devs[0]!['loaded-at-ms']).toBe(ms(initial * 1e6 + 10_000_000));
    expect(b['device-load-ms']).toBeCloseTo(initial + 10 - ms(emu.stopMilestones.drained), 2);
    expect(r.downtime).toBeGreaterThan(900);
  });

  it('on: the source waits for SWITCHOVER_ACK (initial load done + back-channel latency); only applyNs is left', () => {
    const { emu, r, b, devs } = ack(true);
    expect(r.status).toBe('completed');
    const initial = devs[0]!['initial-loaded-at-ms']!;
    expect(initial).toBe(ack(false).devs[0]!['initial-loaded-at-ms']);
    expect(emu.pausedAt).toBeGreaterThanOrEqual(initial * 1e6 + 300_000);
    expect(b['device-load-ms']).toBe(10);
    expect(r.downtime).toBeLessThan(20);
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('a failed stop-copy size query', () => {
  it('counts as 100 GiB: precopy never converges and ends at precopy.maxTimeNs', () => {
    const dev = cold('vf0', { preCopy: true });
    expect(run(scenario([dev])).pre.end).toBe('converged');
    const { emu, r, pre } = run(scenario([{ ...dev, sizeQueryFails: true }], { precopy: { maxTimeNs: 500_000_000 } }));
    expect(pre.end).toBe('max-time');
    expect(emu.pausedAt).toBe(500_000_000);
    expect(r.status).toBe('completed');
    // The real stop-copy data is 1 MiB, not 100 GiB.
    expect(r.vfio).toEqual({ transferred: 2 * MiB });
  });
});

describe('pacing of whole-context reads (virtio-vf)', () => {
  /** A virtio-vf that never lets precopy converge, for 1 s: every read returns its whole 64 KiB context. */
  function paced(pacing: 'none' | 'cap' | 'rate-limit') {
    const emu = new Emulator(scenario([{
      kind: 'virtio-vf', pacing, maxCalls: 3, readIntervalNs: 200_000_000, stopCopyBytes: 65_536, sizeQueryFails: true, arcNs: ARCS0, load: { setupNs: 0, applyNs: 0, perByteNs: 0 },
    }], { precopy: { maxTimeNs: 1e9 } }));
    // When each device call that returned data was made.
    const d = emu.devices!.list[0]!, calls: number[] = [], read = d.readPrecopy.bind(d);
    d.readPrecopy = (now: number) => {
      const before = d.calls, n = read(now);
      if (d.calls > before) calls.push(now);
      return n;
    };
    emu.run();
    return { calls, dev: buildReport(emu).emulator.devices![0]! };
  }

  it('none: a context every device turn (50 ms) for the whole second', () => {
    const { calls, dev } = paced('none');
    expect(calls[0]).toBe(SETUP_END);
    expect(dev['device-calls']).toBe(20);
    expect(dev['precopy-bytes']).toBe(20 * 65_536);
  });

  it('cap: at most maxCalls contexts, then 0 bytes', () => {
    const { calls, dev } = paced('cap');
    expect(dev['device-calls']).toBe(3);
    expect(calls).toHaveLength(3);
    expect(dev['precopy-bytes']).toBe(3 * 65_536);
    expect(dev.reads).toBe(3 + 1); // and the stop-copy read
  });

  it('rate-limit: at most one context per readIntervalNs', () => {
    const { calls, dev } = paced('rate-limit');
    expect(dev['device-calls']).toBe(calls.length);
    expect(calls.length).toBe(5); // 1 + floor((1 s − 2 ms) / 200 ms)
    for (let i = 1; i < calls.length; i++) expect(calls[i]! - calls[i - 1]!).toBeGreaterThanOrEqual(200_000_000);
    expect(dev['precopy-bytes']).toBe(5 * 65_536);
  });
});

/** Every device event of a run, in emission order. */
function withArcs(input: ScenarioInput) {
  const emu = new Emulator(input), arcs: DeviceArc[] = [];
  emu.events.on('device', (e) => arcs.push(e));
  emu.run();
  return { emu, arcs };
}

describe('the P2P rule and the end states', () => {
  const inputs: [string, ScenarioInput][] = [
    ['two cold VFs', scenario([cold('vf0'), cold('vf1')])],
    ['a warm VF and a cold virtio-vf', scenario([{ name: 'vf0', initialBytes: 3 * MiB, stopCopyBytes: 2 * MiB, load: { setupNs: 20_000_000 } }, { name: 'virt', kind: 'virtio-vf', preCopy: false }])],
    ['three default VFs, two load threads', scenario([{}, {}, { preCopy: false }], { migration: { deviceLoadThreads: 2 } })],
  ];
  it.each(inputs)('%s: every source device is quiesced before any is stopped; source ends STOP, destination RUNNING', (_, input) => {
    const { emu, arcs } = withArcs(input);
    expect(emu.status).toBe('completed');
    const src = arcs.filter((a) => a.side === 'source');
    const lastQuiesce = Math.max(...src.filter((a) => a.to.endsWith('_P2P')).map((a) => a.time));
    const firstStop = Math.min(...src.filter((a) => a.to === 'STOP' || a.to === 'STOP_COPY').map((a) => a.time));
    expect(firstStop).toBeGreaterThanOrEqual(lastQuiesce);
    const names = emu.devices!.list.map((d) => d.name);
    for (const name of names) {
      const own = (side: string) => arcs.filter((a) => a.device === name && a.side === side);
      expect(own('source').some((a) => a.to.endsWith('_P2P')), name).toBe(true);
      expect(own('source').at(-1)!.to, name).toBe('STOP');
      expect(own('destination').at(-1)!.to, name).toBe('RUNNING');
    }
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('DMA and its dirty tracking', () => {
  /**
   * 64 MiB at 1 Gbit/s, 100 ms downtime limit (threshold ~12.5 MB ≈ 3000 pages). The NIC can reach
   * 8192 pages (32 MiB) and writes a ring of 1024 of them at 1.25e7 B/s.
   */
  const nic = (tracking: 'none' | 'unmap' | 'iommu' | 'device-log', more: Partial<DeviceInput> = {}) => scenario([cold('nic', {
    dma: { region: [{ start: 0, count: 8192 }], buffers: [{ start: 4096, count: 1024 }], bytesPerSec: 1.25e7, tracking },
    ...more,
  })], { memory: { pages: 16_384 }, link: { rateMbps: 1000, latencyNs: 0 }, precopy: { downtimeLimitMs: 100, maxTimeNs: 2e9 } });

  it('none: the whole reachable region is dirty at every sync, more than the threshold: never converges', () => {
    const { r, pre, devs, emu } = run(nic('none'));
    expect(pre.end).toBe('max-time');
    expect(r.status).toBe('completed');
    // Every sync reports all 8192 pages (setup's sync has no DMA report).
    expect(devs[0]!.dma).toMatchObject({ 'pages-reported': 8192 * pre.iterations, 'tracking-ms': 0, 'lost-pages': 0 });
    expect(checkRun(emu)).toEqual([]);
  });

  it('iommu and device-log report what was written: precopy converges; each sync costs region pages × per-page', () => {
    for (const [tracking, perPage] of [['iommu', 5], ['device-log', 1]] as const) {
      const { r, pre, devs, emu } = run(nic(tracking));
      expect(pre.end, tracking).toBe('converged');
      expect(r['total-time']).toBeLessThan(2000);
      // iommu scans the 8192 mapped pages' PTEs at 5 ns; device-log reports one range of 8192 pages at 1 ns.
      expect(devs[0]!.dma!['tracking-ms'], tracking).toBeCloseTo(ms(pre.iterations * 8192 * perPage), 3);
      expect(r.emulator['stale-pages']).toBe(0);
      expect(checkRun(emu)).toEqual([]);
    }
  });

  /** 1 page per ms (4.096e6 B/s) into a ring of 4096 pages; unmapped 10 ms after the write. */
  const slowRing = (more: Partial<DeviceInput>) => scenario([cold('nic', {
    dma: { region: [{ start: 0, count: 16_384 }], buffers: [{ start: 8192, count: 4096 }], bytesPerSec: 4.096e6, tracking: 'unmap', unmapDelayNs: 10_000_000 },
    ...more,
  })], { memory: { pages: 16_384 }, link: { rateMbps: 1000, latencyNs: 0 }, precopy: { downtimeLimitMs: 100, maxTimeNs: 2e9 } });

  it('unmap with a VFIO stop: the writes of the last unmapDelayNs are never unmapped, never seen, stale at the destination', () => {
    const { emu, r, devs } = run(slowRing({}));
    expect(r.status).toBe('completed');
    // DMA stops when the NIC is quiesced (RUNNING_P2P, quiesce 0: at the pause): one page per ms until then.
    expect(devs[0]!.dma!['pages-written']).toBe(Math.floor(emu.pausedAt / 1e6));
    // The last 10 ms of writes (10 pages, each first written in this lap) were pending their unmap.
    expect(devs[0]!.dma!['lost-pages']).toBe(10);
    expect(r.emulator['stale-pages']).toBe(10);
    expect(checkRun(emu)).toEqual(['10 pages at the destination are older than at the source after precopy (DMA by nic the dirty tracking did not report)']);
  });

  it('unmap with hot-unplug and hotplug: the driver unmaps every buffer, nothing is stale', () => {
    const { emu, r, devs } = run(slowRing({ stopBy: 'hot-unplug', startBy: 'hotplug', unplugNs: 200_000_000, hotplugNs: 1e9 }));
    expect(r.status).toBe('completed');
    expect(devs[0]!.dma!['lost-pages']).toBe(0);
    expect(devs[0]).toMatchObject({ 'source-state': 'RUNNING', 'destination-state': 'RUNNING', 'stop-copy-bytes': 0 });
    expect(devs[0]!['unplugged-at-ms']).toBeGreaterThanOrEqual(200);
    expect(r.emulator['stale-pages']).toBe(0);
    expect(r.vfio).toEqual({ transferred: 0 });
    expect(checkRun(emu)).toEqual([]);
  });
});

describe('postcopy needs a device that can fault', () => {
  it('postcopy and hybrid with pageFaults none are refused, naming the field', () => {
    for (const mode of ['postcopy', 'hybrid'] as const) {
      const e = thrown(ScenarioError, () => new Emulator({ ...scenario([{}, cold('vf1')]), migration: { mode } }));
      expect(e.field).toBe('devices.0.pageFaults');
      expect(e.message).toContain('QEMU refuses postcopy with a VFIO device');
    }
  });
});

describe('library events', () => {
  /** A precopy run with one warm device and a light writer: every event with its time. */
  function events() {
    const emu = new Emulator(scenario([{ name: 'vf0', arcNs: { ...ARCS0, quiesce: 1_000_000, stop: 5_000_000 }, load: { setupNs: 20_000_000 } }], {
      memory: { pages: 4096 }, precopy: { dirtying: { kind: 'fio', region: { start: 0, count: 256 }, bytesPerSec: 1e7 } },
    }));
    const log: { kind: string; time: number; what: string }[] = [];
    emu.events.on('device', (e) => log.push({ kind: 'device', time: e.time, what: `${e.side} ${e.from}→${e.to}` }));
    emu.events.on('status', (e) => log.push({ kind: 'status', time: e.time, what: e.status }));
    emu.events.on('sync', (e) => log.push({ kind: 'sync', time: e.time, what: String(e.count) }));
    emu.run();
    return { emu, log };
  }

  it('device, status and sync events all arrive, each kind in time order', () => {
    const { emu, log } = events();
    expect(emu.status).toBe('completed');
    for (const kind of ['device', 'status', 'sync']) {
      const times = log.filter((e) => e.kind === kind).map((e) => e.time);
      expect(times.length, kind).toBeGreaterThan(0);
      expect(times, kind).toEqual([...times].sort((a, b) => a - b));
    }
    expect(log.filter((e) => e.kind === 'status').map((e) => e.what)).toEqual(['active', 'device']);
    // The syncs are numbered as dirty-sync-count; the last is the final one, in the downtime.
    expect(log.filter((e) => e.kind === 'sync').map((e) => Number(e.what)).at(-1)).toBe(emu.precopy!.syncs);
    // The stop and the start: quiesce, stop, close the data fd; the destination resumes.
    expect(log.filter((e) => e.kind === 'device' && e.time >= emu.pausedAt).map((e) => e.what)).toEqual([
      'source PRE_COPY→PRE_COPY_P2P', 'source PRE_COPY_P2P→STOP_COPY', 'source STOP_COPY→STOP',
      'destination RESUMING→STOP', 'destination STOP→RUNNING_P2P', 'destination RUNNING_P2P→RUNNING',
    ]);
  });

  // The stop's status, arcs and final sync come in time order.
  it('device, status and sync events arrive in time order, interleaved', () => {
    const { log } = events();
    const times = log.map((e) => e.time);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  // Setup's arcs are taken on the clock, at time 0, so listeners hear them.
  it('the device event reports every arc of the FSM logs, setup\'s included', () => {
    const { emu, log } = events();
    const d = emu.devices!.list[0]!;
    const logged = (side: string, l: typeof d.src.log) => l.to.map((to, i) => `${side} ${DeviceState[l.from[i]!]}→${DeviceState[to]}`);
    expect(log.filter((e) => e.kind === 'device').map((e) => e.what).sort()).toEqual([...logged('source', d.src.log), ...logged('destination', d.dst.log)].sort());
  });
});

describe('device data on multifd channels', () => {
  /** 2 multifd channels, each on its own wire, so the main channel's bytes show where device data went. */
  const input = (deviceChannel: 'main' | 'multifd') => scenario(
    [{ name: 'a', initialBytes: 3 * MiB, stopCopyBytes: 2 * MiB, load: { setupNs: 20_000_000 } }, { name: 'b', kind: 'virtio-vf', preCopy: false }],
    { memory: { pages: 4096 }, multifd: { channels: 2, wire: 'per-channel' }, migration: { deviceChannel } },
  );

  it('sends the same device data off the main channel; query-migrate\'s transferred counts it either way', () => {
    const main = run(input('main')), mf = run(input('multifd'));
    // a: two 1 MiB precopy turns (no ack: it converges before the 3rd), then 2 MiB; b: 1 MiB of stop-copy.
    for (const x of [main, mf]) {
      expect(x.r.status).toBe('completed');
      expect(x.devs.map((d) => [d['precopy-bytes'], d['stop-copy-bytes']])).toEqual([[2 * MiB, 2 * MiB], [0, MiB]]);
      expect(x.r.vfio).toEqual({ transferred: 5 * MiB });
      expect(checkRun(x.emu)).toEqual([]);
    }
    // Main channel: RAM's main-channel bytes, its multifd packets, and the device data apart.
    const ram = main.r.ram, mfRam = mf.r.ram;
    expect(ram.transferred).toBe(ram['precopy-bytes'] + ram['downtime-bytes'] + ram['multifd-bytes'] + 5 * MiB);
    // Multifd: five device-state packets (a: 2 precopy + 2 stop-copy chunks, b: 1), each with a 320-byte header, in multifd-bytes.
    expect(mfRam['multifd-bytes'] - ram['multifd-bytes']).toBe(5 * MiB + 5 * 320);
    expect(mfRam.transferred).toBe(mfRam['precopy-bytes'] + mfRam['downtime-bytes'] + mfRam['multifd-bytes']);
    // With multifd, RAM goes on the channels: the main channel carried the device data alone, or nothing.
    expect(main.emu.precopy!.stream.bytesPayload).toBe(5 * MiB);
    expect(mf.emu.precopy!.stream.bytesPayload).toBe(0);
    expect(mfRam.transferred).toBe(ram.transferred + 5 * 320);
  });
});

// ---------------------------------------------------------------------------------------------
// Random device schedules.

type Range = { start: number; count: number };
const rangeIn = (lo: number, hi: number, maxCount: number): fc.Arbitrary<Range> =>
  fc.integer({ min: lo, max: hi - 1 }).chain((start) => fc.integer({ min: 1, max: Math.min(maxCount, hi - start) }).map((count) => ({ start, count })));

/** DMA into part of guest memory; `unmap` only for a device the guest hot-unplugs (a VFIO stop loses its last writes). */
const dmaArb = (pages: number, unplugged: boolean) => rangeIn(0, pages, pages).chain((region) => fc.record({
  region: fc.constant([region] as Range[]),
  buffers: fc.option(rangeIn(region.start, region.start + region.count, 512).map((b) => [b]), { nil: undefined }),
  bytesPerSec: fc.constantFrom(1e6, 1.25e7, 1.25e8),
  pattern: fc.constantFrom('sequential' as const, 'random' as const),
  tracking: unplugged ? fc.constantFrom('iommu' as const, 'device-log' as const, 'none' as const, 'unmap' as const) : fc.constantFrom('iommu' as const, 'device-log' as const, 'none' as const),
  unmapDelayNs: fc.integer({ min: 0, max: 5_000_000 }),
  logMaxRanges: fc.integer({ min: 1, max: 4 }),
  logFails: fc.boolean(),
}));

const deviceArb = (pages: number): fc.Arbitrary<DeviceInput> => fc.boolean().chain((unplugged) => fc.record({
  kind: fc.constantFrom('vf' as const, 'virtio-vf' as const),
  preCopy: fc.boolean(),
  pacing: fc.constantFrom(undefined, 'none' as const, 'cap' as const, 'rate-limit' as const),
  partialContexts: fc.constantFrom(undefined, true, false),
  maxCalls: fc.integer({ min: 1, max: 8 }),
  readIntervalNs: fc.integer({ min: 1_000_000, max: 500_000_000 }),
  initialBytes: fc.integer({ min: 0, max: 4 * MiB }),
  stopCopyBytes: fc.integer({ min: 0, max: 4 * MiB }),
  dirtyBytesPerSec: fc.constantFrom(0, 0, 1e5, 1e7),
  readChunkBytes: fc.constantFrom(4096, 65_536, MiB),
  sizeQueryFails: fc.boolean(),
  arcNs: fc.record({
    preCopy: fc.integer({ min: 0, max: 1_000_000 }), quiesce: fc.integer({ min: 0, max: 5_000_000 }), stop: fc.integer({ min: 0, max: 10_000_000 }),
    stopCopyEnd: fc.integer({ min: 0, max: 1_000_000 }), resuming: fc.integer({ min: 0, max: 5_000_000 }), resume: fc.integer({ min: 0, max: 5_000_000 }),
  }),
  load: fc.record({ setupNs: fc.integer({ min: 0, max: 500_000_000 }), applyNs: fc.integer({ min: 0, max: 20_000_000 }), perByteNs: fc.constantFrom(0, 0.1, 1) }),
  stopBy: fc.constant(unplugged ? 'hot-unplug' as const : 'vfio' as const),
  startBy: unplugged ? fc.constantFrom('hotplug' as const, 'reset' as const) : fc.constant('resume' as const),
  unplugNs: fc.integer({ min: 0, max: 300_000_000 }),
  hotplugNs: fc.integer({ min: 0, max: 1_000_000_000 }),
  resetNs: fc.integer({ min: 0, max: 100_000_000 }),
  dma: fc.option(dmaArb(pages, unplugged), { nil: undefined }),
}));

/** Up to 16384 pages, a light fio writer, a precopy.maxTimeNs cap, 1–4 devices. */
const deviceScenarioArb: fc.Arbitrary<ScenarioInput> = fc.integer({ min: 256, max: 16_384 }).chain((pages) => fc.record({
  seed: fc.integer({ min: 0, max: 1000 }),
  link: fc.record({ rateMbps: fc.constantFrom(1000, 10_000, 25_000), latencyNs: fc.integer({ min: 0, max: 200_000 }) }),
  backChannel: fc.record({ rateMbps: fc.constantFrom(1000, 10_000), latencyNs: fc.integer({ min: 0, max: 500_000 }) }),
  channels: fc.constantFrom(0, 0, 2),
  deviceChannel: fc.constantFrom('main' as const, 'multifd' as const),
  switchoverAck: fc.boolean(),
  deviceLoadThreads: fc.integer({ min: 1, max: 4 }),
  downtimeLimitMs: fc.integer({ min: 10, max: 300 }),
  maxTimeNs: fc.integer({ min: 100_000_000, max: 2_000_000_000 }),
  fio: rangeIn(0, pages, 1024),
  fioRate: fc.constantFrom(1e6, 1e7, 5e7),
  devices: fc.array(deviceArb(pages), { minLength: 1, maxLength: 4 }),
}).map(({ seed, link, backChannel, channels, deviceChannel, switchoverAck, deviceLoadThreads, downtimeLimitMs, maxTimeNs, fio, fioRate, devices }) => ({
  ...scenario(devices, {
    memory: { pages },
    link,
    backChannel,
    multifd: { channels },
    migration: { switchoverAck, deviceLoadThreads, deviceChannel: channels > 0 ? deviceChannel : 'main' },
    precopy: { downtimeLimitMs, maxTimeNs, dirtying: { kind: 'fio', region: fio, bytesPerSec: fioRate } },
    limits: { horizonNs: 60e9 },
  }),
  seed,
})));

describe('random device schedules', () => {
  it('end, pass the checker, and account for their downtime and device bytes', () => {
    fc.assert(fc.property(deviceScenarioArb, (input) => {
      const { emu, r, b, devs, pre } = run(input);
      // Precopy ends by convergence or its cap; stop-and-copy then always completes.
      expect(r.status).toBe('completed');
      expect(['converged', 'max-time']).toContain(pre.end);
      expect(emu.pausedAt).toBeLessThanOrEqual(input.precopy!.maxTimeNs! + Math.max(0, ...input.devices!.map((d) => (d.stopBy === 'hot-unplug' ? d.unplugNs! : 0))) + 200_000_000);
      expect(checkRun(emu)).toEqual([]);
      const parts = Object.values(b).reduce((s, x) => s + x, 0);
      expect(Math.abs(parts - r.downtime)).toBeLessThanOrEqual(0.005 + 1e-9);
      expect(r.vfio!.transferred).toBe(devs.reduce((s, d) => s + d['precopy-bytes'] + d['stop-copy-bytes'], 0));
      input.devices!.forEach((d, i) => {
        // A migrated device sends its whole stop-copy state; a hot-unplugged one sends nothing.
        expect(devs[i]!['stop-copy-bytes']).toBe(d.stopBy === 'hot-unplug' ? 0 : d.stopCopyBytes);
        if (d.stopBy === 'hot-unplug') expect(devs[i]!['precopy-bytes']).toBe(0);
      });
      // Device data on the main channel counts apart; on multifd it is in multifd-bytes (with its packet headers).
      const ram = r.ram, main = input.migration!.deviceChannel !== 'multifd';
      expect(ram.transferred).toBe(ram['precopy-bytes'] + ram['downtime-bytes'] + ram['multifd-bytes'] + (main ? r.vfio!.transferred : 0));
    }), { numRuns: 50, seed: 12 });
  });
});

describe('pacing, switchover-ack and the rate limit together', () => {
  const base = {
    memory: { pages: 4096 }, link: { rateMbps: 10_000 }, source: { policy: 'qemu' },
    precopy: { dirtying: { kind: 'fio', region: { start: 0, count: 256 }, bytesPerSec: 1e7 } },
    mapper: { mapping: { kind: 'none' } }, workload: { kind: 'idle', vcpus: 1 }, limits: { horizonNs: 20e9 },
  } as const;

  it('a capped driver that stops giving initial data still lets the ack come (QEMU\'s INIT_DATA_SENT)', () => {
    const emu = new Emulator({ ...base, migration: { mode: 'precopy', switchoverAck: true },
      devices: [{ name: 'vf0', pacing: 'cap', maxCalls: 2, readChunkBytes: 65_536, initialBytes: 2 ** 20, load: { setupNs: 1e6 } }] }).run();
    const d = buildReport(emu).emulator.devices![0]!;
    expect([emu.status, emu.precopy!.end, d['precopy-bytes'], d['device-calls']]).toEqual(['completed', 'converged', 131_072, 2]);
    // The second (last) read's load, then the ack on the return path, then the stop.
    expect(d['initial-loaded-at-ms']).toBe(52.269);
    expect(emu.pausedAt).toBeGreaterThan(52_269_000);
  });

  it('initial data counts only what PRE_COPY read: stop-copy chunks never complete it', () => {
    const emu = new Emulator({ ...base, migration: { mode: 'precopy' },
      devices: [{ name: 'a', initialBytes: 3 * MiB, stopCopyBytes: 2 * MiB, load: { setupNs: 20e6 } }] }).run();
    const d = buildReport(emu).emulator.devices![0]!;
    expect(d['precopy-bytes']).toBeLessThan(3 * MiB);
    expect(d['initial-loaded-at-ms']).toBeNull();
  });

  it('a rate-limited whole-context device is read again as soon as its quiet second ends', () => {
    const emu = new Emulator({ ...base, migration: { mode: 'precopy', switchoverAck: true }, precopy: { ...base.precopy, maxTimeNs: 3e9 },
      devices: [{ name: 'v', kind: 'virtio-vf', stopCopyBytes: 65_536, sizeQueryFails: true, readIntervalNs: 1e9 }] });
    const reads: number[] = [];
    let last = -1;
    while (emu.step()) {
      const calls = emu.devices!.list[0]!.calls;
      if (calls !== last) reads.push(emu.kernel.now);
      last = calls;
    }
    // Calls at setup's end, then one a second later each time (never a 100 ms window late).
    const gaps = reads.slice(2).map((t, i) => t - reads[i + 1]!);
    expect(gaps.length).toBeGreaterThanOrEqual(1);
    for (const g of gaps) expect(g).toBeLessThan(1e9 + 50e6 + 1);
  });

  it('while the guest gives a device up, RAM stays within max-bandwidth', () => {
    const emu = new Emulator({ ...base, memory: { pages: 16_384 }, link: { rateMbps: 10_000, latencyNs: 0 }, migration: { mode: 'precopy' },
      precopy: { maxBandwidth: 50e6, dirtying: { kind: 'fio', region: { start: 0, count: 2048 }, bytesPerSec: 2e7 } },
      devices: [{ name: 'nic', stopBy: 'hot-unplug', startBy: 'reset', unplugNs: 2e9 }] }).run();
    const r = buildReport(emu);
    expect([r.status, checkRun(emu)]).toEqual(['completed', []]);
    // 2 s of unplug at ≤ 50 MB/s: what precopy sent until the pause stays under the cap.
    expect(r.ram['precopy-bytes'] / (emu.pausedAt / 1e9)).toBeLessThan(50e6);
    expect(r.emulator.devices![0]!['outage-ms']).toBeGreaterThan(0);
  });
});
