import { z } from 'zod';
import { int, list, ns, range, REQUIRED, section } from './fields.ts';

// Passthrough devices that migrate their own state over VFIO (migration uAPI v2). Estimates say
// so; seed 000 is the vfio-virtio / device warm-up measurements, seed 003 the hot-unplug path.

const ARC = 'estimate: one VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE arc of a NIC VF\'s variant driver (a firmware command)';
const KIND_DEFAULT = 'unset: the kind\'s default';
/** What real variant drivers report; no source gives 1 MiB, the default. */
const STATE_SIZES = 'real VF states: 176 B (HiSilicon acc, `struct acc_vf_data`), 4 KiB (Intel QAT GEN4, `ADF_GEN4_VF_MSTATE_SIZE`), at most 64 KiB (AMD pds, `PDS_LM_DEVICE_STATE_LENGTH`), ~100 MiB (mlx5 ConnectX-7: 400 MiB for 4 VFs, qemu-devel 2024; QEMU: mlx5 states are "on the order of 100s of MB"). Set the device\'s own';

/** The ns cost of each group of FSM arcs (src/devices/fsm.ts, arcCost). */
const arcNs = section({
  preCopy: ns.default(100_000).meta({ unit: 'ns', source: `${ARC}: RUNNING→PRE_COPY, starts dirty tracking and opens the data fd` }),
  quiesce: ns.default(1_000_000).meta({ unit: 'ns', source: `${ARC}: RUNNING→RUNNING_P2P and PRE_COPY→PRE_COPY_P2P stop outgoing DMA and wait for what is in flight. AMD pds polls its suspend every 1 ms (\`SUSPEND_CHECK_INTERVAL_MS\`): an arc not done at the first poll takes ≥ 1 ms` }),
  stop: ns.default(5_000_000).meta({ unit: 'ns', source: `${ARC}: RUNNING_P2P→STOP and PRE_COPY_P2P→STOP_COPY; stopping a real NIC is not free (free for virtio-vf)` }),
  stopCopyEnd: ns.default(100_000).meta({ unit: 'ns', source: `${ARC}: STOP_COPY→STOP closes the data fd and frees the device\'s resources. At cleanup, after the migration completed (QEMU \`vfio_save_cleanup\`, 8.1+), so in no downtime: on a ConnectX-7 it was up to 6 % of the downtime before (qemu-devel, vfio/migration P2P series v3, 2023)` }),
  resuming: ns.default(1_000_000).meta({ unit: 'ns', source: `${ARC}: STOP→RESUMING prepares the device to take a state` }),
  resume: ns.default(1_000_000).meta({
    unit: 'ns',
    source: `${ARC}: RESUMING→STOP, STOP→RUNNING_P2P (free for virtio-vf), RUNNING_P2P→RUNNING, PRE_COPY→RUNNING, PRE_COPY_P2P→RUNNING_P2P`,
  }),
});

/** The destination's load of one device's state. */
const load = section({
  setupNs: ns.default(300_000_000).meta({ unit: 'ns', source: 'seed 000: ~300 ms per device of resource allocation, moved into precopy by warm-up' }),
  applyNs: ns.default(11_000_000).meta({ unit: 'ns', source: 'seed 000: ~11 ms per device left in the downtime after warm-up' }),
  perByteNs: z.number().min(0).max(1e6).default(0.1).meta({ unit: 'ns/byte', source: 'estimate: copying the state into the device at ~10 GB/s' }),
});

