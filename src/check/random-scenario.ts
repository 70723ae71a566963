import { Rng } from '../kernel/rng.ts';
import { scenarioSchema, type Scenario, type ScenarioInput } from '../scenario/schema.ts';

type Policy = Scenario['source']['policy'];
type Range = { start: number; count: number };

/**
 * Every `source.policy` the schema accepts, read from the zod enum itself so a policy added to
 * the schema is soaked without touching this file.
 */
export const SOAK_POLICIES: readonly Policy[] = scenarioSchema.shape.source.unwrap().shape.policy.unwrap().options;

/**
 * The workload kinds soaked: every kind but `trace` (which needs a file on disk). Listed, not
 * read from the schema, because a new kind may need parameters this generator cannot guess.
 */
export const SOAK_WORKLOADS = ['idle', 'sequential', 'random', 'shuffled', 'hot-set', 'memtest'] as const;

/** Policies that send only what is asked for: a run may never complete. */
const PULL_ONLY: ReadonlySet<string> = new Set(['demand']);

/**
 * Policies whose progress hangs on the destination's requests: pure demand paging, and CRIU's
 * lazy-pages daemon (each chunk follows a request or the pager's pull). A lost request waits for
 * ever there by design (docs/recovery.md), so the soak does not draw back-channel loss for them.
 */
const REQUEST_DRIVEN: ReadonlySet<string> = new Set(['demand', 'lazy-pages']);

/** Simulated-time bound of every soak run (ns). */
export const SOAK_HORIZON_NS = 10e9;

/** One of `xs`, drawn from `r`. */
const picker = (r: Rng) => <T>(xs: readonly T[]): T => xs[r.int(0, xs.length - 1)]!;

/**
 * A small random scenario, a pure function of `seed` (one `Rng(seed, 'soak')` stream): random
 * policy, ring, links, costs, mapping and workload. Every scenario it returns passes
 * parseScenario. The scenario's own `seed` is `seed`, so the run is replayable from the seed alone.
 */
