import { z } from 'zod';
import { int, ns, range, section } from './fields.ts';

// The migration before the switchover (docs/lifecycle.md). Every default is a protocol fact or
// a documented hardware estimate (docs/model.md).

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
    workers: int(1, 4096).default(4),
    bytesPerWorker: int(1, 2 ** 50).default(400 * 1024 * 1024),
    /** First page of the workers' memory (worker w owns the w-th slice after it). */
    start: int(0, 2 ** 31 - 1).default(0),
    /** One page of one pass (a write, or the read-back), missing cache and TLB: ~100 ns. */
    pageNs: int(1, 1e9).default(100),
  }).strict(),
  /** fio writing a fixed working set (e.g. a ramdisk) in blocks at a steady rate. */
  z.object({
    kind: z.literal('fio'),
    region: range,
    blockBytes: int(1, 2 ** 30).default(4096),
    /** Buffered writes into a ramdisk run at memory-copy speed: ~1 GB/s for one fio job. */
    bytesPerSec: z.number().gt(0).max(1e12).default(1e9),
    order: z.enum(['sequential', 'random']).default('sequential'),
  }).strict(),
]);

export const migrationSection = section({
  /**
   * postcopy: the run starts with the guest paused and every outstanding page at the source (the
   * core). precopy: iterate, then stop-and-copy. hybrid: iterate, then switch to postcopy.
   */
  mode: z.enum(['postcopy', 'precopy', 'hybrid']).default('postcopy'),
  /** hybrid: switch after this many precopy iterations (0: only at switchAtNs or on non-convergence). */
  switchAfterIterations: int(0, 1e6).default(0),
  /** hybrid: switch at this time (migrate-start-postcopy), if precopy has not ended before. */
  switchAtNs: ns.optional(),
});

export const precopySection = section({
  /** Convergence test: QEMU's threshold (bandwidth × downtime-limit) or Xen's (≤ 50 dirty or ≥ 5 iterations). */
  policy: z.enum(['qemu', 'xen']).default('qemu'),
  /** QEMU downtime-limit (ms), default 300. */
  downtimeLimitMs: int(1, 1e7).default(300),
  /** QEMU max-bandwidth (bytes/s), spent in 100 ms windows; 0 = no limit (QEMU's own default is 128 MiB/s). */
  maxBandwidth: int(0, 2 ** 50).default(0),
  /** QEMU avail-switchover-bandwidth (bytes/s): replaces the measured bandwidth in the threshold only; 0 = measure. */
  availSwitchoverBandwidth: int(0, 2 ** 50).default(0),
  /** Caps on dirty-bitmap syncs after setup and on time; 0 = none. At a cap precopy ends: stop-and-copy, or postcopy in hybrid mode. */
  maxIterations: int(0, 1e6).default(0),
  maxTimeNs: ns.default(0),
  /** Xen's policy: stop at ≤ dirtyThreshold dirty pages or after maxIterations passes (libxc 4.9). */
  xenDirtyThreshold: int(0, 2 ** 31).default(50),
  xenMaxIterations: int(1, 1e6).default(5),
  /** QEMU auto-converge: 20 %, then +10 % per step, at most 99 %, when dirtying outpaces 50 % of sending twice. */
  autoConverge: z.boolean().default(false),
  throttleInitialPct: int(1, 99).default(20),
  throttleIncrementPct: int(1, 99).default(10),
  throttleMaxPct: int(1, 99).default(99),
  throttleTriggerPct: int(1, 100).default(50),
  /** Migration setup before the first pass (QEMU: channel set-up, bitmaps), besides the first sync. */
  setupNs: ns.default(2_000_000),
  /** Dirty-bitmap sync: walking and copying the log (per page) and write-protecting each dirty page again. */
  syncPerPageNs: z.number().min(0).max(1e6).default(1),
  syncPerDirtyPageNs: ns.default(20),
  /** The migration thread's bookkeeping per dirty page: find and clear its bit, look up its block. */
  scanPageNs: ns.default(100),
  /** How the guest dirties memory while precopy runs. */
  dirtying: dirtying.default({ kind: 'workload' }),
});

export const multifdSection = section({
  /** Channels beside the main one; 0 = multifd off. */
  channels: int(0, 256).default(0),
  /** Pages per packet (QEMU: 128, 512 KiB of 4 KiB pages). */
  packetPages: int(1, 65_536).default(128),
  /** Packet header: QEMU's MultiFDPacket_t, 320 bytes (ramblock name included), then an 8-byte offset slot per page of the packet. */
  packetHeaderBytes: int(0, 2 ** 20).default(320),
  /** Main thread's cost to hand a packet to a channel (semaphore post + wake-up of the channel thread). */
  handoffNs: ns.default(5_000),
  /** A round's sync: every channel flushes and sends a SYNC packet; the main thread waits for all. */
  syncNs: ns.default(20_000),
  /** shared: the channels share the stream's wire (one NIC); per-channel: each has a wire of that rate (loopback). */
  wire: z.enum(['shared', 'per-channel']).default('shared'),
  compression: z.enum(['none', 'zlib', 'zstd']).default('none'),
  /** Compressed size / original size of a normal page. */
  compressionRatio: z.number().gt(0).max(1).default(0.5),
  /** Compression CPU per input byte: zlib level 1 ~100 MB/s → 10 ns, zstd level 1 ~500 MB/s → 2 ns. */
  compressNsPerByte: z.number().min(0).max(1e6).optional(),
});