/** What the device writes into guest memory by DMA, and how the source learns of it. */
const dma = z.object({
  region: list(range).min(1).meta({ unit: 'pages', source: `${REQUIRED} (leave dma out for no DMA): the pages the device can reach, its mapped IOVA (QEMU maps all guest RAM for a VFIO device)` }),
  buffers: list(range).min(1).optional().meta({ unit: 'pages', source: 'unset: the whole region. Where its writes land (a NIC\'s RX buffers), within the region' }),
  bytesPerSec: z.number().gt(0).max(1e12).default(1.25e8).meta({ unit: 'bytes/s', source: 'a 1 Gbit/s NIC receiving at line rate' }),
  pattern: z.enum(['sequential', 'random']).default('sequential').meta({ source: 'a ring of RX buffers is reused in order' }),
  tracking: z.enum(['none', 'unmap', 'iommu', 'device-log']).default('device-log').meta({
    source: 'the VF\'s own dirty log (VFIO_DEVICE_FEATURE_DMA_LOGGING_*); `iommu`: the IOMMU\'s dirty bits (iommufd); `unmap`: a page counts as dirty when the driver unmaps it; `none`: DMA writes are not seen',
  }),
  unmapDelayNs: ns.default(1_000_000).meta({ unit: 'ns', when: 'tracking: unmap', source: 'estimate: an RX buffer is unmapped ~1 ms after the DMA' }),
  iommuScanPerPageNs: z.number().min(0).max(1e6).default(5).meta({ unit: 'ns', when: 'tracking: iommu', source: 'estimate: test-and-clear of one IOMMU PTE\'s dirty bit' }),
  logMaxRanges: int(1, 65_536).default(2).meta({
    unit: 'ranges', when: 'tracking: device-log',
    source: 'QEMU asks the device to log at most two ranges, the mapped IOVA below and above 4 GiB, each from its lowest to its highest mapped page (`vfio_device_feature_dma_logging_start_create`): holes between mappings are tracked too',
  }),
  logReportPerPageNs: z.number().min(0).max(1e6).default(1).meta({ unit: 'ns', when: 'tracking: device-log', source: 'estimate: one bit of the reported bitmap' }),
  logFails: z.boolean().default(false).meta({ when: 'tracking: device-log', source: 'the report succeeds; true: it fails and QEMU takes every page of the region as dirty' }),
}).strict();