export function randomScenario(seed: number): ScenarioInput {
  const r = new Rng(seed, 'soak');
  const int = (a: number, b: number) => r.int(a, b);
  const chance = (p: number) => r.float() < p;
  const pick = picker(r);
  /** Log-uniform integer in [a, b]: small values as often as large ones. */
  const logInt = (a: number, b: number) => Math.min(b, Math.max(a, Math.round(Math.exp(Math.log(a) + r.float() * (Math.log(b) - Math.log(a))))));
  /** A cost in ns around `typical`, 0 one time in five. */
  const cost = (typical: number) => (chance(0.2) ? 0 : int(0, 2 * typical));
  const rangeIn = (pages: number, maxCount: number): Range => {
    const start = int(0, pages - 1);
    return { start, count: int(1, Math.min(maxCount, pages - start)) };
  };
  const ranges = (pages: number, max: number, maxCount: number) => Array.from({ length: int(1, max) }, () => rangeIn(pages, maxCount));

  const pages = logInt(64, 4096);
  const policy = pick(SOAK_POLICIES);
  const pullOnly = PULL_ONLY.has(policy);
  const vcpus = int(1, 4);
  const capacity = logInt(1, 64);

  const outstanding = pick(['all', 'ranges', 'fraction'] as const);
  const mappingKind = pick(['none', 'all', 'ranges', 'buckets'] as const);
  const link = () => ({
    rateMbps: logInt(100, 100_000),
    latencyNs: int(0, 200_000),
    sendBufferBytes: chance(0.2) ? 0 : int(0, 8 * 2 ** 20),
    receiveBufferBytes: chance(0.2) ? 0 : int(0, 8 * 2 ** 20),
    mtuBytes: pick([576, 1500, 1500, 9000]),
  });
  const chunkMinPages = int(1, 32);
  const pageSize = pick([512, 4096, 4096, 4096, 16_384]);
  const mainLink = link();
  // A guest that never thinks touches a page per nanosecond, 64 per event: only a short
  // migration (small guest, fast link, a push policy to end it) stays within the event cap.
  const zeroThink = !pullOnly && pages <= 1024 && mainLink.rateMbps >= 10_000 && chance(0.2);

  const s: ScenarioInput = {
    name: `soak-${seed}`,
    seed,
    memory: {
      pages,
      pageSize,
      // Mostly one guest page per host page; else huge host pages of 2..512 guest pages.
      hostPageSize: pageSize * pick([1, 1, 1, 2, 8, 512]),
      outstanding: outstanding === 'all' ? { kind: 'all' }
        : outstanding === 'fraction' ? { kind: 'fraction', fraction: Math.max(0.01, r.float()) }
        : { kind: 'ranges', ranges: ranges(pages, 3, 512) },
    },
    ring: { capacity, blackEye: capacity >= vcpus && chance(0.3) },
    link: mainLink,
    backChannel: link(),
    source: {
      policy,
      pivots: int(1, 8),
      bubbleDirection: pick(['both', 'forward'] as const),
      chunkMinPages,
      chunkMaxPages: int(chunkMinPages, 256),
      prefaultAfter: int(0, 64),
      prefaultBefore: int(0, 16),
      recordPages: logInt(1, 128),
      pfnBatch: int(1, pages),
      perPageNs: cost(400),
      perRecordNs: cost(5_000),
      transitionBytes: int(0, 131_072),
      deviceSaveNs: cost(1_300_000),
    },
    pager: {
      eviction: pick(['per-pfn', 'batched'] as const),
      evictPerPfnNs: cost(3_000),
      evictBatchPages: logInt(1, 2048),
      evictBatchCallNs: cost(5_000),
      evictBatchPerPageNs: cost(500),
      recvPerPageNs: cost(400),
      loadPageNs: cost(1_500),
      batchLoadCallNs: cost(3_000),
      batchLoadPerPageNs: cost(400),
      drainPerRequestNs: cost(200),
      faultRecordNs: cost(2_000),
      wakeNs: cost(5_000),
      notifyNs: cost(2_000),
      listenNs: cost(1_800_000),
      deviceLoadNs: cost(1_150_000),
      pageWorkNs: cost(200),
      discardPrepareNs: cost(400_000),
      discardSpanPageNs: chance(0.5) ? 0 : 1,
    },
    mapper: {
      mapping: mappingKind === 'none' || mappingKind === 'all' ? { kind: mappingKind }
        : mappingKind === 'ranges' ? { kind: 'ranges', ranges: ranges(pages, 4, 256) }
        : (() => {
          const bucketPages = logInt(1, Math.min(256, pages));
          return { kind: 'buckets' as const, bucketPages, count: int(1, Math.min(8, Math.floor(pages / bucketPages))) };
        })(),
      request: pick(['page', 'range'] as const),
      order: pick(['sequential', 'random'] as const),
      // A retry at the same instant would spin the clock in place: at least 1 µs.
      retryNs: int(1_000, 200_000),
      timerSlackNs: int(0, 50_000),
      mapCallNs: cost(5_000),
      perGfnNs: cost(200),
    },
    workload: {
      kind: pick(SOAK_WORKLOADS),
      vcpus,
      ...(chance(0.3) ? { region: rangeIn(pages, pages) } : {}),
      hotPages: logInt(1, 256),
      hotProbability: r.float(),
      writeFraction: r.float(),
      thinkNs: zeroThink ? 0 : int(1_000, 10_000),
      think: chance(0.3) ? 'constant' : 'exponential',
      prefetchPages: int(0, 16),
    },
    preempt: chance(0.3) ? { enabled: true, share: Math.max(0.01, r.float()), sender: pick(['return-path', 'migration-thread'] as const) } : { enabled: false },
    limits: pullOnly
      // Demand paging may never complete: stop when the guest runs, or at a short horizon.
      ? (chance(0.5) ? { stopAt: 'resume', horizonNs: SOAK_HORIZON_NS } : { stopAt: 'complete', horizonNs: int(1e6, 1e9) })
      : { stopAt: chance(0.2) ? 'resume' : 'complete', horizonNs: SOAK_HORIZON_NS },
  };
  return addPlacement(seed, addDevices(seed, addLifecycle(seed, addFaults(seed, s))));
}

/**
 * For a third of the seeds, from their own stream (`soak-placement`): how the destination places
 * pages and when they become present (`pager.placement`, `pager.wakeAt`), and whether a fault
 * thread reads the faults, against what the policy would choose.
 */
function addPlacement(seed: number, s: ScenarioInput): ScenarioInput {
  const r = new Rng(seed, 'soak-placement');
  if (r.float() >= 1 / 3) return s;
  const pick = picker(r);
  return {
    ...s,
    pager: { ...s.pager, placement: pick(['hypercall', 'uffd'] as const), wakeAt: pick(['page', 'record'] as const), faultThread: r.float() < 0.5 },
  };
}

/**
 * Precopy or hybrid for a third of the seeds (docs/lifecycle.md), from their own stream
 * (`soak-lifecycle`): policy, dirtying, rate limit, caps, auto-converge, multifd, zero pages.
 * max-time bounds precopy, so a guest that never converges still ends within the horizon.
 */
