import type { ScenarioInput } from './schema.ts';

/**
 * The seeds' assigned-device experiments (docs/devices.md). A seed's measured per-device time is
 * used as that device's documented cost and said so; everything else keeps its physical default.
 */

/**
 * Seed 000 (vfio-virtio, 2024): a VM with virtio-net VFs whose destination spends ~300 ms per
 * device allocating resources and ~11 ms applying the final state. Those two times are the whole
 * per-device cost here (the arcs and the copy are inside the measured 11 ms, so they cost 0 on
 * their own). "VM downtime was close to the configured downtime": the RAM part runs to the
 * downtime limit, 100 ms, below the 128 ms measured with warm-up. The VM is a 4 GiB guest whose
 * fio rewrites 256 MiB at 1 GB/s (seed 004's writer) over 25 Gbit/s (the VF's port): the thread
 * gives neither, and they only set how long precopy runs.
 */
const VIRTIO_VF = {
  kind: 'virtio-vf',
  initialBytes: 65_536,
  stopCopyBytes: 65_536,
  arcNs: { preCopy: 0, quiesce: 0, stop: 0, stopCopyEnd: 0, resuming: 0, resume: 0 },
  load: { setupNs: 300_000_000, applyNs: 11_000_000, perByteNs: 0 },
} as const;

const LINK_25G = { rateMbps: 25_000 };
const vfio000 = (devices: number, warm: boolean, more: Record<string, unknown> = {}): ScenarioInput => ({
  memory: { pages: 1_048_576 },
  link: LINK_25G,
  backChannel: LINK_25G,
  source: { policy: 'qemu' },
  migration: { mode: 'precopy', ...(more.migration as object) },
  precopy: { downtimeLimitMs: 100, dirtying: { kind: 'fio', region: { start: 0, count: 65_536 }, bytesPerSec: 1e9 } },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'idle', vcpus: 4 },
  devices: Array.from({ length: devices }, (_, i) => ({ ...VIRTIO_VF, name: `vf${i}`, preCopy: warm, ...(more.device as object) })),
});

/**
 * Seed 002 (switchover-ack, 2023): an mlx5-style VF whose initial data takes "seconds" of
 * pre-setup at the destination (1 s here, the order the thread gives), in a 1 GiB guest with light
 * background writes (16 MiB at 50 MB/s: an idle guest still dirties pages, and QEMU's threshold is
 * the bandwidth it measures) that converges sooner: without the ack the guest stops while the load
 * still runs.
 */
const vfio002 = (ack: boolean): ScenarioInput => ({
  memory: { pages: 262_144, zeroFraction: 0.9 },
  link: { rateMbps: 10_000 },
  backChannel: { rateMbps: 10_000 },
  source: { policy: 'qemu' },
  migration: { mode: 'precopy', switchoverAck: ack },
  precopy: { dirtying: { kind: 'fio', region: { start: 0, count: 4096 }, bytesPerSec: 5e7 } },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'idle', vcpus: 2 },
  devices: [{ name: 'vf0', kind: 'vf', initialBytes: 16 * 2 ** 20, stopCopyBytes: 2 ** 20, load: { setupNs: 1e9 } }],
});

/**
 * Seed 003 (device assignment vs migration, 2015): a 1 Gbit/s NIC receiving at line rate by DMA
 * into a 64 MiB pool of RX buffers in a 4 GiB guest, migrated over 10 Gbit/s. The device can reach
 * all guest RAM (QEMU maps it all for a VFIO device); the dirty tracking decides what the source
 * learns of the writes.
 */
const vfio003 = (tracking: 'none' | 'unmap' | 'iommu' | 'device-log'): ScenarioInput => ({
  memory: { pages: 1_048_576, zeroFraction: 0.5 },
  link: { rateMbps: 10_000 },
  backChannel: { rateMbps: 10_000 },
  source: { policy: 'qemu' },
  migration: { mode: 'precopy' },
  precopy: { dirtying: { kind: 'none' }, maxTimeNs: 30e9 },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'idle', vcpus: 2 },
  devices: [{
    name: 'nic0', kind: 'vf',
    // The driver rewrites each buffer on unmap; the guest then gives the NIC up (hot-unplug).
    ...(tracking === 'unmap' ? { stopBy: 'hot-unplug', startBy: 'hotplug' } : {}),
    dma: { region: [{ start: 0, count: 1_048_576 }], buffers: [{ start: 524_288, count: 16_384 }], tracking },
  }],
});

type Preset = [string, ScenarioInput];
const named = (name: string, description: string, s: ScenarioInput): Preset => [name, { name, description, ...s } as ScenarioInput];

export const devicePresets: Preset[] = [
  ...[1, 2, 4].flatMap((n) => [
    named(`vfio-000-${n}vf-cold`, `Seed 000: ${n} virtio-net VF${n > 1 ? 's' : ''}, no device precopy: every load (300 + 11 ms) in the downtime, one at a time`, vfio000(n, false)),
    named(`vfio-000-${n}vf-warm`, `Seed 000: ${n} virtio-net VF${n > 1 ? 's' : ''} with device precopy (rate-limited reads): the 300 ms allocation warms up while RAM iterates`, vfio000(n, true)),
  ]),
  named('vfio-000-2vf-cold-parallel', 'Seed 000: 2 VFs without device precopy, loaded on two load threads (newer QEMU)', vfio000(2, false, { migration: { deviceLoadThreads: 2 } })),
  named('vfio-000-2vf-warm-cap', 'Seed 000: 2 VFs with device precopy capped at 128 reads (the first proposal)', vfio000(2, true, { device: { pacing: 'cap' } })),
  named('vfio-002-ack-off', 'Seed 002: a VF with seconds of initial-data load; the source stops the guest when RAM converges', vfio002(false)),
  named('vfio-002-ack-on', 'Seed 002: the same with switchover-ack: the guest stops once the destination loaded the initial data', vfio002(true)),
  ...(['none', 'unmap', 'iommu', 'device-log'] as const).map((t) => named(`vfio-003-${t}`, `Seed 003: a NIC receiving by DMA at 1 Gbit/s, dirty tracking \`${t}\``, vfio003(t))),
];

/** The presets `reproduce vfio` runs. */
export const VFIO_REPRODUCTION = devicePresets.map(([n]) => n);