const device = z.object({
  name: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').optional().meta({ source: 'unset: dev<index> (dev0, dev1, …). 1–64 letters, digits, `_`, `.`, `-`' }),
  kind: z.enum(['vf', 'virtio-vf']).default('vf').meta({
    source: 'a VF with a vendor variant driver (mlx5-style: partial contexts). `virtio-vf`: vfio-virtio (seed 000): virtio has only RUNNING and STOPPED, so the P2P arcs from and to STOP are free, and no partial contexts',
  }),
  preCopy: z.boolean().default(true).meta({ source: 'the device reports VFIO_MIGRATION_PRE_COPY and QEMU uses it; false is seed 000\'s "precopy off": no warm-up' }),
  initialBytes: int(0, 2 ** 50).default(1_048_576).meta({ unit: 'bytes', source: `estimate: the precopy info\'s \`initial_bytes\` (VFIO_MIG_GET_PRECOPY_INFO); ${STATE_SIZES}` }),
  dirtyBytesPerSec: z.number().min(0).max(1e12).default(0).meta({ unit: 'bytes/s', source: 'none: the state does not change while the device runs (precopy info\'s `dirty_bytes` grows at this rate)' }),
  stopCopyBytes: int(0, 2 ** 50).default(1_048_576).meta({ unit: 'bytes', source: `estimate: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE\'s \`stop_copy_length\`; ${STATE_SIZES}` }),
  partialContexts: z.boolean().optional().meta({
    source: `${KIND_DEFAULT} vf true, virtio-vf false. false: every PRE_COPY read returns the whole context (stopCopyBytes) again`,
  }),
  pacing: z.enum(['none', 'cap', 'rate-limit']).optional().meta({
    source: `${KIND_DEFAULT} vf none, virtio-vf rate-limit. \`cap\`: at most maxCalls PRE_COPY reads, then 0 bytes (the first vfio-virtio proposal, seed 000); \`rate-limit\`: no data for readIntervalNs after a read (the merged driver)`,
  }),
  maxCalls: int(1, 2 ** 31 - 1).default(128).meta({ unit: 'calls', when: 'pacing: cap', source: 'seed 000: the first vfio-virtio proposal\'s cap' }),
  readIntervalNs: ns.default(1e9).meta({ unit: 'ns', when: 'pacing: rate-limit', source: 'seed 000: "one second" between reads that return data' }),
  readChunkBytes: int(1, 2 ** 30).default(1_048_576).meta({
    unit: 'bytes',
    source: 'QEMU `VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE` (1 MiB): one read() of the data fd per save_live_iterate call',
  }),
  readBytesPerSec: z.number().gt(0).max(1e12).default(2e9).meta({ unit: 'bytes/s', source: 'estimate: device→host DMA of the state through firmware' }),
  readCallNs: ns.default(20_000).meta({ unit: 'ns', source: 'estimate: one read() on the data fd: syscall + driver command' }),
  arcNs,
  load,
  sizeQueryFails: z.boolean().default(false).meta({
    source: 'the stop-copy size query succeeds; true: it fails and QEMU counts the device as 100 GiB (`VFIO_MIG_STOP_COPY_SIZE`)',
  }),
  stopBy: z.enum(['vfio', 'hot-unplug']).default('vfio').meta({
    source: 'the VFIO migration FSM; `hot-unplug`: the guest gives the device up (it falls back to a virtual NIC) and there is no state to migrate (seed 003)',
  }),
  unplugNs: ns.default(5e9).meta({ unit: 'ns', when: 'stopBy: hot-unplug', source: 'seed 003: unplug needs the guest\'s cooperation and "can take seconds"' }),
  startBy: z.enum(['resume', 'hotplug', 'reset']).default('resume').meta({ source: 'the destination resumes the migrated state; `hotplug`: a new device is plugged in; `reset`: it starts from reset' }),
  hotplugNs: ns.default(5e9).meta({ unit: 'ns', when: 'startBy: hotplug', source: 'seed 003: "a 5 second timeout until device is actually detected"' }),
  resetNs: ns.default(1e8).meta({ unit: 'ns', when: 'startBy: reset', source: 'PCIe: a function level reset (FLR) must complete within 100 ms' }),
  pageFaults: z.enum(['none', 'iopf']).default('none').meta({
    source: 'the device cannot fault (QEMU refuses postcopy with a VFIO device); `iopf`: IOMMU page faults (PCIe ATS/PRI) wait for the page like a vCPU',
  }),
  priCredits: int(1, 4096).default(32).meta({ unit: 'requests', when: 'pageFaults: iopf', source: 'the PRI capability\'s outstanding page-request allocation, which the host\'s IOMMU driver writes: Linux\'s AMD driver asks for 32 (`pci_enable_pri(pdev, 32)`, "hardcode number of outstanding requests"); Intel VT-d asks for 2048 (`PRQ_DEPTH`), 32 before 2023. A VF shares its PF\'s' }),
  dma: dma.optional().meta({ source: 'unset: the device does no DMA' }),
}).strict();

export const MAX_DEVICES = 64;

/** The scenario's `devices` list. */
export const devicesList = z.array(device).max(MAX_DEVICES, `at most ${MAX_DEVICES} devices`);

type Device = z.output<typeof device>;
export type DevicePacing = NonNullable<Device['pacing']>;
/** A device with the kind-dependent fields resolved. */
export type ResolvedDevice = Device & { partialContexts: boolean; pacing: DevicePacing };

const KIND_DEFAULTS: Record<Device['kind'], { partialContexts: boolean; pacing: DevicePacing }> = {
  vf: { partialContexts: true, pacing: 'none' },
  'virtio-vf': { partialContexts: false, pacing: 'rate-limit' },
};

/** `partialContexts` and `pacing`, unset following the kind. */
export function deviceDefaults(d: Device): ResolvedDevice {
  const k = KIND_DEFAULTS[d.kind];
  return { ...d, partialContexts: d.partialContexts ?? k.partialContexts, pacing: d.pacing ?? k.pacing };
}

/** A device's name: its own, or dev<index>. */
export const deviceName = (d: Device, index: number): string => d.name ?? `dev${index}`;
