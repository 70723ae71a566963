import { z } from 'zod';
import { int, ns, range, section } from './fields.ts';
import { migrationSection, multifdSection, precopySection } from './lifecycle-schema.ts';

// Every default below is a physical or protocol fact; docs/model.md gives the source of each.

/** Which pages are still at the source when postcopy starts (the RFC's POSTCOPY_PFNS set). */
const outstanding = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('ranges'), ranges: z.array(range).min(1) }).strict(),
  z.object({ kind: z.literal('fraction'), fraction: z.number().gt(0).max(1) }).strict(),
]);

/** What the device model maps while the domain is created (the storm). */
const mapping = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('ranges'), ranges: z.array(range).min(1) }).strict(),
  z.object({
    kind: z.literal('buckets'),
    bucketPages: int(1, 2 ** 30).default(256), // QEMU's Xen map cache: 1 MiB buckets on 64-bit hosts
    count: int(1, 2 ** 30),
  }).strict(),
]);

const link = {
  rateMbps: z.number().gt(0).max(1e7).default(1000),
  latencyNs: ns.default(50_000),
  sendBufferBytes: int(0, 2 ** 40).default(4 * 1024 * 1024),
  receiveBufferBytes: int(0, 2 ** 40).default(6 * 1024 * 1024),
  mtuBytes: int(576, 65535).default(1500),
  frameOverheadBytes: int(0, 4096).default(38),
  ipTcpHeaderBytes: int(0, 4096).default(52),
};

const at = { at: ns.optional(), window: z.object({ from: ns, to: ns }).strict().optional() };
const durationNs = int(1, 1e15);

/** Injected faults (docs/recovery.md): each at a fixed time or at one drawn from a window. */
const fault = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('link-cut'), ...at, durationNs }).strict(),
  z.object({ kind: z.literal('degrade'), ...at, durationNs, rateMbps: z.number().gt(0).max(1e7).optional(), latencyNs: ns.optional() }).strict(),
  z.object({ kind: z.literal('backchannel-loss'), ...at, durationNs, probability: z.number().min(0).max(1) }).strict(),
  z.object({ kind: z.literal('source-crash'), ...at, restartNs: durationNs }).strict(),
]);

