import { LatencyLog, type LatencySummary } from '../metrics/latency.ts';
import { CDF_QUANTILES, type MigrationStatus, type RunReport } from '../metrics/report.ts';
import type { Scenario } from '../scenario/schema.ts';

type Emu = RunReport['emulator'];

/**
 * What a measured run (real QEMU, or live mode) observed, in the emulator's terms. What it did
 * not measure reads 0, as its warnings say, so `compare` and `report` read it beside a model run.
 */
export interface Measured {
  scenario: Scenario;
  status: MigrationStatus;
  totalTimeMs: number;
  downtimeMs: number;
  setupMs?: number;
  expectedDowntimeMs?: number;
  throttlePct?: number;
  blocktimeMs?: number;
  vcpuBlocktimeMs?: number[];
  ram: RunReport['ram'];
  /** Each answered fault's latency, ns. */
  latenciesNs: readonly number[];
  /** Each placed page's latency from its first request, ns (unmeasured: none). */
  requestLatenciesNs?: readonly number[];
  /** Page requests, answered or not. */
  requests: number;
  history: Emu['status-history'];
  warnings: string[];
  postcopyDurationMs: number | null;
  pagesPending: number;
  pagesPushed?: number;
  pagesLoaded?: number;
  ring?: Emu['ring'];
  link?: Partial<Emu['link']>;
  precopy?: Emu['precopy'];
  recovery?: Emu['recovery'];
}

/** Latencies (ns) in the report's log: its buckets and percentiles. */
function logOf(ns: readonly number[]): LatencyLog {
  const latency = new LatencyLog();
  for (const x of ns) latency.add(x);
  return latency;
}

/** The summary of latencies given in ns. */
export function latencySummary(ns: readonly number[]): LatencySummary {
  return logOf(ns).summary();
}

/** A measured run as a run report (the shape `run --json` writes). */
export function measuredReport(m: Measured): RunReport {
  const latency = logOf(m.latenciesNs), requests = logOf(m.requestLatenciesNs ?? []);
  const s = m.scenario, r = m.ram;
  return {
    status: m.status,
    'total-time': m.totalTimeMs,
    'setup-time': m.setupMs ?? 0,
    'expected-downtime': m.expectedDowntimeMs ?? 0,
    downtime: m.downtimeMs,
    'cpu-throttle-percentage': m.throttlePct ?? 0,
    'postcopy-blocktime': m.blocktimeMs ?? 0,
    'postcopy-vcpu-blocktime': m.vcpuBlocktimeMs ?? [],
    'postcopy-latency': latency.mean(),
    'postcopy-latency-dist': [...latency.buckets],
    ram: r,
    emulator: {
      scenario: s.name,
      warnings: m.warnings,
      'status-history': m.history,
      // A measured downtime is reported whole; its parts are the model's.
      'downtime-breakdown': null,
      recovery: m.recovery ?? { pauses: 0, 'resent-pages': 0, 're-requested-pages': 0, 'paused-time-ms': 0, 'lost-fault-records': 0 },
      seed: s.seed,
      'simulated-time': m.totalTimeMs,
      'postcopy-duration': m.postcopyDurationMs,
      'eviction-time': 0,
      'outstanding-at-start': 0,
      'pages-pending': m.pagesPending,
      faults: { vcpu: m.requests, spurious: 0, foreign: 0, network: m.requests, minor: 0, 'network-share': null },
      'pfns-requested': 0,
      'fault-records': 0,
      'pages-pushed': m.pagesPushed ?? 0,
      'pages-demand-fetched': r['postcopy-requests'],
      'pages-loaded': m.pagesLoaded ?? 0,
      'fault-latency': { ...latency.summary(), max: latency.max, cdf: latency.percentiles(CDF_QUANTILES) },
      'request-latency': { ...requests.summary(), max: requests.max },
      ring: m.ring ?? { capacity: 0, 'max-occupancy': 0, 'time-full': 0, ebusy: 0 },
      mapper: { calls: 0, retries: 0, requests: 0, 'done-at': null },
      // Touches are not counted; the blocked time is the run's own blocktime.
      vcpu: { accesses: 0, writes: 0, 'all-blocked-ms': m.blocktimeMs ?? 0, 'blocked-ms': m.vcpuBlocktimeMs ?? [] },
      link: { 'stream-wire-bytes': 0, 'back-channel-bytes': 0, 'stream-records': 0, 'preempt-records': 0, 'preempt-bytes': 0, ...m.link },
      'pager-busy': 0,
      ...(m.precopy ? { precopy: m.precopy } : {}),
      events: 0,
    },
  };
}