function addLifecycle(seed: number, s: ScenarioInput): ScenarioInput {
  const r = new Rng(seed, 'soak-lifecycle');
  if (r.float() >= 1 / 3) return s;
  const pages = s.memory!.pages!, pageSize = s.memory!.pageSize!;
  const region = { start: r.int(0, pages - 1), count: 0 };
  region.count = r.int(1, pages - region.start);
  const workers = r.int(1, 4), perWorker = r.int(1, Math.max(1, Math.floor(pages / workers)));
  // The vCPUs' own pattern only when they think between touches (else a write per ns).
  const kinds = s.workload!.thinkNs === 0 ? ['none', 'stress', 'fio'] : ['none', 'workload', 'stress', 'fio'];
  const kind = kinds[r.int(0, kinds.length - 1)]!;
  const dirtying = kind === 'stress' ? { kind, workers, bytesPerWorker: perWorker * pageSize, start: r.int(0, pages - workers * perWorker), pageNs: r.int(10, 1000) }
    : kind === 'fio' ? { kind, region, blockBytes: pageSize * r.int(1, 16), bytesPerSec: 10 ** (6 + 3 * r.float()), order: r.float() < 0.5 ? 'sequential' : 'random' }
    : { kind };
  const policy = r.float() < 0.3 ? 'xen' : 'qemu';
  const hybrid = r.float() < 0.5;
  return {
    ...s,
    memory: { ...s.memory, zeroFraction: r.float() < 0.5 ? 0 : r.float() },
    source: { ...s.source, zeroPageDetection: (['legacy', 'multifd', 'none'] as const)[r.int(0, 2)] },
    migration: hybrid
      ? { mode: 'hybrid', ...(r.float() < 0.5 ? { switchAfterIterations: r.int(1, 4) } : { switchAtNs: r.int(0, 50_000_000) }) }
      : { mode: 'precopy' },
    precopy: {
      policy,
      dirtying: dirtying as NonNullable<ScenarioInput['precopy']>['dirtying'],
      downtimeLimitMs: r.int(1, 500),
      maxBandwidth: r.float() < 0.5 ? 0 : r.int(1e6, 1e10),
      availSwitchoverBandwidth: r.float() < 0.8 ? 0 : r.int(1e6, 1e10),
      maxIterations: r.float() < 0.5 ? 0 : r.int(1, 10),
      maxTimeNs: r.int(1_000_000, 100_000_000),
      autoConverge: r.float() < 0.3,
      setupNs: r.int(0, 2_000_000),
      // QEMU's lazy clear of the dirty log, in small chunks so a guest has several.
      clearBitmapShift: r.int(6, 12),
      clearPerPageNs: r.float() < 0.5 ? 0 : r.int(1, 20),
    },
    multifd: policy === 'qemu' && r.float() < 0.4
      ? { channels: r.int(1, 4), packetPages: r.int(1, 128), wire: r.float() < 0.5 ? 'shared' : 'per-channel', compression: (['none', 'zlib', 'zstd'] as const)[r.int(0, 2)] }
      : { channels: 0 },
  };
}

/**
 * Injected faults for a third of the seeds (docs/recovery.md), from their own stream
 * (`soak-faults`) so they change no other field of a seed's scenario. Back-channel loss only
 * with a push policy (not REQUEST_DRIVEN).
 * Recovery is off for a few, which must then end in a clean `failed`.
 */
function addFaults(seed: number, s: ScenarioInput): ScenarioInput {
  const rng = new Rng(seed, 'soak-faults');
  if (rng.float() >= 1 / 3) return s;
  const window = { from: 0, to: rng.int(1_000_000, 200_000_000) };
  const kinds = REQUEST_DRIVEN.has(s.source!.policy!) ? ['link-cut', 'degrade', 'source-crash'] : ['link-cut', 'degrade', 'backchannel-loss', 'source-crash'];
  const faults: NonNullable<ScenarioInput['faults']> = [];
  // A guest that never thinks touches 4 pages a nanosecond: a long outage is 10^8 simulated touches.
  const longest = s.workload!.thinkNs === 0 ? 2_000_000 : 50_000_000;
  for (let i = rng.int(1, 2); i > 0; i--) {
    const kind = kinds[rng.int(0, kinds.length - 1)]!;
    const durationNs = rng.int(1_000, longest);
    if (kind === 'link-cut') faults.push({ kind, window, durationNs });
    else if (kind === 'source-crash') faults.push({ kind, window, restartNs: durationNs });
    else if (kind === 'degrade') faults.push({ kind, window, durationNs, rateMbps: rng.int(10, 1000), latencyNs: rng.int(0, 1_000_000) });
    else faults.push({ kind: 'backchannel-loss', window, durationNs, probability: rng.float() });
  }
  return { ...s, faults, recovery: { enabled: rng.float() < 0.9, setupNs: rng.int(0, 100_000) } };
}