export const scenarioSchema = z.object({
  name: z.string().default('custom'),
  description: z.string().default(''),
  seed: int(0, Number.MAX_SAFE_INTEGER).default(1),
  memory: section({
    pages: int(1, 2 ** 30).default(524_288),
    pageSize: int(512, 2 ** 30).default(4096),
    /** Host page backing guest memory (default: the guest page), or huge pages of 2 MiB / 1 GiB, placed whole. */
    hostPageSize: int(512, 2 ** 30).optional(),
    outstanding: outstanding.default({ kind: 'all' }),
    /** Share of guest pages that are all zeros (drawn per page from the seed's zero-pages stream). */
    zeroFraction: z.number().min(0).max(1).default(0),
    /** Ranges of pages that are all zeros whatever zeroFraction draws (a per-region map). */
    zeroRanges: z.array(range).default([]),
  }),
  ring: section({
    capacity: int(1, 65_536).default(8),
    blackEye: z.boolean().default(false),
  }),
  link: section(link),
  backChannel: section(link),
  source: section({
    // docs/policies.md: xen (RFC), qemu (userfaultfd: unbounded fault queue), demand,
    // bubbling (Hines & Gopalan, VEE 2009), adaptive-chunk (CRIU lazy pages), prefault (Yabusame).
    policy: z.enum(['xen', 'qemu', 'demand', 'bubbling', 'adaptive-chunk', 'prefault']).default('xen'),
    /** bubbling: pivots kept (Hines & Gopalan's journal version found k = 7 best; 1 = the VEE paper). */
    pivots: int(1, 1024).default(1),
    /** bubbling: push both sides of a pivot, or only forward (X+1, X+2, …). */
    bubbleDirection: z.enum(['both', 'forward']).default('both'),
    /** adaptive-chunk: first background chunk and growth step, pages (CRIU DEFAULT_XFER_LEN 64 KiB / 4 KiB pages). */
    chunkMinPages: int(1, 2 ** 20).default(16),
    /** adaptive-chunk: largest background chunk, pages (CRIU MAX_XFER_LEN 4 MiB / 4 KiB pages). */
    chunkMaxPages: int(1, 2 ** 20).default(1024),
    /** prefault: pages after each requested page sent with it (Yabusame's default unknown: 16). */
    prefaultAfter: int(0, 2 ** 20).default(16),
    /** prefault: pages before each requested page sent with it. */
    prefaultBefore: int(0, 2 ** 20).default(0),
    recordPages: int(1, 65_536).default(64),
    pfnBatch: int(1, 2 ** 30).default(524_288),
    perPageNs: ns.default(400),
    /**
     * QEMU zero-page-detection: legacy = in the migration thread (is_zero_range), multifd = in the
     * channel threads (without channels, and for postcopy pages, in the migration thread as
     * QEMU does), none = send zeros as data.
     */
    zeroPageDetection: z.enum(['legacy', 'multifd', 'none']).default('legacy'),
    /** Checking a zero page reads all of it: 4 KiB at ~10 GB/s (a non-zero page stops at its first bytes). */
    zeroCheckNs: ns.default(400),
    perRecordNs: ns.default(5_000),
    transitionBytes: int(0, 2 ** 40).default(65_536),
  }),
  migration: migrationSection,
  precopy: precopySection,
  multifd: multifdSection,
  pager: section({
    eviction: z.enum(['per-pfn', 'batched']).default('per-pfn'),
    evictPerPfnNs: ns.default(3_000),
    evictBatchPages: int(1, 2 ** 30).default(1024),
    evictBatchCallNs: ns.default(5_000),
    evictBatchPerPageNs: ns.default(100),
    recvPerPageNs: ns.default(400),
    loadPageNs: ns.default(1_500),
    /** Placing a zero page: the load call without the 4 KiB copy (UFFDIO_ZEROPAGE, a zeroed frame). */
    zeroLoadNs: ns.default(1_100),
    batchLoadCallNs: ns.default(3_000),
    batchLoadPerPageNs: ns.default(400),
    drainPerRequestNs: ns.default(200),
    faultRecordNs: ns.default(2_000),
    wakeNs: ns.default(5_000),
    notifyNs: ns.default(2_000),
  }),
  mapper: section({
    mapping: mapping.default({ kind: 'none' }),
    request: z.enum(['page', 'range']).default('page'),
    order: z.enum(['sequential', 'random']).default('sequential'),
    retryNs: ns.default(100_000),
    timerSlackNs: ns.default(50_000),
    mapCallNs: ns.default(5_000),
    perGfnNs: ns.default(200),
  }),
  workload: section({
    kind: z.enum(['idle', 'sequential', 'random', 'hot-set', 'memtest', 'trace']).default('idle'),
    /** kind trace: a .pctrace file (docs/traces.md), relative to the current directory. */
    trace: z.string().min(1).optional(),
    vcpus: int(1, 4096).default(1),
    region: range.optional(),
    hotPages: int(1, 2 ** 30).default(1024),
    hotProbability: z.number().min(0).max(1).default(0.9),
    writeFraction: z.number().min(0).max(1).default(0.5),
    thinkNs: ns.default(4_000),
    prefetchPages: int(0, 2 ** 20).default(0),
  }),
  /**
   * QEMU postcopy-preempt: requested pages travel on their own connection. `share`: the preempt
   * flow's part of the wire while the main stream is backlogged (fair queuing of two flows: 0.5).
   */
  preempt: section({
    enabled: z.boolean().default(false),
    share: z.number().gt(0).max(1).default(0.5),
  }),
  /** Sampled time series for plots: 0 = off, else the number of samples to keep (±2×). */
  timeline: section({
    samples: int(0, 100_000).default(0),
    /** Poll the query-migrate counters every this many ms of precopy (guestperf: 50); 0 = off. */
    pollMs: int(0, 1e6).default(0),
  }),
  faults: z.array(fault).default([]),
  /** QEMU's postcopy recovery: a paused migration resumes once the connection is back. */
  recovery: section({
    enabled: z.boolean().default(true),
    /** Extra time between reconnecting and sending the received bitmap (the operator's migrate-recover). */
    setupNs: ns.default(0),
  }),
  limits: section({
    horizonNs: int(1, 1e15).default(3_600e9),
    /** Liveness bound of the checker: once faults have healed, no vCPU may stay blocked longer. */
    livenessNs: int(1, 1e15).default(60e9),
    /** End the run when postcopy is complete, or as soon as the guest runs (downtime studies). */
    stopAt: z.enum(['complete', 'resume']).default('complete'),
  }),
}).strict();

/** A scenario as written in a file (every field optional). */
export type ScenarioInput = z.input<typeof scenarioSchema>;
/** A validated scenario with every default filled in. */
export type Scenario = z.output<typeof scenarioSchema>;
export type LinkParams = Scenario['link'];
export type Range = z.output<typeof range>;
export type FaultSpec = z.output<typeof fault>;
