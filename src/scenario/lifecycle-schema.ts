import { z } from 'zod';
import { int, ns, range, REQUIRED, section } from './fields.ts';

// The migration before the switchover (docs/lifecycle.md). Every default is a protocol fact or
// a documented hardware estimate; its `source` says which. QEMU names are from `migration/` and
// `qapi/migration.json`.

/** How the guest dirties its memory while it runs at the source. */
const dirtying = z.discriminatedUnion('kind', [
  /** The vCPUs' own access pattern (workload section): every write dirties its page. */
  z.object({ kind: z.literal('workload') }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
  /**
   * `stress --vm N --vm-keep --vm-bytes B`: N workers, each rewriting its own B bytes one byte per
   * 4 KiB page, over and over (stress's hogvm loop: a write pass, then a read-back pass).
   */
  z.object({
    kind: z.literal('stress'),
    workers: int(1, 4096).default(4).meta({ unit: 'workers', source: 'seed 001\'s `stress --vm 4 --vm-keep --vm-bytes 400M`' }),
    bytesPerWorker: int(1, 2 ** 50).default(400 * 1024 * 1024).meta({ unit: 'bytes', source: 'seed 001\'s `stress --vm 4 --vm-keep --vm-bytes 400M`' }),
    start: int(0, 2 ** 31 - 1).default(0).meta({ unit: 'pages', source: 'first page of the workers\' memory (worker w owns the w-th slice after it)' }),
    pageNs: int(1, 1e9).default(100).meta({
      unit: 'ns',
      source: 'one page of a pass (stress writes one byte per 4 KiB page, its default `--vm-stride`, then reads it back) misses cache and TLB: ~100 ns',
    }),
  }).strict(),
  /** fio writing a fixed working set (e.g. a ramdisk) in blocks at a steady rate. */
  z.object({
    kind: z.literal('fio'),
    region: range.meta({ unit: 'pages', source: REQUIRED }),
    blockBytes: int(1, 2 ** 30).default(4096).meta({ unit: 'bytes', source: 'fio\'s default block size (`bs=4k`)' }),
    bytesPerSec: z.number().gt(0).max(1e12).default(1e9).meta({
      unit: 'bytes/s',
      source: 'buffered writes into a ramdisk run at memory-copy speed: ~1 GB/s for one fio job (as `workload.thinkNs`)',
    }),
    order: z.enum(['sequential', 'random']).default('sequential').meta({ source: '`rw=write`; `random` is `rw=randwrite`' }),
  }).strict(),
]);

const THROTTLE = 'QEMU `cpu-throttle-initial`, `cpu-throttle-increment`, `max-cpu-throttle` defaults: 20 %, then +10 % per step, at most 99 %';
const XEN_LOOP = 'libxc `xc_domain_save`: `dirty_threshold = 50`, `max_iterations = 5` (Xen 4.10\'s `simple_precopy_policy`: `SPP_TARGET_DIRTY_COUNT` 50, `SPP_MAX_ITERATIONS` 5)';
const CAPS = 'none: QEMU has neither; they stand for a management layer\'s cap (`virsh migrate --timeout` with `--timeout-suspend` or `--timeout-postcopy`). At a cap precopy ends: stop-and-copy, or postcopy in hybrid mode';

export const migrationSection = section({
  mode: z.enum(['postcopy', 'precopy', 'hybrid']).default('postcopy').meta({
    source: 'the core alone: the run starts with the guest paused and every outstanding page at the source (the switchover). `precopy`: iterate, then stop-and-copy; `hybrid`: iterate, then switch to postcopy',
  }),
  switchAfterIterations: int(0, 1e6).default(0).meta({
    unit: 'iterations', when: 'mode: hybrid',
    source: 'switch after this many iterations (QEMU policy: syncs after setup\'s; Xen: passes); 0 = not by count, only at switchAtNs or on non-convergence. Seed 004\'s hybrid switches after 1 pass',
  }),
  switchAtNs: ns.optional().meta({ unit: 'ns', when: 'mode: hybrid', source: 'unset: the operator\'s `migrate-start-postcopy` at this time, if precopy has not ended before' }),
  switchoverAck: z.boolean().default(false).meta({
    source: 'QEMU\'s `switchover-ack` capability is off by default. On: the source does not stop the guest until the destination has loaded every device\'s initial data',
  }),
  deviceLoadThreads: int(1, 64).default(1).meta({
    unit: 'threads',
    source: 'QEMU loads device state in its one load thread, in stream order (seed 000: a step of ~400 ms per device); more: newer QEMU\'s multifd device-state load threads, in parallel',
  }),
  deviceChannel: z.enum(['main', 'multifd']).default('main').meta({
    source: 'device data travels on the main channel, sharing the wire with RAM; `multifd`: on the multifd channels (newer QEMU; needs multifd.channels > 0)',
  }),
});

export const precopySection = section({
  policy: z.enum(['qemu', 'xen']).default('qemu').meta({ source: 'QEMU\'s threshold test (bandwidth × downtime-limit); `xen` is libxc\'s loop (≤ 50 dirty pages or ≥ 5 iterations)' }),
  downtimeLimitMs: int(1, 1e7).default(300).meta({ unit: 'ms', source: 'QEMU `downtime-limit` default (`DEFAULT_MIGRATE_SET_DOWNTIME`, 300 ms)' }),
  maxBandwidth: int(0, 2 ** 50).default(0).meta({
    unit: 'bytes/s',
    source: 'no limit: what libvirt sets for the migrations it runs (its `QEMU_DOMAIN_DEFAULT_MIG_BANDWIDTH_MAX`, 32 << 20 MiB/s: no limit in effect). QEMU `max-bandwidth`, a budget of bandwidth/10 per 100 ms window (`BUFFER_DELAY`); plain QEMU\'s own default is `MAX_THROTTLE` = 128 MiB/s (set it to model a bare QEMU beyond ~1 Gbit/s). 0 leaves the link and the migration thread as the limits. Seed 001 sets 6 GiB/s',
  }),
  availSwitchoverBandwidth: int(0, 2 ** 50).default(0).meta({
    unit: 'bytes/s',
    source: 'QEMU `avail-switchover-bandwidth` default: 0 = use the measured bandwidth (it replaces the measured bandwidth in the threshold only)',
  }),
  maxIterations: int(0, 1e6).default(0).meta({ unit: 'iterations', source: CAPS }),
  maxTimeNs: ns.default(0).meta({ unit: 'ns', source: CAPS }),
  xenDirtyThreshold: int(0, 2 ** 31).default(50).meta({ unit: 'pages', when: 'policy: xen', source: XEN_LOOP }),
  xenMaxIterations: int(1, 1e6).default(5).meta({ unit: 'iterations', when: 'policy: xen', source: XEN_LOOP }),
  autoConverge: z.boolean().default(false).meta({ source: 'QEMU\'s `auto-converge` capability is off by default' }),
  throttleInitialPct: int(1, 99).default(20).meta({ unit: '%', when: 'autoConverge: true', source: THROTTLE }),
  throttleIncrementPct: int(1, 99).default(10).meta({ unit: '%', when: 'autoConverge: true', source: THROTTLE }),
  throttleMaxPct: int(1, 99).default(99).meta({ unit: '%', when: 'autoConverge: true', source: THROTTLE }),
  throttleTriggerPct: int(1, 100).default(50).meta({
    unit: '%', when: 'autoConverge: true',
    source: 'QEMU `throttle-trigger-threshold` default: dirtied bytes above 50 % of transferred bytes in a period',
  }),
  setupNs: ns.default(2_000_000).meta({
    unit: 'ns',
    source: 'allocating the bitmaps and starting the channels before the first sync: a few ms (seed 001 reports 4–10 ms of setup for 16 GiB, which also includes that sync, ~4 ms here)',
  }),
  syncPerPageNs: z.number().min(0).max(1e6).default(1).meta({
    unit: 'ns',
    source: 'walking and copying the dirty log (`KVM_GET_DIRTY_LOG`, a bit per page) and merging it into the migration bitmap a 64-page word at a time: ~1 ns per page, 4.2 ms for 16 GiB',
  }),
  syncPerDirtyPageNs: ns.default(20).meta({ unit: 'ns', source: 'write-protecting each dirty page again at the sync: an SPTE update per page, the TLB flush amortised over the batch. Not charged when clearPerPageNs is set: the clear does it then' }),
  clearBitmapShift: int(6, 31).default(18).meta({
    unit: 'shift',
    source: 'QEMU\'s `clear-bitmap-shift` default (CLEAR_BITMAP_SHIFT_DEFAULT 18, migration.c): the dirty log is cleared in chunks of 2^shift pages, 2^18 = 1 GiB of 4 KiB pages',
  }),
  clearPerPageNs: z.number().min(0).max(1e6).default(0).meta({
    unit: 'ns',
    source: '0: not counted (syncPerDirtyPageNs write-protects at the sync instead). QEMU on KVM\'s manual protect clears a chunk\'s log lazily, just before the migration thread sends the chunk\'s first page (`migration_clear_memory_region_dirty_bitmap`), per page of the chunk dirty since its last clear; the log starts all set. Traced on the project\'s machine (QEMU 7.2, nested KVM; `migration_bitmap_clear_dirty` → the next `ram_save_page`): a 1 GiB chunk all set 0.78–0.85 ms, with 65,537 dirty pages 0.22 ms, ~3 ns a page (docs/real-qemu.md)',
  }),
  scanPageNs: ns.default(100).meta({
    unit: 'ns',
    source: 'the migration thread\'s bookkeeping per page: find and clear its bit, look up its block, write its header; about one cache miss',
  }),
  dirtying: dirtying.default({ kind: 'workload' }).meta({ source: 'the `workload` section\'s vCPUs: every write dirties its page' }),
});

const COMPRESSION = 'per core: zlib level 1 ~100 MB/s → 10 ns, zstd level 1 ~500 MB/s → 2 ns';

export const multifdSection = section({
  channels: int(0, 256).default(0).meta({
    unit: 'channels',
    source: 'off: QEMU\'s `multifd` capability is off by default; `multifd-channels` defaults to 2 when it is on (seed 001 uses 4). Channels beside the main one',
  }),
  packetPages: int(1, 65_536).default(128).meta({ unit: 'pages', source: '`MULTIFD_PACKET_SIZE` = 512 KiB of 4 KiB pages' }),
  packetHeaderBytes: int(0, 2 ** 20).default(320).meta({
    unit: 'bytes',
    source: 'QEMU\'s `MultiFDPacket_t` fixed part, `char ramblock[256]` included. Every packet also carries an 8-byte offset slot for each of `packetPages` pages (the full array, whatever it holds): 320 + 128 × 8 = 1 344 bytes per packet before the data. Seed 001\'s idle multifd run (multifd bytes − normal bytes = 1.67 MB for ~1 140 packets of data pages) fits that. A SYNC packet is `packetHeaderBytes` alone',
  }),
  handoffNs: ns.default(3_000).meta({
    unit: 'ns',
    source: 'the migration thread hands a packet over (`multifd_send`): a semaphore post and the wake-up of the channel thread asleep in its wait. Post → the waiter runs: medians of 2.7–4.9 µs across 14 invocations on the project\'s machine, 7 of them 2.7–3.0 µs (native/calibrate.c `sem_wake`, 2 000 samples each)',
  }),
  syncNs: ns.default(20_000).meta({
    unit: 'ns',
    source: 'a round\'s sync: every channel writes a SYNC packet and posts; the migration thread waits for all: a few wake-up round trips',
  }),
  wire: z.enum(['shared', 'per-channel']).default('shared').meta({
    source: 'one NIC carries every connection; `per-channel` is loopback, where each TCP connection is limited by the core copying it',
  }),
  compression: z.enum(['none', 'zlib', 'zstd']).default('none').meta({ source: 'QEMU `multifd-compression` default' }),
  compressionRatio: z.number().gt(0).max(1).default(0.5).meta({
    unit: 'fraction', when: 'compression: zlib, zstd',
    source: 'compressed size / original size: guest memory that holds data compresses about 2:1 with fast codecs (estimate)',
  }),
  compressNsPerByte: z.number().min(0).max(1e6).optional().meta({ unit: 'ns/byte', when: 'compression: zlib, zstd', source: `unset: zlib 10, zstd 2, ${COMPRESSION}` }),
});