type DeviceInput = NonNullable<ScenarioInput['devices']>[number];

/**
 * Passthrough devices (docs/devices.md) for two thirds of the precopy-mode seeds with QEMU's
 * policy, from their own stream (`soak-devices`): 1–3 devices of random kind, precopy, pacing,
 * sizes, arc and load costs, switchover-ack, load threads and channel, some hot-unplugged, some
 * doing DMA. Small states and short costs keep a run quick; precopy.maxTimeNs (always set for
 * precopy) ends a migration that never converges or never gets its ack. Never in postcopy or
 * hybrid mode (QEMU refuses a device that cannot fault there), and `unmap` tracking only for a
 * device the guest hot-unplugs: after a VFIO stop its last writes are never seen, which the
 * checker reports.
 */
function addDevices(seed: number, s: ScenarioInput): ScenarioInput {
  if (s.migration?.mode !== 'precopy' || s.precopy?.policy !== 'qemu') return s;
  const r = new Rng(seed, 'soak-devices');
  if (r.float() >= 2 / 3) return s;
  const int = (a: number, b: number) => r.int(a, b);
  const chance = (p: number) => r.float() < p;
  const pick = picker(r);
  const pages = s.memory!.pages!;
  const range = (lo: number, hi: number, maxCount: number) => {
    const start = int(lo, hi - 1);
    return { start, count: int(1, Math.min(maxCount, hi - start)) };
  };
  const devices = Array.from({ length: int(1, 3) }, (): DeviceInput => {
    const unplugged = chance(0.2);
    const region = range(0, pages, pages);
    const dma = chance(0.4) ? {
      region: [region],
      ...(chance(0.5) ? { buffers: [range(region.start, region.start + region.count, 256)] } : {}),
      bytesPerSec: 10 ** (6 + 2 * r.float()),
      pattern: pick(['sequential', 'random'] as const),
      tracking: pick(unplugged ? ['none', 'unmap', 'iommu', 'device-log'] as const : ['none', 'iommu', 'device-log'] as const),
      unmapDelayNs: int(0, 2_000_000),
      logMaxRanges: int(1, 8),
      logFails: chance(0.2),
    } : undefined;
    return {
      kind: pick(['vf', 'virtio-vf'] as const),
      preCopy: chance(0.7),
      ...(chance(0.5) ? { pacing: pick(['none', 'cap', 'rate-limit'] as const) } : {}),
      ...(chance(0.3) ? { partialContexts: chance(0.5) } : {}),
      maxCalls: int(1, 16),
      readIntervalNs: int(1_000_000, 100_000_000),
      initialBytes: int(0, 262_144),
      dirtyBytesPerSec: chance(0.5) ? 0 : int(0, 10_000_000),
      stopCopyBytes: int(0, 262_144),
      readChunkBytes: pick([4096, 65_536, 1_048_576]),
      readCallNs: int(0, 50_000),
      arcNs: { preCopy: int(0, 200_000), quiesce: int(0, 2_000_000), stop: int(0, 5_000_000), stopCopyEnd: int(0, 200_000), resuming: int(0, 2_000_000), resume: int(0, 2_000_000) },
      load: { setupNs: int(0, 50_000_000), applyNs: int(0, 5_000_000), perByteNs: r.float() },
      sizeQueryFails: chance(0.1),
      ...(unplugged
        ? { stopBy: 'hot-unplug' as const, unplugNs: int(0, 50_000_000), ...(chance(0.5) ? { startBy: 'hotplug' as const, hotplugNs: int(0, 100_000_000) } : { startBy: 'reset' as const, resetNs: int(0, 100_000_000) }) }
        : {}),
      ...(dma ? { dma } : {}),
    };
  });
  const multifd = (s.multifd?.channels ?? 0) > 0;
  return {
    ...s,
    // QEMU's threshold is 0 until the first 100 ms window ends, and a device's stop-copy size always
    // counts: give some runs time to converge (and to wait for the ack).
    precopy: { ...s.precopy, maxTimeNs: chance(0.5) ? s.precopy.maxTimeNs! : int(100_000_000, 400_000_000) },
    migration: { ...s.migration, switchoverAck: chance(0.5), deviceLoadThreads: int(1, 3), deviceChannel: multifd && chance(0.5) ? 'multifd' : 'main' },
    devices,
  };
}
